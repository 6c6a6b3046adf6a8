//! `--http`: the HTTP gateway's cost, in one run, against the same local
//! upstream reached directly and through HAProxy (Debian's, `mode http`,
//! keep-alive both sides): requests/s and latency (p50/p99) of a small GET
//! and a 100 KiB JSON GET, at several concurrent keep-alive connections.
//!
//! Everything but HAProxy and the gateways runs inside this process: the
//! upstream is a hyper server (one thread of its own, so the targets share
//! the same upstream cost), the load generator is a hyper client (one
//! HTTP/1.1 keep-alive connection per concurrent client, requests back to
//! back). Airlock runs twice: pass-through (an allow-all policy, commands
//! not recorded) and full (recording on, a mask rule with detectors on
//! the connection, so every JSON body is masked).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock_testkit::{free_port, GatewayProcess};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;

/// What the run measures.
pub struct HttpPlan {
    pub duration: u64,
    pub warmup: u64,
    pub clients: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Direct,
    HaProxy,
    AirlockPass,
    AirlockFull,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::HaProxy => "haproxy",
            Target::AirlockPass => "airlock pass-through",
            Target::AirlockFull => "airlock full (record+mask)",
        }
    }
}

/// The two bodies: a small one and a 100 KiB JSON array of records with
/// an email each (what the full configuration's mask finds).
const BODIES: [(&str, &str); 2] = [("small", "/small"), ("json-100k", "/json")];

const POLICY_PASS: &str = "version: 1\ndefault: allow\nrules: []\n";
const POLICY_FULL: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: mask-pii
    match: {connection: {name: bench}}
    mask:
      detectors: [email, card]
      style: partial
";

fn json_body() -> Bytes {
    let mut text = String::from("[");
    let mut n = 0;
    while text.len() < 100 * 1024 {
        if n > 0 {
            text.push(',');
        }
        let _ = write!(
            text,
            "{{\"id\":{n},\"name\":\"user {n}\",\"email\":\"user{n}@example.com\",\"note\":\"plain text of no interest\"}}"
        );
        n += 1;
    }
    text.push(']');
    Bytes::from(text)
}

/// The upstream: a hyper HTTP/1.1 server on its own thread and runtime.
fn start_upstream(port: u16) -> Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let json = json_body();
    std::thread::Builder::new()
        .name("bench-upstream".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let json = json.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let json = json.clone();
                            async move { Ok::<_, Infallible>(answer(&request, json)) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), service)
                            .await;
                    });
                }
            });
        })?;
    Ok(())
}

fn answer(
    request: &hyper::Request<hyper::body::Incoming>,
    json: Bytes,
) -> hyper::Response<Full<Bytes>> {
    let body = match request.uri().path() {
        "/json" => json,
        _ => Bytes::from_static(b"{\"ok\":true}\n"),
    };
    let mut response = hyper::Response::new(Full::new(body));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// HAProxy in `mode http` in front of the upstream, in the foreground.
struct HaProxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl HaProxy {
    fn start(upstream: u16) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("airlock-bench-haproxy-")
            .tempdir()?;
        let port = free_port();
        let config = format!(
            "global\n  maxconn 4096\n\
             defaults\n  mode http\n  option http-keep-alive\n  http-reuse always\n  \
             timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             frontend bench\n  bind 127.0.0.1:{port}\n  default_backend upstream\n\
             backend upstream\n  server up 127.0.0.1:{upstream}\n"
        );
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, config)?;
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start haproxy (Debian package haproxy)")?;
        wait_for_port(port)?;
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn start_gateway(airlock: &Path, upstream: u16, full: bool) -> (GatewayProcess, String) {
    let mut yaml = format!(
        "connections:\n  - name: bench\n    protocol: http\n    url: http://127.0.0.1:{upstream}\n    \
         credential: bench-key\n    inject: {{header: X-Api-Key}}\n\
         limits:\n  max_sessions_per_identity: 100000\n  max_sessions_per_connection: 100000\n"
    );
    if !full {
        yaml.push_str("recording:\n  enabled: false\n");
    }
    let policy = if full { POLICY_FULL } else { POLICY_PASS };
    let gateway = GatewayProcess::start_with_policy_and_env(
        airlock,
        &yaml,
        policy,
        &[("AIRLOCK_LOG", "info")],
    );
    gateway.set_credential("bench-key", "api", "bench-upstream-key");
    let (_, token) = gateway.issue_token("bench-agent", &["bench"], "1h");
    (gateway, token)
}

/// Where the load generator sends its requests.
#[derive(Clone)]
struct Endpoint {
    port: u16,
    prefix: &'static str,
    authorization: Option<String>,
}

/// One measured run.
struct Run {
    requests: u64,
    errors: u64,
    bytes: u64,
    seconds: f64,
    /// Sorted latencies, microseconds.
    latencies: Vec<u32>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::EPSILON)
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies
            .get(index)
            .map_or(f64::NAN, |us| f64::from(*us) / 1000.0)
    }
}

/// One client: a keep-alive connection, requests back to back until
/// `until`; reconnects after an error.
async fn client(
    endpoint: Endpoint,
    path: &'static str,
    until: Instant,
) -> (u64, u64, u64, Vec<u32>) {
    let (mut requests, mut errors, mut bytes) = (0u64, 0u64, 0u64);
    let mut latencies = Vec::new();
    let uri = format!("{}{path}", endpoint.prefix);
    'connections: while Instant::now() < until {
        let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", endpoint.port)).await else {
            errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let Ok((mut sender, connection)) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)).await
        else {
            errors += 1;
            continue;
        };
        tokio::spawn(connection);
        while Instant::now() < until {
            let mut request =
                hyper::Request::get(uri.as_str()).header(hyper::header::HOST, "127.0.0.1");
            if let Some(authorization) = &endpoint.authorization {
                request = request.header(hyper::header::AUTHORIZATION, authorization.as_str());
            }
            let Ok(request) = request.body(Empty::<Bytes>::new()) else {
                errors += 1;
                break 'connections;
            };
            let started = Instant::now();
            let Ok(response) = sender.send_request(request).await else {
                errors += 1;
                continue 'connections;
            };
            let ok = response.status().is_success();
            let Ok(body) = response.into_body().collect().await else {
                errors += 1;
                continue 'connections;
            };
            let elapsed = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            if ok {
                requests += 1;
                bytes += body.to_bytes().len() as u64;
                latencies.push(elapsed);
            } else {
                errors += 1;
            }
        }
    }
    (requests, errors, bytes, latencies)
}

async fn load(endpoint: &Endpoint, path: &'static str, clients: usize, seconds: u64) -> Run {
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(client(endpoint.clone(), path, until)))
        .collect();
    let mut run = Run {
        requests: 0,
        errors: 0,
        bytes: 0,
        seconds: 0.0,
        latencies: Vec::new(),
    };
    for task in tasks {
        if let Ok((requests, errors, bytes, latencies)) = task.await {
            run.requests += requests;
            run.errors += errors;
            run.bytes += bytes;
            run.latencies.extend(latencies);
        }
    }
    run.seconds = started.elapsed().as_secs_f64();
    run.latencies.sort_unstable();
    run
}

/// One GET of `path` at `endpoint`: its body.
async fn fetch(endpoint: &Endpoint, path: &str) -> Result<Bytes> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", endpoint.port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let mut request = hyper::Request::get(format!("{}{path}", endpoint.prefix))
        .header(hyper::header::HOST, "127.0.0.1");
    if let Some(authorization) = &endpoint.authorization {
        request = request.header(hyper::header::AUTHORIZATION, authorization.as_str());
    }
    let response = sender.send_request(request.body(Empty::new())?).await?;
    if !response.status().is_success() {
        bail!("status {}", response.status());
    }
    Ok(response.into_body().collect().await?.to_bytes())
}

/// Runs the HTTP benchmark; the Markdown report.
pub fn run(airlock: &Path, plan: &HttpPlan, progress: &dyn Fn(&str)) -> Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let upstream = free_port();
    start_upstream(upstream)?;
    wait_for_port(upstream)?;
    progress("starting haproxy and airlock (pass-through, full)");
    let haproxy = HaProxy::start(upstream)?;
    let (pass, pass_token) = start_gateway(airlock, upstream, false);
    let (full, full_token) = start_gateway(airlock, upstream, true);
    let endpoints = [
        (
            Target::Direct,
            Endpoint {
                port: upstream,
                prefix: "",
                authorization: None,
            },
        ),
        (
            Target::HaProxy,
            Endpoint {
                port: haproxy.port,
                prefix: "",
                authorization: None,
            },
        ),
        (
            Target::AirlockPass,
            Endpoint {
                port: pass.http_port,
                prefix: "/bench",
                authorization: Some(format!("Bearer {pass_token}")),
            },
        ),
        (
            Target::AirlockFull,
            Endpoint {
                port: full.http_port,
                prefix: "/bench",
                authorization: Some(format!("Bearer {full_token}")),
            },
        ),
    ];

    let mut checks = Vec::new();
    for (target, endpoint) in &endpoints {
        let body = runtime.block_on(fetch(endpoint, "/json"));
        let line = match body {
            Ok(body) => {
                let text = String::from_utf8_lossy(&body);
                let valid = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
                format!(
                    "{}: {} bytes, valid JSON: {valid}, emails in clear: {}",
                    target.label(),
                    body.len(),
                    text.matches("@example.com").count()
                )
            }
            Err(error) => format!("{}: failed: {error:#}", target.label()),
        };
        checks.push(line);
    }

    let mut rows = Vec::new();
    for (body, path) in BODIES {
        for &clients in &plan.clients {
            for (target, endpoint) in &endpoints {
                progress(&format!("{body}, {clients} client(s): {}", target.label()));
                if plan.warmup > 0 {
                    runtime.block_on(load(endpoint, path, clients, plan.warmup));
                }
                let run = runtime.block_on(load(endpoint, path, clients, plan.duration));
                rows.push((body, clients, *target, run));
            }
        }
    }
    for (target, gateway) in [(Target::AirlockPass, &pass), (Target::AirlockFull, &full)] {
        let log = gateway.log();
        let problems = log
            .lines()
            .filter(|line| !line.contains("recording.enabled is false"))
            .filter(|line| {
                line.contains(" WARN ") || line.contains(" ERROR ") || line.contains("panicked")
            })
            .count();
        checks.push(format!(
            "{}: {problems} warning/error line(s) in its log",
            target.label()
        ));
    }
    Ok(render(plan, airlock, &checks, &rows))
}

fn render(
    plan: &HttpPlan,
    airlock: &Path,
    checks: &[String],
    rows: &[(&str, usize, Target, Run)],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# airlock-bench --http\n");
    let _ = writeln!(
        out,
        "airlock binary `{}`; {} s per run after {} s warm-up; machine load {}",
        airlock.display(),
        plan.duration,
        plan.warmup,
        crate::sys::load_average()
    );
    let _ = writeln!(
        out,
        "HAProxy: {}\n",
        crate::sys::command_line("haproxy", &["-v"])
            .and_then(|text| text.lines().next().map(str::to_string))
            .unwrap_or_else(|| "unknown".into())
    );
    let _ = writeln!(out, "Body check (`GET /json` through each target):\n");
    for check in checks {
        let _ = writeln!(out, "- {check}");
    }
    let _ = writeln!(
        out,
        "\n| body | clients | target | req/s | p50 ms | p99 ms | MB/s | errors | req/s vs direct | req/s vs haproxy | added p50 ms vs direct |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (body, clients, target, run) in rows {
        let find = |wanted: Target| {
            rows.iter()
                .find(|(b, c, t, _)| b == body && c == clients && *t == wanted)
                .map(|(_, _, _, run)| run)
        };
        let ratio = |base: Option<&Run>| {
            base.filter(|base| base.rate() > 0.0)
                .map_or("–".to_string(), |base| {
                    format!("{:.2}", run.rate() / base.rate())
                })
        };
        let added = find(Target::Direct).map_or("–".to_string(), |direct| {
            format!("{:+.3}", run.percentile_ms(0.5) - direct.percentile_ms(0.5))
        });
        let _ = writeln!(
            out,
            "| {body} | {clients} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {} | {} | {} | {added} |",
            target.label(),
            run.rate(),
            run.percentile_ms(0.5),
            run.percentile_ms(0.99),
            run.bytes as f64 / run.seconds.max(f64::EPSILON) / 1e6,
            run.errors,
            ratio(find(Target::Direct)),
            ratio(find(Target::HaProxy)),
        );
    }
    out
}
