//! A stand-in Kubernetes API server for tests (**not** a real
//! kube-apiserver: none can run or be built on the test machines, see
//! DESIGN.md "Test servers"). It speaks enough of the API for real
//! `kubectl` against it directly and through airlock: discovery
//! ([`discovery`]), create/get/list/update/patch/delete/deletecollection
//! with `resourceVersion` for namespaces, pods, configmaps, secrets and
//! deployments ([`store`]), watches as chunked streams of events,
//! server-side `Table` output ([`table`]), pod logs (`follow` streamed,
//! [`KubeApiFixture::append_log`]); it checks the bearer
//! token it was started with (the credential airlock injects), and keeps
//! an in-memory log of every request it received ([`LoggedRequest`]),
//! which is what enforcement tests assert on ("it never reached the
//! upstream"), and pod streams over WebSocket ([`streams`]: `exec` into a
//! real process, `attach`, `port-forward` to a local port; each served
//! stream is kept as an [`ExecRecord`], see [`KubeApiFixture::streams`]).
//!
//! Threads and blocking std sockets: one thread per connection, one
//! request per connection.

mod discovery;
mod mtls;
mod store;
mod streams;
mod table;
mod tunnel;
mod websocket;
mod wire;

pub use mtls::ClientCertificates;
pub use streams::ExecRecord;

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use discovery::{kind_of, ResourceKind};
use store::{json_patch, merge_patch, ObjectKey, Store};
use table::{table, wants_table};
use wire::{end_stream, read_request, start_stream, write_chunk, write_json, WireRequest};

/// One request as the fixture received it (before its token check).
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The injected bearer token was the fixture's own.
    pub authorized: bool,
}

impl LoggedRequest {
    /// Every value of header `name` (lowercase).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[derive(Default)]
struct State {
    store: Store,
    log: Vec<LoggedRequest>,
    /// Container output by `namespace/pod`, line by line.
    pod_logs: std::collections::BTreeMap<String, Vec<String>>,
    /// Every exec, attach and port-forward stream served, when it ended.
    streams: Vec<ExecRecord>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    token: String,
    address: String,
    stop: AtomicBool,
    /// With a TLS front: the secret its certificate-authenticated requests
    /// carry (they need no bearer token), and its URL.
    front: Mutex<Option<(String, String)>>,
}

/// The running fixture; stops when dropped.
pub struct KubeApiFixture {
    /// Its port on 127.0.0.1 (plaintext HTTP).
    pub port: u16,
    shared: Arc<Shared>,
}

impl KubeApiFixture {
    /// Starts the fixture on a free port, accepting `Authorization: Bearer
    /// <token>` only; namespaces `default` and `prod` exist, and pod `web-1`
    /// runs in `default`.
    pub fn start(token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Kubernetes API fixture");
        let port = listener.local_addr().expect("fixture address").port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            token: token.to_string(),
            address: format!("127.0.0.1:{port}"),
            stop: AtomicBool::new(false),
            front: Mutex::new(None),
        });
        let fixture = Self { port, shared };
        for namespace in ["default", "prod"] {
            fixture.put("namespaces", "", json!({"metadata": {"name": namespace}}));
        }
        fixture.put(
            "pods",
            "default",
            json!({"metadata": {"name": "web-1", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}),
        );
        let accept_shared = Arc::clone(&fixture.shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let shared = Arc::clone(&accept_shared);
                    std::thread::spawn(move || serve(&shared, &stream));
                }
            }
        });
        fixture
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        match &*self.shared.front.lock().unwrap() {
            Some((_, url)) => url.clone(),
            None => format!("http://{}", self.shared.address),
        }
    }

    /// Starts the fixture behind mutual TLS (`mtls`): [`Self::url`] is then
    /// `https://` and a request is served only over a TLS connection with a
    /// client certificate the returned CA signed (or, as before, with the
    /// bearer token, but only one that passed the TLS front).
    pub fn start_with_client_certificates(token: &str) -> (Self, ClientCertificates) {
        let fixture = Self::start(token);
        let certificates = mtls::certificates();
        let marker = format!("{:032x}", rand_marker());
        let port = mtls::start_front(
            &certificates,
            fixture.shared.address.clone(),
            marker.clone(),
        );
        *fixture.shared.front.lock().unwrap() = Some((marker, format!("https://127.0.0.1:{port}")));
        (fixture, certificates)
    }

    /// Stores an object (a test's seed), bypassing the API.
    pub fn put(&self, resource: &str, namespace: &str, object: Value) {
        let kind = discovery::KINDS
            .iter()
            .find(|kind| kind.resource == resource)
            .expect("a resource the fixture serves");
        let name = object["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_string();
        let key = (resource.to_string(), namespace.to_string(), name);
        let mut state = self.shared.state.lock().unwrap();
        let replace = state.store.objects.contains_key(&key);
        state
            .store
            .put(kind, key, object, replace, false)
            .expect("seed object");
        self.shared.changed.notify_all();
    }

    /// Appends a line to the output of pod `namespace/pod` (what
    /// `kubectl logs [-f]` shows).
    pub fn append_log(&self, namespace: &str, pod: &str, line: &str) {
        let mut state = self.shared.state.lock().unwrap();
        state
            .pod_logs
            .entry(format!("{namespace}/{pod}"))
            .or_default()
            .push(line.to_string());
        self.shared.changed.notify_all();
    }

    /// The stored object, if any.
    pub fn object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (
            resource.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        self.shared
            .state
            .lock()
            .unwrap()
            .store
            .objects
            .get(&key)
            .cloned()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.state.lock().unwrap().log.clone()
    }

    /// Every exec, attach and port-forward stream served so far (each
    /// added when it ended).
    pub fn streams(&self) -> Vec<ExecRecord> {
        self.shared.state.lock().unwrap().streams.clone()
    }

    /// Waits up to `timeout` for `count` served streams.
    pub fn wait_for_streams(&self, count: usize, timeout: Duration) -> Vec<ExecRecord> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap();
        while state.streams.len() < count && Instant::now() < deadline {
            state = self
                .shared
                .changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        state.streams.clone()
    }

    /// The requests with `method` whose path ends with `suffix`.
    pub fn requests_to(&self, method: &str, suffix: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == method && request.path.ends_with(suffix))
            .collect()
    }
}

impl Drop for KubeApiFixture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        let _ = TcpStream::connect(&self.shared.address);
    }
}

/// A per-fixture secret from the system's random source.
fn rand_marker() -> u128 {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
        .expect("random bytes");
    u128::from_le_bytes(bytes)
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    })
}

fn serve(shared: &Shared, stream: &TcpStream) {
    let Some(request) = read_request(stream) else {
        return;
    };
    let expected = format!("Bearer {}", shared.token);
    let front = shared.front.lock().unwrap().clone();
    let by_certificate = front.as_ref().is_some_and(|(marker, _)| {
        request.header(mtls::CERTIFICATE_HEADER) == Some(marker.as_str())
    });
    // Behind the TLS front only what came through it is served.
    let authorized = match &front {
        Some(_) => by_certificate,
        None => request.header("authorization") == Some(expected.as_str()),
    };
    shared.state.lock().unwrap().log.push(LoggedRequest {
        method: request.method.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request.headers.clone(),
        authorized,
    });
    if !authorized {
        write_json(stream, 401, &status(401, "Unauthorized", "Unauthorized"));
        return;
    }
    if request.method == "GET" {
        if let Some(document) = discovery::document(&request.path, &shared.address) {
            write_json(stream, 200, &document);
            return;
        }
    }
    let Some(target) = Target::parse(&request.path) else {
        write_json(
            stream,
            404,
            &status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
        return;
    };
    handle(shared, stream, &request, &target);
}

/// What a resource path names.
struct Target {
    kind: &'static ResourceKind,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl Target {
    fn parse(path: &str) -> Option<Self> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, mut rest) = match parts.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let mut namespace = None;
        if let ["namespaces", ns, after @ ..] = rest {
            if !after.is_empty() && !matches!(after[0], "status" | "finalize") {
                namespace = Some((*ns).to_string());
                rest = after;
            }
        }
        let resource = rest.first()?;
        Some(Self {
            kind: kind_of(group, version, resource)?,
            namespace,
            name: rest.get(1).map(|s| (*s).to_string()),
            subresource: rest.get(2).map(|s| (*s).to_string()),
        })
    }

    fn key(&self, name: &str) -> ObjectKey {
        let namespace = if self.kind.namespaced {
            self.namespace.clone().unwrap_or_else(|| "default".into())
        } else {
            String::new()
        };
        (self.kind.resource.to_string(), namespace, name.to_string())
    }
}

fn handle(shared: &Shared, stream: &TcpStream, request: &WireRequest, target: &Target) {
    let dry_run = request.param("dryRun").as_deref() == Some("All");
    let table_wanted = wants_table(request.header("accept"));
    match (
        request.method.as_str(),
        target.name.as_deref(),
        target.subresource.as_deref(),
    ) {
        ("GET", Some(name), Some("log")) => {
            let key = format!(
                "{}/{name}",
                target.namespace.as_deref().unwrap_or("default")
            );
            let follow = matches!(request.param("follow").as_deref(), Some("true" | "1"));
            pod_log(shared, stream, &key, follow);
        }
        (_, Some(name), Some(sub @ ("exec" | "attach" | "portforward")))
            if target.kind.resource == "pods" =>
        {
            let namespace = target.namespace.as_deref().unwrap_or("default");
            let exists = shared
                .state
                .lock()
                .unwrap()
                .store
                .objects
                .contains_key(&target.key(name));
            if exists {
                streams::serve_stream(shared, stream, request, &format!("{namespace}/{name}"), sub);
            } else {
                not_found(stream, target.kind, name);
            }
        }
        (_, _, Some(_)) => write_json(
            stream,
            400,
            &status(
                400,
                "BadRequest",
                "the fixture serves no subresource streams",
            ),
        ),
        ("GET", None, None) if matches!(request.param("watch").as_deref(), Some("true" | "1")) => {
            watch(shared, stream, request, target, table_wanted);
        }
        ("GET", None, None) => list(shared, stream, target, table_wanted),
        ("GET", Some(name), None) => {
            let state = shared.state.lock().unwrap();
            let key = target.key(name);
            match state.store.objects.get(&key) {
                Some(object) if table_wanted => {
                    let revision = state.store.revision.to_string();
                    write_json(
                        stream,
                        200,
                        &table(
                            target.kind,
                            &state.store,
                            &[(key, object.clone())],
                            &revision,
                        ),
                    );
                }
                Some(object) => write_json(stream, 200, object),
                None => not_found(stream, target.kind, name),
            }
        }
        ("POST", None, None) => write_object(shared, stream, request, target, None, dry_run),
        ("PUT", Some(name), None) => {
            write_object(shared, stream, request, target, Some(name), dry_run)
        }
        ("PATCH", Some(name), None) => patch(shared, stream, request, target, name, dry_run),
        ("DELETE", Some(name), None) => {
            let mut state = shared.state.lock().unwrap();
            match state.store.delete(&target.key(name), dry_run) {
                Some(_) => {
                    shared.changed.notify_all();
                    write_json(
                        stream,
                        200,
                        &json!({
                            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                            "details": {"name": name, "kind": target.kind.resource},
                        }),
                    );
                }
                None => not_found(stream, target.kind, name),
            }
        }
        ("DELETE", None, None) => delete_collection(shared, stream, target, dry_run),
        _ => write_json(
            stream,
            405,
            &status(
                405,
                "MethodNotAllowed",
                "the fixture does not serve this method here",
            ),
        ),
    }
}

fn list(shared: &Shared, stream: &TcpStream, target: &Target, table_wanted: bool) {
    let state = shared.state.lock().unwrap();
    let objects = state
        .store
        .list(target.kind.resource, target.namespace.as_deref());
    let revision = state.store.revision.to_string();
    if table_wanted {
        write_json(
            stream,
            200,
            &table(target.kind, &state.store, &objects, &revision),
        );
        return;
    }
    // List items carry no kind or apiVersion, as the API server sends them.
    let items: Vec<Value> = objects
        .into_iter()
        .map(|(_, mut object)| {
            if let Some(fields) = object.as_object_mut() {
                fields.remove("kind");
                fields.remove("apiVersion");
            }
            object
        })
        .collect();
    let list = json!({
        "kind": format!("{}List", target.kind.kind),
        "apiVersion": target.kind.api_version(),
        "metadata": {"resourceVersion": revision},
        "items": items,
    });
    write_json(stream, 200, &list);
}

fn delete_collection(shared: &Shared, stream: &TcpStream, target: &Target, dry_run: bool) {
    let mut state = shared.state.lock().unwrap();
    let keys: Vec<ObjectKey> = state
        .store
        .list(target.kind.resource, target.namespace.as_deref())
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for key in &keys {
        state.store.delete(key, dry_run);
    }
    shared.changed.notify_all();
    write_json(
        stream,
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    );
}

fn not_found(stream: &TcpStream, kind: &ResourceKind, name: &str) {
    let message = format!("{} \"{name}\" not found", kind.resource);
    let mut body = status(404, "NotFound", &message);
    body["details"] = json!({"name": name, "kind": kind.resource});
    write_json(stream, 404, &body);
}

fn write_object(
    shared: &Shared,
    stream: &TcpStream,
    request: &WireRequest,
    target: &Target,
    name: Option<&str>,
    dry_run: bool,
) {
    let Ok(object) = serde_json::from_slice::<Value>(&request.body) else {
        write_json(
            stream,
            415,
            &status(
                415,
                "UnsupportedMediaType",
                "the fixture reads JSON bodies only",
            ),
        );
        return;
    };
    let Some(name) = name
        .map(str::to_string)
        .or_else(|| object["metadata"]["name"].as_str().map(str::to_string))
    else {
        write_json(
            stream,
            422,
            &status(422, "Invalid", "metadata.name is required"),
        );
        return;
    };
    let mut state = shared.state.lock().unwrap();
    let replace = request.method == "PUT";
    match state
        .store
        .put(target.kind, target.key(&name), object, replace, dry_run)
    {
        Ok(stored) => {
            shared.changed.notify_all();
            write_json(stream, if replace { 200 } else { 201 }, &stored);
        }
        Err((code, reason, message)) => write_json(stream, code, &status(code, reason, &message)),
    }
}

fn patch(
    shared: &Shared,
    stream: &TcpStream,
    request: &WireRequest,
    target: &Target,
    name: &str,
    dry_run: bool,
) {
    let Ok(patch) = serde_json::from_slice::<Value>(&request.body) else {
        write_json(
            stream,
            415,
            &status(
                415,
                "UnsupportedMediaType",
                "the fixture reads JSON patches only",
            ),
        );
        return;
    };
    let content_type = request.header("content-type").unwrap_or("");
    let mut state = shared.state.lock().unwrap();
    let key = target.key(name);
    let current = state.store.objects.get(&key).cloned();
    let apply = content_type.starts_with("application/apply-patch");
    let (mut object, replace) = match current {
        Some(object) => (object, true),
        None if apply => (json!({}), false),
        None => return not_found(stream, target.kind, name),
    };
    if content_type.starts_with("application/json-patch+json") {
        if let Err(message) = json_patch(&mut object, &patch) {
            return write_json(stream, 422, &status(422, "Invalid", &message));
        }
    } else {
        // Merge, strategic merge (as merge: enough for the fixture's
        // objects) and server-side apply.
        merge_patch(&mut object, &patch);
    }
    match state.store.put(target.kind, key, object, replace, dry_run) {
        Ok(stored) => {
            shared.changed.notify_all();
            write_json(stream, if replace { 200 } else { 201 }, &stored);
        }
        Err((code, reason, message)) => write_json(stream, code, &status(code, reason, &message)),
    }
}

/// A watch: chunked `{"type", "object"}` events, each on its own line,
/// from `resourceVersion` on (all current objects as `ADDED` without
/// one), until `timeoutSeconds` (at most 60) or the client goes away.
fn watch(
    shared: &Shared,
    stream: &TcpStream,
    request: &WireRequest,
    target: &Target,
    table_wanted: bool,
) {
    let name_filter = request
        .param("fieldSelector")
        .and_then(|selector| selector.strip_prefix("metadata.name=").map(str::to_string));
    let timeout = request
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(60)
        .min(60);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut since = request
        .param("resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok())
        .filter(|rv| *rv > 0);
    if !start_stream(stream) {
        return;
    }
    let matches = |key: &ObjectKey| {
        key.0 == target.kind.resource
            && target.namespace.as_ref().is_none_or(|ns| *ns == key.1)
            && name_filter.as_ref().is_none_or(|name| *name == key.2)
    };
    while Instant::now() < deadline && !shared.stop.load(Ordering::SeqCst) {
        let mut events = Vec::new();
        {
            let mut state = shared.state.lock().unwrap();
            if since.is_none() {
                for (key, object) in state
                    .store
                    .list(target.kind.resource, target.namespace.as_deref())
                {
                    if matches(&key) {
                        events.push(("ADDED", key, object));
                    }
                }
                since = Some(state.store.revision);
            } else {
                let from = since.unwrap_or(0);
                let fresh: Vec<_> = state
                    .store
                    .changes
                    .iter()
                    .filter(|c| c.revision > from && matches(&c.key))
                    .cloned()
                    .collect();
                if fresh.is_empty() {
                    state = shared
                        .changed
                        .wait_timeout(state, Duration::from_millis(200))
                        .unwrap()
                        .0;
                    drop(state);
                    continue;
                }
                since = fresh.last().map(|c| c.revision);
                events.extend(fresh.into_iter().map(|c| (c.kind, c.key, c.object)));
            }
            for (kind, key, object) in events.iter_mut() {
                if table_wanted {
                    let revision = object["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("0")
                        .to_string();
                    *object = table(
                        target.kind,
                        &state.store,
                        &[(key.clone(), object.clone())],
                        &revision,
                    );
                }
                let _ = kind;
            }
        }
        for (kind, _, object) in events {
            let mut line =
                serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
            line.push(b'\n');
            if !write_chunk(stream, &line) {
                return;
            }
        }
    }
    end_stream(stream);
}

/// A pod's log: what is there (`text/plain`), and with `follow` every
/// line appended later, streamed, until 60 s pass or the client goes away.
fn pod_log(shared: &Shared, stream: &TcpStream, key: &str, follow: bool) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let mut writer = stream;
    if std::io::Write::write_all(&mut writer, head.as_bytes()).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    loop {
        let lines: Vec<String> = {
            let state = shared.state.lock().unwrap();
            let all = state.pod_logs.get(key).cloned().unwrap_or_default();
            if all.len() == sent && follow {
                let _ = shared
                    .changed
                    .wait_timeout(state, Duration::from_millis(200));
                Vec::new()
            } else {
                all.into_iter().skip(sent).collect()
            }
        };
        sent += lines.len();
        for line in lines {
            if !write_chunk(stream, format!("{line}\n").as_bytes()) {
                return;
            }
        }
        if !follow || Instant::now() >= deadline || shared.stop.load(Ordering::SeqCst) {
            break;
        }
    }
    end_stream(stream);
}
