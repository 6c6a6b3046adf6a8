//! One store test suite, run against both backends: the embedded SQLite
//! store on a temporary file and the shared PostgreSQL store on a
//! throwaway cluster (`initdb` + `pg_ctl`, from the test kit), each case
//! on a fresh store.
//!
//! Every case gets two handles on the same store (two `Store`s on one
//! file, two `PgStore`s on one database: what two gateway processes hold)
//! and the manual clock both read, so the cases check the guarantees that
//! hold across processes as well as those of one handle.

// Tests: a failed step must stop the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use airlock_store::prelude::*;
use airlock_store::{
    hash_token, Clock, ConnectionRecord, EventFilter, ManualClock, NewEvent, NewReview, PgStore,
    PgStoreUrl, Store, StoreError, TokenRecord,
};
use airlock_testkit::PgCluster;
use serde_json::json;

/// 2100-01-01T00:00:00Z: a time the system clock has not reached, so a
/// time that comes out of a store came from its clock.
const START: i64 = 4_102_444_800;

/// Two handles on one fresh store and the clock they read.
struct Fixture {
    a: Arc<dyn StoreBackend>,
    b: Arc<dyn StoreBackend>,
    clock: Arc<ManualClock>,
}

type Case = (&'static str, fn(&Fixture));

const CASES: &[Case] = &[
    ("credentials", credentials),
    ("tokens", tokens),
    ("connections", connections),
    ("policies", policies),
    ("events_chain_and_filters", events_chain_and_filters),
    ("journaled_events_and_pruning", journaled_events_and_pruning),
    ("reviews_and_approvals", reviews_and_approvals),
    ("review_visibility_and_expiry", review_visibility_and_expiry),
    (
        "access_requests_grants_and_mfa",
        access_requests_grants_and_mfa,
    ),
    (
        "approval_used_once_across_handles",
        approval_used_once_across_handles,
    ),
    ("tool_pins_are_shared", tool_pins_are_shared),
    (
        "revocation_seen_by_the_other_handle",
        revocation_seen_by_the_other_handle,
    ),
    (
        "interleaved_appends_keep_one_chain",
        interleaved_appends_keep_one_chain,
    ),
    ("the_first_key_check_is_kept", the_first_key_check_is_kept),
    (
        "lockouts_count_across_handles",
        lockouts_count_across_handles,
    ),
];

/// Cases for the shared store only. A batch retried after a lost commit
/// answer happens only over a network (a local SQLite commit does not
/// succeed unseen), and SQLite's own tests append at one journal position
/// more than once.
const POSTGRES_CASES: &[Case] = &[
    (
        "a_retried_journal_batch_is_stored_once",
        a_retried_journal_batch_is_stored_once,
    ),
    (
        "changes_are_hinted_to_the_other_handle",
        changes_are_hinted_to_the_other_handle,
    ),
];

#[test]
fn the_suite_passes_on_sqlite() {
    for (name, case) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at_unix(START));
        let open = || -> Arc<dyn StoreBackend> {
            let store = Store::open_with_clock(dir.path(), clock.clone()).unwrap();
            store.set_chain_key([7; 32]).unwrap();
            Arc::new(store)
        };
        let fixture = Fixture {
            a: open(),
            b: open(),
            clock: clock.clone(),
        };
        eprintln!("sqlite: {name}");
        case(&fixture);
    }
}

#[test]
fn the_suite_passes_on_postgres() {
    let cluster = PgCluster::start();
    for (index, (name, case)) in CASES.iter().chain(POSTGRES_CASES).enumerate() {
        let database = format!("store_{index}");
        cluster.sql(&format!("CREATE DATABASE {database}"));
        let url = PgStoreUrl::parse(&format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            cluster.port
        ))
        .unwrap();
        let clock = Arc::new(ManualClock::at_unix(START));
        let open = || -> Arc<dyn StoreBackend> {
            let store = PgStore::open_with_clock(
                &url,
                Some(&cluster.superuser_password),
                None,
                clock.clone(),
            )
            .unwrap();
            store.set_chain_key([7; 32]).unwrap();
            Arc::new(store)
        };
        let fixture = Fixture {
            a: open(),
            b: open(),
            clock: clock.clone(),
        };
        eprintln!("postgres: {name}");
        case(&fixture);
    }
}

/// An unreachable PostgreSQL store fails clearly, without its password.
#[test]
fn an_unreachable_postgres_store_fails_without_its_password() {
    let port = airlock_testkit::free_port();
    let url = PgStoreUrl::parse(&format!("postgres://airlock@127.0.0.1:{port}/state")).unwrap();
    let error = match PgStore::open(&url, Some("hunter2-secret"), None) {
        Ok(_) => panic!("nothing listens on {port}"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains(&format!("postgres://airlock@127.0.0.1:{port}/state")),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

fn event(n: i64, session: Option<&str>) -> NewEvent {
    NewEvent {
        kind: if n % 2 == 0 {
            "command"
        } else {
            "session.start"
        }
        .into(),
        session_id: session.map(str::to_string),
        identity: Some(if n % 3 == 0 { "agent-3" } else { "agent-7" }.into()),
        data: json!({"n": n}).into(),
    }
}

fn numbers(events: &[airlock_store::EventRecord]) -> Vec<i64> {
    events
        .iter()
        .map(|event| event.data["n"].as_i64().unwrap())
        .collect()
}

fn credentials(f: &Fixture) {
    assert_eq!(
        f.a.set_credential("pg", "app", "password", b"n1", b"c1")
            .unwrap(),
        1
    );
    let created = f.b.credential("pg").unwrap().unwrap();
    assert_eq!(
        (created.version, created.created_at, created.rotated_at),
        (1, START, None)
    );
    assert_eq!(created.kind, "password");
    f.clock.advance_secs(60);
    assert_eq!(f.b.rotate_credential("pg", b"n2", b"c2").unwrap(), 2);
    // Rotation through one handle is what the other reads next.
    let rotated = f.a.credential("pg").unwrap().unwrap();
    assert_eq!(
        (
            rotated.ciphertext.as_slice(),
            rotated.nonce.as_slice(),
            rotated.rotated_at
        ),
        (&b"c2"[..], &b"n2"[..], Some(START + 60))
    );
    // Replacing keeps the version counting and takes the new kind.
    assert_eq!(
        f.a.set_credential("pg", "app2", "client_certificate", b"n3", b"c3")
            .unwrap(),
        3
    );
    assert_eq!(
        f.b.credential("pg").unwrap().unwrap().kind,
        "client_certificate"
    );
    assert!(matches!(
        f.a.rotate_credential("missing", b"n", b"c"),
        Err(StoreError::NotFound { .. })
    ));
    f.a.set_credential("other", "x", "password", b"n", b"c")
        .unwrap();
    let listed: Vec<(String, String)> =
        f.b.credentials()
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.kind))
            .collect();
    assert_eq!(
        listed,
        [
            ("other".to_string(), "password".to_string()),
            ("pg".to_string(), "client_certificate".to_string())
        ]
    );
    f.a.add_connection(&connection("prod", "pg")).unwrap();
    match f.b.delete_credential("pg") {
        Err(StoreError::Conflict(message)) => assert!(message.contains("prod"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    f.a.remove_connection("prod").unwrap();
    f.b.delete_credential("pg").unwrap();
    assert!(f.a.credential("pg").unwrap().is_none());
    assert!(matches!(
        f.a.delete_credential("pg"),
        Err(StoreError::NotFound { .. })
    ));
}

fn connection(name: &str, credential: &str) -> ConnectionRecord {
    ConnectionRecord {
        name: name.into(),
        protocol: "postgres".into(),
        address: "127.0.0.1:5432".into(),
        database: "app".into(),
        credential: credential.into(),
        tags: [("env".to_string(), "prod".to_string())].into(),
        tls: "require".into(),
        created_at: 0,
    }
}

fn token(id: &str, secret: &str, created_at: i64) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        hash: hash_token(secret),
        identity: "agent-7".into(),
        kind: "agent".into(),
        groups: vec!["agents".into()],
        connections: vec!["pg".into()],
        created_at,
        expires_at: created_at + 3600,
        revoked_at: None,
    }
}

fn tokens(f: &Fixture) {
    assert!(!f.a.has_admin_token().unwrap());
    f.a.insert_admin_token("adm_1", &hash_token("a")).unwrap();
    assert!(f.b.has_admin_token().unwrap());
    assert!(f.b.admin_token_valid(&hash_token("a")).unwrap());
    f.b.replace_admin_tokens("adm_2", &hash_token("b")).unwrap();
    assert!(!f.a.admin_token_valid(&hash_token("a")).unwrap());
    assert!(f.a.admin_token_valid(&hash_token("b")).unwrap());

    f.a.insert_token(&token("tok_1", "secret-1", 11)).unwrap();
    f.a.insert_token(&token("tok_2", "secret-2", 22)).unwrap();
    let found = f.b.token_by_hash(&hash_token("secret-1")).unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), found.groups.as_slice()),
        ("tok_1", &["agents".to_string()][..])
    );
    assert_eq!((found.created_at, found.expires_at), (11, 3611));
    assert!(f.b.token_by_hash(&hash_token("other")).unwrap().is_none());
    let ids: Vec<String> = f.a.tokens().unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["tok_2", "tok_1"], "newest first");
    f.clock.advance_secs(5);
    assert!(f.a.revoke_token("tok_1").unwrap());
    assert!(!f.b.revoke_token("tok_1").unwrap());
    assert!(matches!(
        f.a.revoke_token("tok_9"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        f.b.token("tok_1").unwrap().unwrap().revoked_at,
        Some(START + 5)
    );
}

fn connections(f: &Fixture) {
    f.clock.advance_secs(7);
    f.a.add_connection(&connection("pg", "app")).unwrap();
    assert!(matches!(
        f.b.add_connection(&connection("pg", "app")),
        Err(StoreError::AlreadyExists { .. })
    ));
    let listed = f.b.connections().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tags, connection("pg", "app").tags);
    assert_eq!(listed[0].created_at, START + 7);
    f.b.remove_connection("pg").unwrap();
    assert!(matches!(
        f.a.remove_connection("pg"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(f.a.connections().unwrap().is_empty());
}

fn policies(f: &Fixture) {
    assert!(f.a.live_policy().unwrap().is_none());
    assert_eq!(f.a.live_policy_version().unwrap(), None);
    assert_eq!(f.a.insert_policy_version("a", "config", None).unwrap(), 1);
    f.clock.advance_secs(90);
    assert_eq!(
        f.b.insert_policy_version("b", "apply", Some("tighten"))
            .unwrap(),
        2
    );
    let live = f.a.live_policy().unwrap().unwrap();
    assert_eq!(
        (live.version, live.text.as_deref(), live.created_at),
        (2, Some("b"), START + 90)
    );
    assert_eq!(f.a.live_policy_version().unwrap(), Some(2));
    assert_eq!(
        f.b.policy_version(1).unwrap().unwrap().text.as_deref(),
        Some("a")
    );
    assert!(f.b.policy_version(3).unwrap().is_none());
    let history = f.a.policy_versions().unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].text.is_none());
    assert_eq!(history[1].comment.as_deref(), Some("tighten"));
    // Replicas applying at once get consecutive versions.
    std::thread::scope(|scope| {
        for store in [&f.a, &f.b] {
            scope.spawn(move || {
                for n in 0..10 {
                    store
                        .insert_policy_version(&format!("p{n}"), "apply", None)
                        .unwrap();
                }
            });
        }
    });
    let versions: Vec<i64> =
        f.a.policy_versions()
            .unwrap()
            .iter()
            .map(|p| p.version)
            .collect();
    assert_eq!(versions, (1..=22).collect::<Vec<_>>());
}

fn events_chain_and_filters(f: &Fixture) {
    let start = START * 1_000_000;
    assert_eq!(f.a.append_event(event(0, Some("s-a"))).unwrap(), 1);
    f.clock.advance_micros(1_000);
    let ids =
        f.b.append_events(&[event(1, Some("s-b")), event(2, Some("s-a")), event(3, None)])
            .unwrap();
    assert_eq!(ids, [2, 3, 4]);
    f.clock.advance_micros(1_000);
    f.a.append_events(&[event(4, Some("s-b")), event(5, Some("s-a"))])
        .unwrap();
    let all = f.b.events_after(0, 100).unwrap();
    assert_eq!(numbers(&all), [0, 1, 2, 3, 4, 5]);
    assert_eq!(all[0].prev_hash, airlock_store::GENESIS_HASH);
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    let times: Vec<i64> = all.iter().map(|e| e.ts_micros).collect();
    assert_eq!(
        times,
        [
            start,
            start + 1_000,
            start + 1_000,
            start + 1_000,
            start + 2_000,
            start + 2_000
        ]
    );
    // The same hash as the chain's definition, under the chain key.
    let last = &all[5];
    let data = last.data.to_string();
    assert_eq!(
        airlock_store::event_hash(
            Some(&[7; 32]),
            &airlock_store::ChainLink {
                prev_hash: &last.prev_hash,
                id: last.id,
                ts_micros: last.ts_micros,
                kind: &last.kind,
                session_id: last.session_id.as_deref(),
                identity: last.identity.as_deref(),
                data: &data,
            }
        ),
        last.hash
    );
    let report = f.a.verify_chain().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.events_checked, report.last_id), (6, Some(6)));

    let read = |filter: EventFilter| {
        numbers(
            &f.a.events(&EventFilter {
                limit: 100,
                ..filter
            })
            .unwrap(),
        )
    };
    assert_eq!(
        read(EventFilter {
            session_id: Some("s-a".into()),
            ..EventFilter::default()
        }),
        [0, 2, 5]
    );
    assert_eq!(
        read(EventFilter {
            session_id: Some("s-a".into()),
            after_id: 1,
            ..EventFilter::default()
        }),
        [2, 5]
    );
    assert_eq!(
        read(EventFilter {
            kinds: vec!["session.start".into()],
            ..EventFilter::default()
        }),
        [1, 3, 5]
    );
    assert_eq!(
        read(EventFilter {
            identity: Some("agent-3".into()),
            ..EventFilter::default()
        }),
        [0, 3]
    );
    assert_eq!(
        read(EventFilter {
            since_micros: Some(start + 1_500),
            ..EventFilter::default()
        }),
        [4, 5]
    );
    assert_eq!(
        read(EventFilter {
            since_micros: Some(start + 500),
            kinds: vec!["command".into()],
            session_id: Some("s-b".into()),
            ..EventFilter::default()
        }),
        [4]
    );
    assert_eq!(
        numbers(
            &f.b.events(&EventFilter {
                limit: 2,
                ..EventFilter::default()
            })
            .unwrap()
        ),
        [0, 1]
    );
}

fn journaled_events_and_pruning(f: &Fixture) {
    let timed: Vec<(i64, NewEvent)> = (1..=10).map(|n| (n * 10, event(n, Some("s")))).collect();
    let (first, rest) = timed.split_at(4);
    f.a.append_journaled(first, "j-a", 100).unwrap();
    assert_eq!(f.b.journal_progress("j-a").unwrap(), 100);
    f.a.append_journaled(rest, "j-a", 250).unwrap();
    f.a.journal_barrier("j-a").unwrap();
    assert_eq!(f.a.journal_progress("j-a").unwrap(), 250);
    assert_eq!(f.a.journal_progress("j-b").unwrap(), 0);
    let times: Vec<i64> =
        f.b.events_after(0, 100)
            .unwrap()
            .iter()
            .map(|e| e.ts_micros)
            .collect();
    assert_eq!(times, (1..=10).map(|n| n * 10).collect::<Vec<_>>());
    f.b.forget_journal("j-a").unwrap();
    assert_eq!(f.a.journal_progress("j-a").unwrap(), 0);

    let report = f.b.prune_events(55).unwrap();
    assert_eq!((report.pruned_events, report.through_id), (5, Some(5)));
    let verified = f.a.verify_chain().unwrap();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(
        (verified.events_checked, verified.checkpoint_through_id),
        (5, Some(5))
    );
    assert_eq!(f.a.prune_events(0).unwrap().pruned_events, 0);
    let report = f.a.prune_events(1_000).unwrap();
    assert_eq!(report.through_id, Some(10));
    // An empty log still continues the ids and the chain.
    assert_eq!(f.b.append_event(event(11, None)).unwrap(), 11);
    let verified = f.a.verify_chain().unwrap();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(
        (verified.events_checked, verified.checkpoint_through_id),
        (1, Some(10))
    );
}

fn new_review(id: &str, fingerprint: &str, min_approvals: i64, expires_at: i64) -> NewReview {
    NewReview {
        id: id.into(),
        identity: "agent-7".into(),
        connection: "prod-pg".into(),
        statement: "delete from t where id = 1".into(),
        fingerprint: fingerprint.into(),
        classification: json!({"operations": ["delete"]}),
        rule: "agent-writes".into(),
        policy_version: 3,
        approvers: vec!["dba".into()],
        min_approvals,
        require_mfa: false,
        session_id: Some("s-1".into()),
        expires_at,
        kind: "command".into(),
        duration_seconds: None,
    }
}

fn reviews_and_approvals(f: &Fixture) {
    let first =
        f.a.create_or_find_review(&new_review("r-1", "f1", 2, START + 3600))
            .unwrap();
    assert_eq!(
        (first.status.as_str(), first.created_at),
        ("pending", START)
    );
    assert_eq!(first.classification, json!({"operations": ["delete"]}));
    let again =
        f.b.create_or_find_review(&new_review("r-2", "f1", 2, START + 3600))
            .unwrap();
    assert_eq!(
        again.id, "r-1",
        "the pending review of the same statement is reused"
    );
    assert!(f
        .a
        .consume_approval("agent-7", "prod-pg", "f1")
        .unwrap()
        .is_none());
    f.clock.advance_secs(10);
    let one =
        f.a.decide_review("r-1", "alice", true, None, false, 600, 2)
            .unwrap();
    assert_eq!(
        (one.status.as_str(), one.approvals, one.min_approvals),
        ("pending", 1, 2)
    );
    assert!(matches!(
        f.b.decide_review("r-1", "alice", true, None, false, 600, 2),
        Err(StoreError::Conflict(_))
    ));
    let two =
        f.b.decide_review("r-1", "bob", true, Some("ok"), true, 600, 2)
            .unwrap();
    assert_eq!(two.status, "approved");
    let decided = f.a.review("r-1").unwrap().unwrap();
    assert_eq!(
        (decided.decided_at, decided.valid_until, decided.uses_left),
        (Some(START + 10), Some(START + 610), 2)
    );
    assert_eq!(decided.decisions.len(), 2);
    assert!(decided
        .decisions
        .iter()
        .any(|d| d.approver == "bob" && d.mfa && d.comment.as_deref() == Some("ok")));
    assert_eq!(
        f.a.consume_approval("agent-7", "prod-pg", "f1")
            .unwrap()
            .as_deref(),
        Some("r-1")
    );
    assert_eq!(
        f.b.consume_approval("agent-7", "prod-pg", "f1")
            .unwrap()
            .as_deref(),
        Some("r-1")
    );
    assert!(
        f.a.consume_approval("agent-7", "prod-pg", "f1")
            .unwrap()
            .is_none(),
        "two runs only"
    );
    assert_eq!(f.b.review("r-1").unwrap().unwrap().status, "used");
    assert!(matches!(
        f.a.decide_review("r-1", "carol", false, None, false, 600, 1),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        f.a.decide_review("r-404", "carol", true, None, false, 600, 1),
        Err(StoreError::NotFound { .. })
    ));
    // A denial wins over approvals.
    f.a.create_or_find_review(&new_review("r-3", "f3", 2, START + 3600))
        .unwrap();
    f.a.decide_review("r-3", "alice", true, None, false, 600, 1)
        .unwrap();
    let denied =
        f.b.decide_review("r-3", "bob", false, Some("too risky"), false, 600, 1)
            .unwrap();
    assert_eq!(denied.status, "denied");
    assert_eq!(
        f.a.review("r-3").unwrap().unwrap().reason.as_deref(),
        Some("too risky")
    );
    // An approval past its validity on the store's clock is not usable.
    f.a.create_or_find_review(&new_review("r-4", "f4", 1, START + 3600))
        .unwrap();
    f.a.decide_review("r-4", "alice", true, None, false, 30, 1)
        .unwrap();
    f.clock.advance_secs(31);
    assert!(f
        .b
        .consume_approval("agent-7", "prod-pg", "f4")
        .unwrap()
        .is_none());
}

fn review_visibility_and_expiry(f: &Fixture) {
    f.a.create_or_find_review(&new_review("r-1", "f1", 1, START + 100))
        .unwrap();
    let mut other = new_review("r-2", "f2", 1, START + 3600);
    other.identity = "agent-8".into();
    other.approvers = vec!["security".into(), "dba".into()];
    f.a.create_or_find_review(&other).unwrap();
    let ids = |viewer: Option<(&str, &[String])>| -> Vec<String> {
        let mut ids: Vec<String> =
            f.b.reviews_visible_to(None, 100, viewer)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(None), ["r-1", "r-2"]);
    assert_eq!(ids(Some(("agent-7", &[]))), ["r-1"]);
    assert_eq!(ids(Some(("agent-8", &["agents".into()]))), ["r-2"]);
    assert_eq!(ids(Some(("alice", &["dba".into()]))), ["r-1", "r-2"]);
    assert_eq!(ids(Some(("sam", &["security".into()]))), ["r-2"]);
    assert!(ids(Some(("eve", &["dbas".into(), "'dba'".into()]))).is_empty());
    assert_eq!(f.a.reviews(Some("pending"), 1).unwrap().len(), 1);
    // Past r-1's expiry on the store's clock: expired, no longer decidable.
    f.clock.advance_secs(100);
    assert_eq!(f.b.review("r-1").unwrap().unwrap().status, "expired");
    assert!(matches!(
        f.a.decide_review("r-1", "alice", true, None, false, 30, 1),
        Err(StoreError::Conflict(_))
    ));
    let pending: Vec<String> =
        f.a.reviews(Some("pending"), 100)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
    assert_eq!(pending, ["r-2"]);
    // A new request for the expired statement is a new review.
    let fresh =
        f.b.create_or_find_review(&new_review("r-5", "f1", 1, START + 3600))
            .unwrap();
    assert_eq!(fresh.id, "r-5");
}

fn access_requests_grants_and_mfa(f: &Fixture) {
    let mut request = new_review("r-1", "access", 1, START + 3600);
    request.kind = "access".into();
    request.duration_seconds = Some(600);
    f.a.create_or_find_review(&request).unwrap();
    f.clock.advance_secs(10);
    let outcome =
        f.b.decide_review("r-1", "alice", true, None, false, 30, 1)
            .unwrap();
    let grant = outcome.grant.clone().unwrap();
    assert_eq!(outcome.status, "approved");
    assert_eq!(
        (
            grant.created_at,
            grant.expires_at,
            grant.review_id.as_deref()
        ),
        (START + 10, START + 610, Some("r-1"))
    );
    assert_eq!(
        f.a.active_grant("agent-7", "prod-pg").unwrap(),
        Some(grant.clone())
    );
    let direct = f.a.create_grant("agent-7", "prod-pg", "auto", 60).unwrap();
    assert_eq!(direct.expires_at, START + 70);
    assert_eq!(
        f.b.active_grant("agent-7", "prod-pg").unwrap().unwrap().id,
        grant.id,
        "the longest"
    );
    assert_eq!(f.b.grants(true).unwrap().len(), 2);
    f.clock.advance_secs(600);
    assert!(f.a.active_grant("agent-7", "prod-pg").unwrap().is_none());
    assert!(f.a.grants(true).unwrap().is_empty());
    assert_eq!(f.a.grants(false).unwrap().len(), 2);
    let revoked = f.b.revoke_grant(&direct.id).unwrap();
    assert_eq!(revoked.revoked_at, Some(START + 610));
    assert!(matches!(
        f.a.revoke_grant("g-none"),
        Err(StoreError::NotFound { .. })
    ));

    f.a.set_mfa_secret("alice", b"n", b"c").unwrap();
    let secret = f.b.mfa_secret("alice").unwrap().unwrap();
    assert_eq!(
        (
            secret.nonce.as_slice(),
            secret.ciphertext.as_slice(),
            secret.last_step
        ),
        (&b"n"[..], &b"c"[..], None)
    );
    assert!(f.a.use_mfa_step("alice", 100).unwrap());
    assert!(
        !f.b.use_mfa_step("alice", 100).unwrap(),
        "a replayed step on the other handle"
    );
    assert!(!f.a.use_mfa_step("alice", 99).unwrap());
    assert!(f.b.use_mfa_step("alice", 101).unwrap());
    assert!(f.a.mfa_secret("bob").unwrap().is_none());
    assert!(!f.a.use_mfa_step("bob", 1).unwrap());
}

/// Threads on both handles race for the runs of one approval: each run is
/// used exactly once.
fn tool_pins_are_shared(f: &Fixture) {
    use airlock_store::PinCheck;
    // Both handles sight the same tool at once: exactly one pins it.
    let checks = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for store in [&f.a, &f.b, &f.a, &f.b] {
            let checks = &checks;
            scope.spawn(move || {
                let check = store.check_tool("files", "read", "aa", "{}").unwrap();
                checks.lock().unwrap().push(check);
            });
        }
    });
    let checks = checks.into_inner().unwrap();
    assert_eq!(checks.iter().filter(|c| **c == PinCheck::Pinned).count(), 1);
    assert_eq!(
        checks.iter().filter(|c| **c == PinCheck::Unchanged).count(),
        3
    );
    // A changed definition seen by A is pending for B as well.
    assert_eq!(
        f.a.check_tool("files", "read", "bb", "{\"d\":1}").unwrap(),
        PinCheck::Changed { first: true }
    );
    assert_eq!(
        f.b.check_tool("files", "read", "bb", "{\"d\":1}").unwrap(),
        PinCheck::Changed { first: false }
    );
    assert!(matches!(
        f.b.approve_tool("files", "read", "cc", "admin"),
        Err(StoreError::NotFound { .. })
    ));
    let approved = f.b.approve_tool("files", "read", "bb", "admin").unwrap();
    assert_eq!(
        (approved.fingerprint.as_str(), approved.pinned_at),
        ("bb", f.clock.now_unix())
    );
    assert_eq!(approved.approved_by.as_deref(), Some("admin"));
    assert_eq!(
        f.a.check_tool("files", "read", "bb", "{}").unwrap(),
        PinCheck::Unchanged
    );
    let pins = f.a.tool_pins("files").unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].pending_fingerprint, None);
    assert!(f.a.tool_pins("other").unwrap().is_empty());
}

fn approval_used_once_across_handles(f: &Fixture) {
    f.a.create_or_find_review(&new_review("r-1", "f1", 1, START + 3600))
        .unwrap();
    f.a.decide_review("r-1", "alice", true, None, false, 600, 3)
        .unwrap();
    let used = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let store = if thread % 2 == 0 { &f.a } else { &f.b };
            let used = &used;
            scope.spawn(move || {
                for _ in 0..5 {
                    if let Some(id) = store.consume_approval("agent-7", "prod-pg", "f1").unwrap() {
                        used.lock().unwrap().push(id);
                    }
                }
            });
        }
    });
    assert_eq!(used.into_inner().unwrap(), ["r-1", "r-1", "r-1"]);
    let review = f.b.review("r-1").unwrap().unwrap();
    assert_eq!((review.status.as_str(), review.uses_left), ("used", 0));
}

fn revocation_seen_by_the_other_handle(f: &Fixture) {
    f.a.insert_token(&token("tok_1", "secret-1", START))
        .unwrap();
    assert!(f
        .b
        .token_by_hash(&hash_token("secret-1"))
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    assert!(f.a.revoke_token("tok_1").unwrap());
    assert_eq!(
        f.b.token_by_hash(&hash_token("secret-1"))
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(START)
    );
    f.a.insert_token(&token("tok_2", "secret-2", START))
        .unwrap();
    let asked = ["tok_1", "tok_2", "oidc:issuer", "tok_none"].map(String::from);
    assert_eq!(
        f.b.revoked_among(&asked).unwrap(),
        vec!["tok_1".to_string()]
    );
    assert!(f.b.revoked_among(&[]).unwrap().is_empty());
}

/// The shared store hints the other handle's feed once what a hint names
/// is committed: a resync when the listener goes live, then the revoked
/// token's id, a policy version, a review decision.
fn changes_are_hinted_to_the_other_handle(f: &Fixture) {
    use airlock_store::StoreChange;
    let feed = f.b.change_feed().expect("the shared store has a feed");
    let mut hints = feed.subscribe();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !feed.is_live() {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut next = || loop {
        match hints.try_recv() {
            Ok(change) => return change,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                assert!(std::time::Instant::now() < deadline, "no hint arrived");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(next(), StoreChange::Resync);
    f.a.insert_token(&token("tok_h", "secret-h", START))
        .unwrap();
    assert!(f.a.revoke_token("tok_h").unwrap());
    assert_eq!(next(), StoreChange::TokenRevoked("tok_h".into()));
    assert!(
        f.b.token("tok_h").unwrap().unwrap().revoked_at.is_some(),
        "hinted before it was committed"
    );
    f.a.insert_policy_version("version: 1\nrules: []\n", "test", None)
        .unwrap();
    assert_eq!(next(), StoreChange::Policy);
}

/// Threads on both handles append batches at once: one chain, no id twice,
/// every event stored once.
fn interleaved_appends_keep_one_chain(f: &Fixture) {
    std::thread::scope(|scope| {
        for thread in 0..4i64 {
            let store = if thread % 2 == 0 { &f.a } else { &f.b };
            scope.spawn(move || {
                for batch in 0..10i64 {
                    let events: Vec<NewEvent> = (0..3)
                        .map(|n| event(thread * 1_000 + batch * 10 + n, Some("s")))
                        .collect();
                    if batch % 2 == 0 {
                        store.append_events(&events).unwrap();
                    } else {
                        let timed: Vec<(i64, NewEvent)> = events
                            .into_iter()
                            .map(|event| (f.clock.now_micros(), event))
                            .collect();
                        let through = u64::try_from(batch).unwrap() + 1;
                        store
                            .append_journaled(&timed, &format!("j-{thread}"), through)
                            .unwrap();
                    }
                }
            });
        }
    });
    let report = f.b.verify_chain().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.events_checked, report.last_id), (120, Some(120)));
    let mut stored = numbers(&f.a.events_after(0, 1_000).unwrap());
    stored.sort_unstable();
    let mut expected: Vec<i64> = (0..4)
        .flat_map(|thread| {
            (0..10).flat_map(move |batch| (0..3).map(move |n| thread * 1_000 + batch * 10 + n))
        })
        .collect();
    expected.sort_unstable();
    assert_eq!(stored, expected);
}

/// The index retries a batch whose commit answer it lost: a batch at a
/// journal position already stored is not stored again.
fn a_retried_journal_batch_is_stored_once(f: &Fixture) {
    let batch: Vec<(i64, NewEvent)> = (1..=3).map(|n| (n, event(n, Some("s")))).collect();
    f.a.append_journaled(&batch, "j-a", 300).unwrap();
    f.b.append_journaled(&batch, "j-a", 300).unwrap();
    f.a.append_journaled(&batch[..1], "j-a", 200).unwrap();
    assert_eq!(numbers(&f.a.events_after(0, 100).unwrap()), [1, 2, 3]);
    assert_eq!(f.b.journal_progress("j-a").unwrap(), 300);
    f.a.append_journaled(&batch[..1], "j-a", 400).unwrap();
    assert_eq!(numbers(&f.a.events_after(0, 100).unwrap()), [1, 2, 3, 1]);
    assert!(f.b.verify_chain().unwrap().ok);
}

/// The first process's master-key check is recorded; another is refused,
/// on either handle.
fn the_first_key_check_is_kept(f: &Fixture) {
    assert!(f.a.claim_key_check("check-1").unwrap());
    assert!(f.b.claim_key_check("check-1").unwrap());
    assert!(!f.b.claim_key_check("check-2").unwrap());
    assert!(!f.a.claim_key_check("check-2").unwrap());
}

fn failure(realm: &str, source: &str, identity: &str) -> airlock_store::LoginFailure {
    airlock_store::LoginFailure {
        realm: realm.into(),
        source: source.into(),
        identity: identity.into(),
        window_micros: 60_000_000,
        threshold: 3,
        source_threshold: 5,
        lockout_micros: 300_000_000,
    }
}

/// Failures through both handles add up: the third of one pair locks it
/// for both, whichever recorded it; five identities sprayed from one
/// source lock the source; failures age out of the window; realms count
/// apart; unlocking through one handle ends the lock for both.
fn lockouts_count_across_handles(f: &Fixture) {
    let first =
        f.a.record_login_failure(&failure("login", "10.0.0.1", "agent-7"))
            .unwrap();
    assert_eq!(
        (first.source_failures, first.locked_now.as_deref()),
        (1, None)
    );
    f.b.record_login_failure(&failure("login", "10.0.0.1", "agent-7"))
        .unwrap();
    assert_eq!(
        f.a.login_lockout("login", "10.0.0.1", "agent-7").unwrap(),
        None
    );
    let third =
        f.a.record_login_failure(&failure("login", "10.0.0.1", "agent-7"))
            .unwrap();
    assert_eq!(third.locked_now.as_deref(), Some("identity"));
    assert_eq!(third.identity_failures, 3);
    let locked =
        f.b.login_lockout("login", "10.0.0.1", "agent-7")
            .unwrap()
            .unwrap();
    assert_eq!(locked.scope, "identity");
    assert_eq!(locked.until_micros, f.clock.now_micros() + 300_000_000);
    assert_eq!(
        f.b.login_lockout("login", "10.0.0.1", "agent-8").unwrap(),
        None
    );
    assert_eq!(
        f.b.login_lockout("api", "10.0.0.1", "agent-7").unwrap(),
        None
    );
    assert_eq!(f.a.active_login_lockouts().unwrap(), 1);

    // Spraying: one failure per identity, alternating handles.
    f.clock.advance_secs(61);
    let mut last = None;
    for (n, identity) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        let handle = if n % 2 == 0 { &f.a } else { &f.b };
        last = handle
            .record_login_failure(&failure("login", "10.0.0.2", identity))
            .unwrap()
            .locked_now;
    }
    assert_eq!(last.as_deref(), Some("source"));
    let locked =
        f.a.login_lockout("login", "10.0.0.2", "anyone")
            .unwrap()
            .unwrap();
    assert_eq!(locked.scope, "source");

    // Outside the window failures no longer count.
    f.a.record_login_failure(&failure("login", "10.0.0.3", "x"))
        .unwrap();
    f.a.record_login_failure(&failure("login", "10.0.0.3", "x"))
        .unwrap();
    f.clock.advance_secs(61);
    let late =
        f.b.record_login_failure(&failure("login", "10.0.0.3", "x"))
            .unwrap();
    assert_eq!((late.source_failures, late.locked_now), (1, None));

    // Unlocked through B, unlocked for A; expired locks are not active.
    assert_eq!(f.b.unlock_logins(Some("10.0.0.2"), None).unwrap(), 1);
    assert_eq!(
        f.a.login_lockout("login", "10.0.0.2", "anyone").unwrap(),
        None
    );
    f.clock.advance_secs(300);
    assert_eq!(f.a.active_login_lockouts().unwrap(), 0);
    assert_eq!(
        f.a.login_lockout("login", "10.0.0.1", "agent-7").unwrap(),
        None
    );
}
