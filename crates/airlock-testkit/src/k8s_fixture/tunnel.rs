//! The fixture's side of kubectl's port-forward tunnel
//! (`SPDY/3.1+portforward.k8s.io`, KEP 4006), as the API server and the
//! kubelet serve it together: SPDY/3.1 inside binary WebSocket messages,
//! each forwarded connection a pair of SPDY streams (`streamtype: error`
//! and `data`) with the pod's `port` and a `requestid`. A data stream is
//! connected to `127.0.0.1:<port>` (the pod's network is the host's);
//! bytes go both ways, and when the port closes the data and error
//! streams are closed, as the kubelet does; a port nobody listens on gets
//! its message on the error stream. Pings are answered.
//!
//! The SPDY framing and header compression come from `airlock_k8s::spdy`
//! (the gateway's codec): unlike the WebSocket layer, not written twice.
//! Its other side is always real kubectl, whose own SPDY implementation
//! checks every byte the gateway sends it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use airlock_k8s::spdy::{
    Frame, FrameReader, HeaderBlock, HeaderDeflater, HeaderInflater, FLAG_FIN, PING,
};

use super::streams::ExecRecord;
use super::websocket::{
    read_frame, write_frame, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG,
};

/// The subprotocol.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// The fixture's writing side: frames one at a time, header blocks from
/// one compressor.
struct Writer {
    stream: TcpStream,
    deflater: HeaderDeflater,
}

impl Writer {
    fn send(&mut self, frame: &Frame) -> bool {
        write_frame(&self.stream, OP_BINARY, &frame.encode())
    }

    fn reply(&mut self, stream_id: u32) -> bool {
        let header_block = self.deflater.compress(&HeaderBlock::default());
        self.send(&Frame::SynReply {
            stream_id,
            flags: 0,
            header_block,
        })
    }

    fn finish(&mut self, stream_id: u32, payload: &[u8]) -> bool {
        self.send(&Frame::Data {
            stream_id,
            flags: FLAG_FIN,
            payload: payload.to_vec(),
        })
    }
}

type SharedWriter = Arc<Mutex<Writer>>;

/// One forwarded connection.
#[derive(Default)]
struct Pair {
    error_stream: Option<u32>,
    data_stream: Option<u32>,
    target: Option<TcpStream>,
}

/// Serves one tunnel until the client closes it.
pub fn serve_tunnel(stream: &TcpStream, record: &Arc<Mutex<ExecRecord>>) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let writer: SharedWriter = Arc::new(Mutex::new(Writer {
        stream: clone,
        deflater: HeaderDeflater::new(),
    }));
    let mut reader = FrameReader::new(1 << 21);
    let mut inflater = HeaderInflater::new();
    let mut pairs: BTreeMap<String, Pair> = BTreeMap::new();
    // Stream id → the connection's key, for the data stream's bytes.
    let mut data_streams: BTreeMap<u32, String> = BTreeMap::new();
    let mut pumps = Vec::new();
    'frames: while let Some(frame) = read_frame(stream) {
        match frame.opcode {
            OP_PING => {
                let _ = write_frame(stream, OP_PONG, &frame.payload);
                continue;
            }
            OP_CLOSE => break,
            OP_BINARY | OP_CONTINUATION => reader.push(&frame.payload),
            _ => continue,
        }
        loop {
            let spdy = match reader.next_frame() {
                Ok(Some(spdy)) => spdy,
                Ok(None) => break,
                Err(_) => break 'frames,
            };
            match spdy {
                Frame::SynStream {
                    stream_id,
                    header_block,
                    ..
                } => {
                    let Ok(headers) = inflater.headers(&header_block) else {
                        break 'frames;
                    };
                    let kind = headers.get("streamtype").unwrap_or("").to_string();
                    let port: u16 = headers
                        .get("port")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0);
                    let key = headers.get("requestid").unwrap_or("").to_string();
                    record
                        .lock()
                        .unwrap()
                        .tunnel_streams
                        .push(format!("{kind} port {port} request {key}"));
                    writer.lock().unwrap().reply(stream_id);
                    let pair = pairs.entry(key.clone()).or_default();
                    if kind == "error" {
                        pair.error_stream = Some(stream_id);
                        continue;
                    }
                    pair.data_stream = Some(stream_id);
                    record.lock().unwrap().command.push(port.to_string());
                    data_streams.insert(stream_id, key.clone());
                    match TcpStream::connect(("127.0.0.1", port)) {
                        Ok(target) => {
                            let Ok(reading) = target.try_clone() else {
                                continue;
                            };
                            pair.target = Some(target);
                            let writer = Arc::clone(&writer);
                            let error_stream = pair.error_stream;
                            pumps.push(std::thread::spawn(move || {
                                pump(reading, &writer, stream_id, error_stream);
                            }));
                        }
                        Err(error) => {
                            let mut writer = writer.lock().unwrap();
                            if let Some(error_stream) = pair.error_stream {
                                let message = format!(
                                    "error forwarding port {port} to pod: dial tcp4 127.0.0.1:{port}: {error}"
                                );
                                writer.finish(error_stream, message.as_bytes());
                            }
                            writer.finish(stream_id, b"");
                        }
                    }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    payload,
                } => {
                    let Some(key) = data_streams.get(&stream_id) else {
                        continue;
                    };
                    record.lock().unwrap().stdin.extend_from_slice(&payload);
                    if let Some(target) = pairs.get_mut(key).and_then(|pair| pair.target.as_mut()) {
                        let _ = target.write_all(&payload);
                        if flags & FLAG_FIN != 0 {
                            let _ = target.shutdown(std::net::Shutdown::Write);
                        }
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    if let Some(target) = data_streams
                        .get(&stream_id)
                        .and_then(|key| pairs.get(key))
                        .and_then(|pair| pair.target.as_ref())
                    {
                        let _ = target.shutdown(std::net::Shutdown::Both);
                    }
                }
                Frame::Control { kind: PING, raw } => {
                    // A ping is answered with its own bytes.
                    let _ = write_frame(&writer.lock().unwrap().stream, OP_BINARY, &raw);
                }
                _ => {}
            }
        }
    }
    for pair in pairs.values() {
        if let Some(target) = &pair.target {
            let _ = target.shutdown(std::net::Shutdown::Both);
        }
    }
    for pump in pumps {
        let _ = pump.join();
    }
    write_frame(stream, OP_CLOSE, &1000u16.to_be_bytes());
}

/// The pod's port → the data stream, until the port closes; then the data
/// and error streams are closed.
fn pump(mut target: TcpStream, writer: &SharedWriter, data_stream: u32, error_stream: Option<u32>) {
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(read) = target.read(&mut buffer) {
        if read == 0 {
            break;
        }
        let frame = Frame::Data {
            stream_id: data_stream,
            flags: 0,
            payload: buffer[..read].to_vec(),
        };
        if !writer.lock().unwrap().send(&frame) {
            return;
        }
    }
    let mut writer = writer.lock().unwrap();
    writer.finish(data_stream, b"");
    if let Some(error_stream) = error_stream {
        writer.finish(error_stream, b"");
    }
}
