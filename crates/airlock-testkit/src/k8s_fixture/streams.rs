//! The fixture's pod streams over WebSocket, as a kubelet serves them
//! behind the API server: `exec` runs the command in a real process
//! (`/bin/sh -c 'exec "$0" "$@"' <command…>`, so the argv is the one kubectl
//! sent) with the channel protocol (`v5.channel.k8s.io`, `v4…`): stdin 0,
//! stdout 1, stderr 2, error 3 (a `Status` with the exit code), resize 4,
//! close 255 (v5: the client closed a channel, stdin here); `attach`
//! attaches to the pod's main process, here a fresh `/bin/sh` reading the
//! attached stdin; `portforward` (`v4.channel.k8s.io`,
//! `portforward.k8s.io`) connects each `ports=` port to 127.0.0.1 (the
//! pod's network is the host's), data on channel 2i and errors on 2i+1,
//! each opened with the port as two little-endian bytes.
//!
//! kubectl's port-forward tunnel (SPDY inside the WebSocket) is served by
//! [`super::tunnel`]. Bare SPDY upgrades are refused (`400`): the fixture
//! speaks WebSocket only, as `kubectl` ≥ 1.30 does first. Every stream it served is kept as an
//! [`ExecRecord`] (what ran, the stdin it read, its exit code).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::websocket::{
    accept, choose_protocol, is_websocket, read_frame, write_frame, OP_BINARY, OP_CLOSE,
    OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT,
};
use super::wire::WireRequest;
use super::{status, write_json, Shared};

/// The channel protocols exec and attach answer, best first.
const CHANNEL_PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// The port-forward protocols, best first (kubectl's SPDY tunnel by
/// [`super::tunnel`]).
const PORT_FORWARD_PROTOCOLS: [&str; 3] = [
    "v4.channel.k8s.io",
    "portforward.k8s.io",
    super::tunnel::TUNNEL_PROTOCOL,
];

/// One stream the fixture served.
#[derive(Debug, Clone, Default)]
pub struct ExecRecord {
    /// `exec`, `attach` or `portforward`.
    pub subresource: String,
    /// `namespace/pod`.
    pub pod: String,
    /// The argv (exec), or the forwarded ports (port-forward).
    pub command: Vec<String>,
    /// The negotiated subprotocol.
    pub protocol: String,
    /// Bytes read from the client's stdin (or sent to a forwarded port).
    pub stdin: Vec<u8>,
    /// The process's exit code once it ended.
    pub exit_code: Option<i32>,
    /// Terminal sizes the client sent (`{"Width":…,"Height":…}`).
    pub resizes: Vec<String>,
    /// A SPDY port-forward tunnel's streams as they opened
    /// (`<streamtype> port <port> request <requestid>`).
    pub tunnel_streams: Vec<String>,
}

/// Serves `exec`, `attach` or `portforward` of pod `namespace/pod`.
pub fn serve_stream(
    shared: &Shared,
    stream: &TcpStream,
    request: &WireRequest,
    pod: &str,
    subresource: &str,
) {
    if !is_websocket(request) {
        let message = "the fixture serves pod streams over WebSocket only (no SPDY)";
        write_json(stream, 400, &status(400, "BadRequest", message));
        return;
    }
    let supported: &[&'static str] = if subresource == "portforward" {
        &PORT_FORWARD_PROTOCOLS
    } else {
        &CHANNEL_PROTOCOLS
    };
    let Some(protocol) = choose_protocol(request, supported) else {
        let message = "no subprotocol the fixture speaks was offered";
        write_json(stream, 400, &status(400, "BadRequest", message));
        return;
    };
    if !accept(stream, request, protocol) {
        return;
    }
    let record = Arc::new(Mutex::new(ExecRecord {
        subresource: subresource.to_string(),
        pod: pod.to_string(),
        protocol: protocol.to_string(),
        ..ExecRecord::default()
    }));
    match subresource {
        "portforward" if protocol == super::tunnel::TUNNEL_PROTOCOL => {
            super::tunnel::serve_tunnel(stream, &record);
        }
        "portforward" => port_forward(stream, request, &record),
        "attach" => run_process(stream, &["/bin/sh".to_string()], &record),
        _ => {
            let argv = request.params("command");
            let mut full = vec!["/bin/sh".into(), "-c".into(), "exec \"$0\" \"$@\"".into()];
            full.extend(argv.iter().cloned());
            record.lock().unwrap().command = argv;
            run_process(stream, &full, &record);
        }
    }
    let done = record.lock().unwrap().clone();
    shared.state.lock().unwrap().streams.push(done);
    shared.changed.notify_all();
}

/// A channel message: the channel byte, then the data.
fn channel_frame(stream: &TcpStream, channel: u8, data: &[u8]) -> bool {
    let mut payload = Vec::with_capacity(data.len() + 1);
    payload.push(channel);
    payload.extend_from_slice(data);
    write_frame(stream, OP_BINARY, &payload)
}

/// The error channel's last word: success, or the exit code.
fn exit_status(code: i32) -> serde_json::Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// Runs `argv` with the stream as its terminal: stdout and stderr sent as
/// they come, stdin fed from channel 0, the exit status on channel 3.
fn run_process(stream: &TcpStream, argv: &[String], record: &Arc<Mutex<ExecRecord>>) {
    let spawned = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            let failure = status(500, "InternalError", &format!("cannot run: {error}"));
            channel_frame(stream, 3, failure.to_string().as_bytes());
            write_frame(stream, OP_CLOSE, &1000u16.to_be_bytes());
            return;
        }
    };
    let stdin = Arc::new(Mutex::new(child.stdin.take()));
    let reader = {
        let stream = stream.try_clone().expect("clone the stream");
        let stdin = Arc::clone(&stdin);
        let record = Arc::clone(record);
        std::thread::spawn(move || read_client(&stream, &stdin, &record))
    };
    let pumps: Vec<_> = [
        (
            1u8,
            child
                .stdout
                .take()
                .map(|out| Box::new(out) as Box<dyn Read + Send>),
        ),
        (
            2u8,
            child
                .stderr
                .take()
                .map(|err| Box::new(err) as Box<dyn Read + Send>),
        ),
    ]
    .into_iter()
    .filter_map(|(channel, source)| Some((channel, source?)))
    .map(|(channel, mut source)| {
        let stream = stream.try_clone().expect("clone the stream");
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = source.read(&mut buffer) {
                if read == 0 || !channel_frame(&stream, channel, &buffer[..read]) {
                    break;
                }
            }
        })
    })
    .collect();
    for pump in pumps {
        let _ = pump.join();
    }
    let code = child
        .wait()
        .ok()
        .and_then(|status| status.code())
        .unwrap_or(-1);
    record.lock().unwrap().exit_code = Some(code);
    channel_frame(stream, 3, exit_status(code).to_string().as_bytes());
    write_frame(stream, OP_CLOSE, &1000u16.to_be_bytes());
    // The client answers the close (or goes away); the reader then ends.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = reader.join();
}

type SharedStdin = Arc<Mutex<Option<std::process::ChildStdin>>>;

/// The client's frames: stdin (channel 0), resize (4), close (255, v5),
/// pings answered; ends at a close frame or the end of the connection.
fn read_client(stream: &TcpStream, stdin: &SharedStdin, record: &Arc<Mutex<ExecRecord>>) {
    let mut channel = None;
    while let Some(frame) = read_frame(stream) {
        let data = match frame.opcode {
            OP_PING => {
                write_frame(stream, OP_PONG, &frame.payload);
                continue;
            }
            OP_PONG => continue,
            OP_CLOSE => break,
            OP_BINARY | OP_TEXT => {
                channel = frame.payload.first().copied();
                frame.payload.get(1..).unwrap_or(&[]).to_vec()
            }
            OP_CONTINUATION => frame.payload,
            _ => break,
        };
        match channel {
            Some(0) => {
                record.lock().unwrap().stdin.extend_from_slice(&data);
                if let Some(pipe) = stdin.lock().unwrap().as_mut() {
                    let _ = pipe.write_all(&data);
                    let _ = pipe.flush();
                }
            }
            Some(4) => record
                .lock()
                .unwrap()
                .resizes
                .push(String::from_utf8_lossy(&data).into_owned()),
            // v5: the client closed a channel; stdin is the only one it writes.
            Some(255) if data.first() == Some(&0) => {
                stdin.lock().unwrap().take();
            }
            _ => {}
        }
        if frame.fin {
            channel = None;
        }
    }
    // The client is gone: its stdin ends.
    stdin.lock().unwrap().take();
}

/// Port-forward: each `ports=` port connected to 127.0.0.1, bytes both
/// ways (the first port only; kubectl and the Python client ask for one
/// per connection).
fn port_forward(stream: &TcpStream, request: &WireRequest, record: &Arc<Mutex<ExecRecord>>) {
    let ports: Vec<u16> = request
        .params("ports")
        .iter()
        .flat_map(|value| value.split(','))
        .filter_map(|port| port.trim().parse().ok())
        .collect();
    record.lock().unwrap().command = ports.iter().map(u16::to_string).collect();
    let Some(&port) = ports.first() else {
        write_frame(stream, OP_CLOSE, &1000u16.to_be_bytes());
        return;
    };
    channel_frame(stream, 0, &port.to_le_bytes());
    channel_frame(stream, 1, &port.to_le_bytes());
    let Ok(target) = TcpStream::connect(("127.0.0.1", port)) else {
        channel_frame(
            stream,
            1,
            format!("cannot connect to port {port}").as_bytes(),
        );
        write_frame(stream, OP_CLOSE, &1000u16.to_be_bytes());
        return;
    };
    let upstream = {
        let stream = stream.try_clone().expect("clone the stream");
        let mut target = target.try_clone().expect("clone the target");
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = target.read(&mut buffer) {
                if read == 0 || !channel_frame(&stream, 0, &buffer[..read]) {
                    break;
                }
            }
            write_frame(&stream, OP_CLOSE, &1000u16.to_be_bytes());
        })
    };
    let mut writer = &target;
    while let Some(frame) = read_frame(stream) {
        match frame.opcode {
            OP_PING => {
                write_frame(stream, OP_PONG, &frame.payload);
            }
            OP_CLOSE => break,
            OP_BINARY if frame.payload.first() == Some(&0) => {
                let data = frame.payload.get(1..).unwrap_or(&[]);
                record.lock().unwrap().stdin.extend_from_slice(data);
                if writer.write_all(data).is_err() {
                    break;
                }
            }
            _ => {}
        }
    }
    let _ = target.shutdown(std::net::Shutdown::Both);
    let _ = upstream.join();
}
