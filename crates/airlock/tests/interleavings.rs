//! A property over protocol interleavings, against a real PostgreSQL:
//! whatever mix of `Parse`, `Bind`, `Describe`, `Execute`, `Close`, `Sync`
//! and `Query` a client sends (with `PREPARE`, `EXECUTE`, `DEALLOCATE`,
//! `DECLARE`, `FETCH`, `CLOSE`, `DISCARD` texts, statements the server
//! rejects and statements that fail when they run, pipelined or not), once
//! a policy that denies deletes is live no delete runs: not one prepared
//! earlier under a policy that allowed it, not one reached through a name
//! the server rejected a redefinition of, not one behind a cursor. Checked
//! on the upstream's table. And no raw email ever reaches the client.
//!
//! Cases are generated from a seeded generator (reproducible: a failure
//! prints its seed and messages).

// Tests: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use airlock_pg::backend::{decode_data_row, tag};
use airlock_pg::frontend::{encode_parse, encode_password, encode_query, encode_sync};
use airlock_pg::startup::encode_startup;
use airlock_pg::FrameDecoder;
use airlock_testkit::GatewayProcess;
use bytes::BytesMut;
use common::wire::{bind, close, describe, execute};
use common::{setup_with_policy, stderr};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const V1_ALLOWS_ALL: &str = "version: 1
default: allow
rules:
  - name: unclassified
    match: {complete: false}
    action: allow
  - name: mask
    match: {}
    mask: {detectors: [email], style: full}
";

const V2_DENIES_DELETES: &str = "version: 1
default: deny
rules:
  - name: reads
    match: {access: read}
    action: allow
  - name: read-statements
    match: {operations: [select, prepare, execute, transaction, other]}
    action: allow
  - name: no-deletes
    match: {operations: [delete]}
    action: deny
  - name: mask
    match: {}
    mask: {detectors: [email], style: full}
";

/// xorshift64*: small, deterministic, good enough to pick messages.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn texts(rng: &mut Rng) -> String {
    let id = 1 + rng.next() % 40;
    let options = [
        "select email from t where id = 1".to_string(),
        format!("delete from t where id = {id}"),
        format!("PREPARE a AS delete from t where id = {id}"),
        format!("PREPARE a AS delete from t where id = {id}"),
        format!("delete from t where id = {id}"),
        "PREPARE b AS select email from t".to_string(),
        "PREPARE a AS select 1".to_string(),
        "EXECUTE a".to_string(),
        "EXECUTE b".to_string(),
        "DEALLOCATE a".to_string(),
        "DEALLOCATE ALL".to_string(),
        "DECLARE c CURSOR WITH HOLD FOR select email from t".to_string(),
        "DECLARE p CURSOR WITH HOLD FOR select email from t".to_string(),
        "FETCH 2 FROM c".to_string(),
        "FETCH 2 FROM p".to_string(),
        "CLOSE c".to_string(),
        "CLOSE ALL".to_string(),
        "BEGIN".to_string(),
        "COMMIT".to_string(),
        "ROLLBACK".to_string(),
        "select 1/0".to_string(),
        "select from nowhere_at_all".to_string(),
        "DISCARD ALL".to_string(),
    ];
    rng.pick(&options).clone()
}

/// One generated batch: the bytes, a description, and how many
/// `ReadyForQuery` messages it earns.
fn batch(rng: &mut Rng) -> (Vec<u8>, String, usize) {
    let statements = ["", "a", "b"];
    let portals = ["", "p", "c"];
    if rng.next().is_multiple_of(4) {
        let text = texts(rng);
        let mut out = Vec::new();
        encode_query(&mut out, &text);
        return (out, format!("Query({text})"), 1);
    }
    let mut out = Vec::new();
    let mut described = Vec::new();
    for _ in 0..(1 + rng.next() % 5) {
        match rng.next() % 8 {
            // Bind and Execute together: what runs a statement.
            6 | 7 => {
                let portal = *rng.pick(&portals);
                let name = *rng.pick(&statements);
                out.extend_from_slice(&bind(portal, name, &[], (rng.next() % 2) as i16));
                out.extend_from_slice(&execute(portal));
                described.push(format!("Bind({portal:?}, {name:?}) Execute({portal:?})"));
            }
            0 | 1 => {
                let name = *rng.pick(&statements);
                let text = texts(rng);
                encode_parse(&mut out, name, &text);
                described.push(format!("Parse({name:?}, {text})"));
            }
            2 => {
                let portal = *rng.pick(&portals);
                let name = *rng.pick(&statements);
                out.extend_from_slice(&bind(portal, name, &[], (rng.next() % 2) as i16));
                described.push(format!("Bind({portal:?}, {name:?})"));
            }
            3 => {
                let portal = *rng.pick(&portals);
                out.extend_from_slice(&execute(portal));
                described.push(format!("Execute({portal:?})"));
            }
            4 => {
                let (kind, name) = if rng.next().is_multiple_of(2) {
                    (b'S', *rng.pick(&statements))
                } else {
                    (b'P', *rng.pick(&portals))
                };
                out.extend_from_slice(&describe(kind, name));
                described.push(format!("Describe({}, {name:?})", kind as char));
            }
            _ => {
                let (kind, name) = if rng.next().is_multiple_of(2) {
                    (b'S', *rng.pick(&statements))
                } else {
                    (b'P', *rng.pick(&portals))
                };
                out.extend_from_slice(&close(kind, name));
                described.push(format!("Close({}, {name:?})", kind as char));
            }
        }
    }
    encode_sync(&mut out);
    described.push("Sync".into());
    (out, described.join(" "), 1)
}

struct Session {
    stream: TcpStream,
    buf: BytesMut,
}

impl Session {
    fn open(gateway: &GatewayProcess, token: &str) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", gateway.pg_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut session = Self {
            stream,
            buf: BytesMut::new(),
        };
        session
            .stream
            .write_all(&encode_startup(&[
                ("user", "agent-7"),
                ("database", "pg-test"),
            ]))
            .unwrap();
        let mut request = [0u8; 9];
        session.stream.read_exact(&mut request).unwrap();
        let mut password = Vec::new();
        encode_password(&mut password, token);
        session.stream.write_all(&password).unwrap();
        let (ready, _) = session.read_ready(1);
        assert_eq!(ready, 1, "authentication failed");
        session
    }

    /// Reads until `count` `ReadyForQuery` messages; returns how many came
    /// and every value of every row.
    fn read_ready(&mut self, count: usize) -> (usize, Vec<String>) {
        let decoder = FrameDecoder::default();
        let mut values = Vec::new();
        let mut ready = 0;
        let mut chunk = [0u8; 8192];
        while ready < count {
            while let Ok(Some(frame)) = decoder.decode(&mut self.buf) {
                match frame.tag() {
                    tag::DATA_ROW => {
                        for value in decode_data_row(frame.body()).unwrap().into_iter().flatten() {
                            values.push(String::from_utf8_lossy(value).into_owned());
                        }
                    }
                    tag::READY_FOR_QUERY => ready += 1,
                    _ => {}
                }
                if ready == count {
                    return (ready, values);
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return (ready, values),
                Ok(read) => self.buf.extend_from_slice(&chunk[..read]),
            }
        }
        (ready, values)
    }

    /// Sends `batches` batches, sometimes two in one write; returns the
    /// log of what was sent and every value received.
    fn run(&mut self, rng: &mut Rng, batches: usize, log: &mut Vec<String>) -> Vec<String> {
        let mut values = Vec::new();
        let mut sent = 0;
        while sent < batches {
            let pipelined = 1 + (rng.next() % 2) as usize;
            let mut bytes = Vec::new();
            let mut expected = 0;
            for _ in 0..pipelined {
                let (part, description, ready) = batch(rng);
                bytes.extend_from_slice(&part);
                log.push(description);
                expected += ready;
            }
            self.stream.write_all(&bytes).unwrap();
            let (ready, received) = self.read_ready(expected);
            assert_eq!(
                ready,
                expected,
                "the session ended or hung after:\n{}",
                log.join("\n")
            );
            values.extend(received);
            sent += pipelined;
        }
        values
    }
}

fn apply(gateway: &GatewayProcess, policy: &str, case: u64) {
    let file = gateway.data_dir().join(format!("policy-case-{case}.yaml"));
    std::fs::write(&file, policy).unwrap();
    let output = gateway.cli(&["policy", "apply", file.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn no_interleaving_runs_a_delete_the_live_policy_denies() {
    let (cluster, gateway) = setup_with_policy("", V1_ALLOWS_ALL);
    cluster.sql_in(
        "appdb",
        "create table t(id int primary key, email text);
         insert into t select g, 'user' || g || '@example.com' from generate_series(1, 40) g;
         grant all on t to app",
    );
    let (_id, token) = gateway.issue_token("agent-7", &["pg-test"], "60m");
    let cases: u64 = if std::env::var_os("AIRLOCK_LONG_PROPERTIES").is_some() {
        200
    } else {
        24
    };
    for case in 0..cases {
        let seed = 0x9E37_79B9_7F4A_7C15 ^ (case + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let mut rng = Rng(seed);
        let mut log = Vec::new();
        if case > 0 {
            apply(&gateway, V1_ALLOWS_ALL, case * 2);
        }
        // Refill, so phase 1 has rows to delete.
        cluster.sql_in(
            "appdb",
            "insert into t select g, 'user' || g || '@example.com' from generate_series(1, 40) g on conflict do nothing",
        );
        let mut session = Session::open(&gateway, &token);
        // Phase 1: anything goes; the server is left holding statements,
        // portals and cursors that delete.
        log.push("-- v1 (allows deletes)".into());
        let values = session.run(&mut rng, 6, &mut log);
        apply(&gateway, V2_DENIES_DELETES, case * 2 + 1);
        // Every row back: any delete that runs now shows.
        cluster.sql_in(
            "appdb",
            "insert into t select g, 'user' || g || '@example.com' from generate_series(1, 40) g on conflict do nothing",
        );
        let before = cluster.sql_in("appdb", "select count(*) from t");
        // Phase 2: nothing that deletes may run.
        log.push("-- v2 (denies deletes)".into());
        let more = session.run(&mut rng, 10, &mut log);
        let after = cluster.sql_in("appdb", "select count(*) from t");
        assert_eq!(
            before,
            after,
            "case {case} (seed {seed:#x}): a delete ran under the policy that denies it:\n{}",
            log.join("\n")
        );
        for value in values.iter().chain(&more) {
            assert!(
                !value.contains("@example.com"),
                "case {case} (seed {seed:#x}): a raw email reached the client ({value}):\n{}",
                log.join("\n")
            );
        }
    }
}
