//! End-to-end delivery tests against a real HTTP/1.1 receiver on
//! `127.0.0.1:0`: signatures, formats, retries with back-off, routing and
//! the never-blocking `notify`.

// Test support code (the receiver, helpers) lives outside `#[test]`
// functions, where clippy.toml's test allowances do not reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_notify::event::kinds;
use airlock_notify::{
    verify_signature, NotificationEvent, Notifier, NotifierOptions, NotifyError, ResolvedWebhook,
    WebhookConfig, WebhookFormat,
};
use airlock_types::Secret;
use serde_json::Value;

const SECRET: &[u8] = b"test-webhook-secret-0123456789";

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Recorded {
    at: Instant,
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    requests: Mutex<Vec<Recorded>>,
    /// Statuses to answer, in order; 200 once exhausted.
    script: Mutex<VecDeque<u16>>,
    /// Never answer: hold the connection open.
    hang: bool,
}

/// A tiny HTTP/1.1 server: one thread per connection, `Connection: close`.
struct TestReceiver {
    address: SocketAddr,
    state: Arc<ReceiverState>,
}

impl TestReceiver {
    fn start(script: &[u16], hang: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.iter().copied().collect()),
            hang,
            ..ReceiverState::default()
        });
        let shared = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                thread::spawn(move || handle(stream, &state));
            }
        });
        Self { address, state }
    }

    fn ok() -> Self {
        Self::start(&[], false)
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests();
            if requests.len() >= count || Instant::now() >= deadline {
                return requests;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn handle(stream: TcpStream, state: &ReceiverState) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    state.requests.lock().unwrap().push(Recorded {
        at: Instant::now(),
        method,
        path,
        headers,
        body,
    });
    if state.hang {
        thread::sleep(Duration::from_secs(60));
        return;
    }
    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
    let response =
        format!("HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let mut stream = reader.into_inner();
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn webhook(name: &str, url: &str, groups: &[&str], format: WebhookFormat) -> ResolvedWebhook {
    let mut config = WebhookConfig::new(
        name,
        url,
        groups.iter().map(|g| (*g).to_owned()).collect(),
        "AIRLOCK_WEBHOOK_SECRET",
    );
    config.format = format;
    ResolvedWebhook {
        config,
        secret: Secret::new(SECRET.to_vec()),
    }
}

fn review_event(id: &str, group: &str) -> NotificationEvent {
    NotificationEvent {
        kind: kinds::REVIEW_CREATED.to_owned(),
        id: id.to_owned(),
        approver_group: group.to_owned(),
        identity: "agent-7".to_owned(),
        connection: "prod-orders".to_owned(),
        summary: "DELETE FROM orders WHERE id = $1".to_owned(),
        rule: Some("deletes-need-review".to_owned()),
        policy_version: Some(3),
        expires_at: Some(1_700_000_000),
        url: None,
    }
}

/// Short back-off for tests that are not about the back-off itself.
fn fast_options() -> NotifierOptions {
    NotifierOptions {
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        request_timeout: Duration::from_secs(2),
        ..NotifierOptions::default()
    }
}

#[test]
fn json_event_arrives_with_a_valid_signature() {
    let receiver = TestReceiver::ok();
    let notifier = Notifier::start(vec![webhook(
        "dba-json",
        &receiver.url(),
        &["dba"],
        WebhookFormat::Json,
    )])
    .unwrap();
    let event = review_event("rv_1", "dba");
    notifier.notify(event.clone());
    assert!(
        notifier.flush(Duration::from_secs(10)),
        "queue did not drain"
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-airlock-event"), "review.created");
    let signature = request.header("x-airlock-signature");
    assert!(signature.starts_with("t="), "{signature}");
    assert!(
        verify_signature(SECRET, signature, &request.body, unix_now(), 300),
        "{signature}"
    );

    let body = request.json();
    assert_eq!(body["event"], "review.created");
    assert_eq!(body["id"], "rv_1");
    assert_eq!(body["summary"], "DELETE FROM orders WHERE id = $1");
    let parsed: NotificationEvent = serde_json::from_value(body).unwrap();
    assert_eq!(parsed, event);

    let stats = notifier.stats();
    assert_eq!(
        (stats.queued, stats.attempts, stats.delivered, stats.failed),
        (1, 1, 1, 0)
    );
    assert_eq!(notifier.webhook_stats("dba-json"), Some(stats));
}

#[test]
fn received_signature_fails_for_tampered_body_wrong_secret_or_stale_time() {
    let receiver = TestReceiver::ok();
    let notifier = Notifier::start(vec![webhook(
        "h",
        &receiver.url(),
        &["*"],
        WebhookFormat::Json,
    )])
    .unwrap();
    notifier.notify(review_event("rv_2", "dba"));
    assert!(notifier.flush(Duration::from_secs(10)));
    let request = receiver.requests().remove(0);
    let signature = request.header("x-airlock-signature").to_owned();
    let now = unix_now();
    assert!(verify_signature(
        SECRET,
        &signature,
        &request.body,
        now,
        300
    ));

    let mut tampered = request.body.clone();
    let position = tampered.windows(6).position(|w| w == b"DELETE").unwrap();
    tampered[position..position + 6].copy_from_slice(b"SELECT");
    assert!(
        !verify_signature(SECRET, &signature, &tampered, now, 300),
        "tampered body"
    );
    assert!(
        !verify_signature(
            b"wrong-secret-0123456789",
            &signature,
            &request.body,
            now,
            300
        ),
        "wrong secret"
    );
    assert!(
        !verify_signature(SECRET, &signature, &request.body, now + 400, 300),
        "stale"
    );
}

#[test]
fn slack_format_carries_the_commands_and_link() {
    let receiver = TestReceiver::ok();
    let mut slack = webhook("dba-slack", &receiver.url(), &["dba"], WebhookFormat::Slack);
    slack.config.review_url = Some("https://airlock.example/reviews/{id}".to_owned());
    let notifier = Notifier::start(vec![slack]).unwrap();
    notifier.notify(review_event("rv_3", "dba"));
    let mut access = review_event("ar_4", "dba");
    access.kind = kinds::ACCESS_REQUESTED.to_owned();
    access.summary = "ticket OPS-12".to_owned();
    notifier.notify(access);
    assert!(notifier.flush(Duration::from_secs(10)));

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one queue per webhook keeps order");
    let review = requests[0].json();
    let text = review["text"].as_str().unwrap();
    assert!(
        text.contains("*Review rv_3* is waiting for approval by *dba*"),
        "{text}"
    );
    assert!(text.contains("*Identity:* agent-7"), "{text}");
    assert!(text.contains("*Connection:* prod-orders"), "{text}");
    assert!(
        text.contains("```DELETE FROM orders WHERE id = $1```"),
        "{text}"
    );
    assert!(text.contains("`airlock review approve rv_3`"), "{text}");
    assert!(
        text.contains("`airlock review deny rv_3 --reason \"...\"`"),
        "{text}"
    );
    assert!(
        text.contains("<https://airlock.example/reviews/rv_3|Open review rv_3>"),
        "{text}"
    );
    assert!(review["blocks"].as_array().unwrap().len() >= 3);
    assert!(verify_signature(
        SECRET,
        requests[0].header("x-airlock-signature"),
        &requests[0].body,
        unix_now(),
        300
    ));

    let access = requests[1].json();
    let text = access["text"].as_str().unwrap();
    assert_eq!(requests[1].header("x-airlock-event"), "access.requested");
    assert!(text.contains("*Reason:* ticket OPS-12"), "{text}");
    assert!(text.contains("`airlock access approve ar_4`"), "{text}");
    assert!(text.contains("`airlock access deny ar_4`"), "{text}");
}

#[test]
fn failing_twice_then_succeeding_delivers_on_the_third_attempt_after_backoff() {
    let receiver = TestReceiver::start(&[500, 503], false);
    // Default options: the real 0.5 s, 1 s back-off schedule.
    let notifier = Notifier::start(vec![webhook(
        "flaky",
        &receiver.url(),
        &["dba"],
        WebhookFormat::Json,
    )])
    .unwrap();
    let started = Instant::now();
    notifier.notify(review_event("rv_5", "dba"));
    assert!(
        notifier.flush(Duration::from_secs(15)),
        "queue did not drain"
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "two failures and one success");
    let first_gap = requests[1].at - requests[0].at;
    let second_gap = requests[2].at - requests[1].at;
    assert!(
        first_gap >= Duration::from_millis(500),
        "first back-off {first_gap:?}"
    );
    assert!(
        second_gap >= Duration::from_millis(1000),
        "second back-off {second_gap:?}"
    );
    assert!(
        second_gap < Duration::from_millis(2000),
        "second back-off too long: {second_gap:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
    for request in &requests {
        assert_eq!(request.body, requests[0].body, "the same event each time");
        assert!(verify_signature(
            SECRET,
            request.header("x-airlock-signature"),
            &request.body,
            unix_now(),
            300
        ));
    }
    let stats = notifier.stats();
    assert_eq!(
        (stats.attempts, stats.retries, stats.delivered, stats.failed),
        (3, 2, 1, 0)
    );
}

#[test]
fn gives_up_after_max_attempts() {
    let receiver = TestReceiver::start(&[500; 10], false);
    let options = NotifierOptions {
        max_attempts: 4,
        ..fast_options()
    };
    let notifier = Notifier::start_with(
        vec![webhook(
            "down",
            &receiver.url(),
            &["dba"],
            WebhookFormat::Json,
        )],
        options,
    )
    .unwrap();
    notifier.notify(review_event("rv_6", "dba"));
    assert!(notifier.flush(Duration::from_secs(10)));
    assert_eq!(receiver.requests().len(), 4);
    let stats = notifier.stats();
    assert_eq!(
        (stats.attempts, stats.retries, stats.delivered, stats.failed),
        (4, 3, 0, 1)
    );
}

#[test]
fn client_errors_are_final_but_408_and_429_are_retried() {
    let refusing = TestReceiver::start(&[404], false);
    let throttling = TestReceiver::start(&[429, 408], false);
    let notifier = Notifier::start_with(
        vec![
            webhook("refusing", &refusing.url(), &["dba"], WebhookFormat::Json),
            webhook(
                "throttling",
                &throttling.url(),
                &["dba"],
                WebhookFormat::Json,
            ),
        ],
        fast_options(),
    )
    .unwrap();
    notifier.notify(review_event("rv_7", "dba"));
    assert!(notifier.flush(Duration::from_secs(10)));
    assert_eq!(refusing.requests().len(), 1, "404 is not retried");
    assert_eq!(throttling.requests().len(), 3, "429 and 408 are retried");
    let refused = notifier.webhook_stats("refusing").unwrap();
    assert_eq!(
        (refused.attempts, refused.failed, refused.delivered),
        (1, 1, 0)
    );
    let throttled = notifier.webhook_stats("throttling").unwrap();
    assert_eq!(
        (throttled.attempts, throttled.retries, throttled.delivered),
        (3, 2, 1)
    );
}

#[test]
fn connection_errors_are_retried() {
    // A port that was just free: nothing listens there.
    let address = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let options = NotifierOptions {
        max_attempts: 3,
        ..fast_options()
    };
    let notifier = Notifier::start_with(
        vec![webhook(
            "closed",
            &format!("http://{address}/hook"),
            &["dba"],
            WebhookFormat::Json,
        )],
        options,
    )
    .unwrap();
    notifier.notify(review_event("rv_8", "dba"));
    assert!(notifier.flush(Duration::from_secs(10)));
    let stats = notifier.stats();
    assert_eq!((stats.attempts, stats.retries, stats.failed), (3, 2, 1));
}

#[test]
fn routing_by_approver_group() {
    let dba = TestReceiver::ok();
    let security = TestReceiver::ok();
    let everyone = TestReceiver::ok();
    let notifier = Notifier::start_with(
        vec![
            webhook("dba", &dba.url(), &["dba"], WebhookFormat::Json),
            webhook(
                "security",
                &security.url(),
                &["security"],
                WebhookFormat::Json,
            ),
            webhook("everyone", &everyone.url(), &["*"], WebhookFormat::Json),
        ],
        fast_options(),
    )
    .unwrap();
    notifier.notify(review_event("for-dba", "dba"));
    notifier.notify(review_event("for-security", "security"));
    notifier.notify(review_event("for-nobody-but-star", "finance"));
    assert!(notifier.flush(Duration::from_secs(10)));

    let ids = |receiver: &TestReceiver| -> Vec<String> {
        receiver
            .requests()
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&dba), ["for-dba"]);
    assert_eq!(ids(&security), ["for-security"]);
    assert_eq!(
        ids(&everyone),
        ["for-dba", "for-security", "for-nobody-but-star"]
    );
    assert_eq!(notifier.stats().delivered, 5);
}

#[test]
fn notify_returns_at_once_while_the_receiver_hangs() {
    let hanging = TestReceiver::start(&[], true);
    let options = NotifierOptions {
        queue_capacity: 2,
        ..NotifierOptions::default()
    };
    let notifier = Notifier::start_with(
        vec![webhook(
            "hanging",
            &hanging.url(),
            &["dba"],
            WebhookFormat::Json,
        )],
        options,
    )
    .unwrap();

    let started = Instant::now();
    notifier.notify(review_event("first", "dba"));
    let first = started.elapsed();
    assert!(first < Duration::from_millis(50), "notify took {first:?}");
    // Wait until the worker is stuck inside the POST, then flood.
    assert_eq!(
        hanging.wait_for_requests(1, Duration::from_secs(5)).len(),
        1
    );
    let started = Instant::now();
    for index in 0..10 {
        notifier.notify(review_event(&format!("more-{index}"), "dba"));
    }
    let flood = started.elapsed();
    assert!(
        flood < Duration::from_millis(50),
        "10 notifies took {flood:?}"
    );

    let stats = notifier.stats();
    assert_eq!(stats.queued, 3, "one in flight and a queue of two");
    assert_eq!(stats.dropped, 8, "the rest dropped, not waited for");
    assert!(
        !notifier.flush(Duration::from_millis(100)),
        "cannot drain while the receiver hangs"
    );
}

#[test]
fn a_hanging_receiver_does_not_delay_other_webhooks() {
    let hanging = TestReceiver::start(&[], true);
    let healthy = TestReceiver::ok();
    let notifier = Notifier::start(vec![
        webhook("hanging", &hanging.url(), &["dba"], WebhookFormat::Json),
        webhook("healthy", &healthy.url(), &["dba"], WebhookFormat::Json),
    ])
    .unwrap();
    let started = Instant::now();
    notifier.notify(review_event("rv_9", "dba"));
    notifier.notify(review_event("rv_10", "dba"));
    let received = healthy.wait_for_requests(2, Duration::from_secs(3));
    assert_eq!(received.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        hanging.requests().len(),
        1,
        "the hanging webhook is still on its first event"
    );
}

#[test]
fn start_refuses_invalid_webhooks_and_weak_secrets() {
    let plain_http = webhook(
        "remote",
        "http://hooks.example.com/x",
        &["dba"],
        WebhookFormat::Json,
    );
    let duplicate = webhook(
        "remote",
        "https://hooks.example.com/y",
        &[],
        WebhookFormat::Json,
    );
    match Notifier::start(vec![plain_http, duplicate]) {
        Err(NotifyError::Config(problems)) => {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert_eq!(
                text,
                [
                    "notifications.webhooks[0].url: must use https (plain http is allowed on loopback only)",
                    "notifications.webhooks[1].approver_groups: must name at least one group (or \"*\" for all)",
                    "notifications.webhooks[1].name: duplicate webhook name \"remote\"",
                ]
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let mut weak = webhook(
        "weak",
        "https://hooks.example.com/x",
        &["dba"],
        WebhookFormat::Json,
    );
    weak.secret = Secret::new(b"short".to_vec());
    assert!(matches!(
        Notifier::start(vec![weak]),
        Err(NotifyError::WeakSecret { .. })
    ));
    let empty = Notifier::start(Vec::new()).unwrap();
    assert!(empty.webhook_names().is_empty());
}
