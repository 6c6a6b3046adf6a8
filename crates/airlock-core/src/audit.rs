//! Reading the record: session lists, session timelines for show and
//! replay, export for SIEMs, chain verification and the pruning job.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

use airlock_store::{now_micros, EventFilter, EventRecord, PruneReport, VerifyReport};

use crate::duration::parse_duration;
use crate::error::AdminError;
use crate::state::GatewayState;

/// Largest page of events one request returns.
pub const MAX_PAGE: i64 = 10_000;
/// Most events one session's export holds.
pub const MAX_SESSION_EXPORT: usize = 200_000;

/// A session as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub identity: String,
    pub connection: String,
    pub client_address: String,
    pub tls: bool,
    pub token_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    pub duration_ms: Option<u64>,
    pub commands: Option<u64>,
    pub live: bool,
}

/// One command in a session's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub seq: u64,
    /// Milliseconds since the session started.
    pub offset_ms: f64,
    /// `query`, `parse` or `execute`.
    pub message: String,
    pub statement: String,
    pub parameters: u64,
    /// `forward` or `refuse`.
    pub decision: String,
    pub refusal: Option<String>,
    /// The recorded outcome, once the upstream answered.
    pub result: Option<Value>,
}

/// A session's metadata and timeline.
#[derive(Debug, Clone, Serialize)]
pub struct SessionDetail {
    pub session: SessionInfo,
    pub timeline: Vec<TimelineEntry>,
    /// Other events of the session (upstream failures …).
    pub other_events: Vec<EventRecord>,
}

/// Filters for listing sessions.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub identity: Option<String>,
    pub connection: Option<String>,
    pub since_micros: Option<i64>,
    pub limit: i64,
}

/// Parses `since`: RFC 3339 (`2026-11-25T10:00:00Z`), Unix seconds, or a
/// duration back from now (`1h`, `7d`). Returns Unix microseconds.
pub fn parse_since(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(moment) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(i64::try_from(moment.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX));
    }
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds.saturating_mul(1_000_000));
    }
    match parse_duration(text) {
        Ok(ago) => Ok(now_micros() - i64::try_from(ago.as_micros()).unwrap_or(i64::MAX / 2)),
        Err(_) => Err(format!(
            "since {text:?} is not an RFC 3339 time (2026-11-25T10:00:00Z), Unix seconds, or a duration (1h, 7d)"
        )),
    }
}

fn session_info(start: &EventRecord, end: Option<&EventRecord>, live: bool) -> SessionInfo {
    let text = |value: &Value, key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    SessionInfo {
        session_id: start.session_id.clone().unwrap_or_default(),
        identity: start.identity.clone().unwrap_or_default(),
        connection: text(&start.data, "connection"),
        client_address: text(&start.data, "client_address"),
        tls: start
            .data
            .get("tls")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        token_id: text(&start.data, "token_id"),
        started_at: start.ts_micros / 1_000_000,
        ended_at: end.map(|end| end.ts_micros / 1_000_000),
        ended_by: end.map(|end| text(&end.data, "ended_by")),
        duration_ms: end.and_then(|end| end.data.get("duration_ms").and_then(Value::as_u64)),
        commands: end.and_then(|end| end.data.get("commands").and_then(Value::as_u64)),
        live,
    }
}

/// How long a read waits for the event index to catch up.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl GatewayState {
    /// Lets the event index catch up with the journal, so a read sees every
    /// event recorded before it (see `recorder`). On time-out the read goes
    /// ahead with what is indexed.
    fn settle_recording(&self) {
        if !self.recorder.flush(SETTLE_TIMEOUT) {
            tracing::warn!("the event index is behind; this read may miss the newest events");
        }
    }

    /// Sessions, newest last, matching `filter`.
    pub fn list_sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionInfo>, AdminError> {
        self.settle_recording();
        let starts = self.store.events(&EventFilter {
            kinds: vec!["session.start".into()],
            identity: filter.identity.clone(),
            since_micros: filter.since_micros,
            limit: MAX_PAGE,
            ..EventFilter::default()
        })?;
        let live: Vec<String> = self
            .sessions
            .list()
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        let mut sessions = Vec::new();
        for start in starts.iter().filter(|start| {
            filter.connection.as_ref().is_none_or(|wanted| {
                start.data.get("connection").and_then(Value::as_str) == Some(wanted)
            })
        }) {
            let session_id = start.session_id.clone().unwrap_or_default();
            let end = self
                .store
                .events(&EventFilter {
                    after_id: start.id,
                    session_id: Some(session_id.clone()),
                    kinds: vec!["session.end".into()],
                    limit: 1,
                    ..EventFilter::default()
                })?
                .into_iter()
                .next();
            let is_live = end.is_none() && live.contains(&session_id);
            sessions.push(session_info(start, end.as_ref(), is_live));
        }
        let limit = usize::try_from(filter.limit.clamp(1, MAX_PAGE)).unwrap_or(100);
        let skip = sessions.len().saturating_sub(limit);
        Ok(sessions.into_iter().skip(skip).collect())
    }

    /// One session's metadata and command timeline.
    pub fn session_detail(&self, session_id: &str) -> Result<SessionDetail, AdminError> {
        self.settle_recording();
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.events(&EventFilter {
                after_id: after,
                session_id: Some(session_id.to_string()),
                limit: MAX_PAGE,
                ..EventFilter::default()
            })?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let full = i64::try_from(page.len()).unwrap_or(0) == MAX_PAGE;
            events.extend(page);
            if !full {
                break;
            }
        }
        let start = events
            .iter()
            .find(|event| event.kind == "session.start")
            .ok_or_else(|| AdminError::NotFound(format!("session {session_id:?} not found")))?;
        let end = events.iter().find(|event| event.kind == "session.end");
        let live = end.is_none()
            && self
                .sessions
                .list()
                .iter()
                .any(|s| s.session_id == session_id);
        let session = session_info(start, end, live);
        let mut results: BTreeMap<u64, Value> = BTreeMap::new();
        for event in events.iter().filter(|event| event.kind == "command.result") {
            if let Some(seq) = event.data.get("seq").and_then(Value::as_u64) {
                results.insert(seq, event.data.clone());
            }
        }
        let mut timeline = Vec::new();
        let mut other_events = Vec::new();
        for event in &events {
            match event.kind.as_str() {
                "command" => {
                    let data = &event.data;
                    let seq = data.get("seq").and_then(Value::as_u64).unwrap_or(0);
                    let text = |key: &str| {
                        data.get(key)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string()
                    };
                    timeline.push(TimelineEntry {
                        seq,
                        offset_ms: (event.ts_micros - start.ts_micros) as f64 / 1000.0,
                        message: text("message"),
                        statement: text("statement"),
                        parameters: data.get("parameters").and_then(Value::as_u64).unwrap_or(0),
                        decision: text("decision"),
                        refusal: data
                            .get("refusal")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        // Folded into the command's row when indexed
                        // with it, an event of its own otherwise.
                        result: data.get("result").cloned().or_else(|| results.remove(&seq)),
                    });
                }
                "session.start" | "session.end" | "command.result" => {}
                _ => other_events.push(event.clone()),
            }
        }
        Ok(SessionDetail {
            session,
            timeline,
            other_events,
        })
    }

    /// Every event of one session, oldest first (at most
    /// [`MAX_SESSION_EXPORT`]), for a session's JSON-lines export. Not
    /// found when the session has no `session.start`.
    pub fn session_events(&self, session_id: &str) -> Result<Vec<EventRecord>, AdminError> {
        self.settle_recording();
        let mut events: Vec<EventRecord> = Vec::new();
        let mut after_id = 0;
        while events.len() < MAX_SESSION_EXPORT {
            let page = self.store.events(&EventFilter {
                after_id,
                session_id: Some(session_id.to_string()),
                limit: MAX_PAGE,
                ..EventFilter::default()
            })?;
            let Some(last) = page.last() else { break };
            after_id = last.id;
            let full = i64::try_from(page.len()).unwrap_or(MAX_PAGE) >= MAX_PAGE;
            events.extend(page);
            if !full {
                break;
            }
        }
        events.truncate(MAX_SESSION_EXPORT);
        if !events.iter().any(|event| event.kind == "session.start") {
            return Err(AdminError::NotFound(format!(
                "session {session_id} not found"
            )));
        }
        Ok(events)
    }

    /// The commands recorded so far for each of `session_ids` (live
    /// sessions: their `session.end` carries no count yet), counted up to
    /// [`MAX_PAGE`] each.
    pub fn commands_so_far(
        &self,
        session_ids: &[String],
    ) -> Result<BTreeMap<String, u64>, AdminError> {
        self.settle_recording();
        let mut counts = BTreeMap::new();
        for session_id in session_ids {
            let commands = self.store.events(&EventFilter {
                session_id: Some(session_id.clone()),
                kinds: vec!["command".into()],
                limit: MAX_PAGE,
                ..EventFilter::default()
            })?;
            counts.insert(
                session_id.clone(),
                u64::try_from(commands.len()).unwrap_or(u64::MAX),
            );
        }
        Ok(counts)
    }

    /// Events for export, oldest first.
    pub fn export_events(
        &self,
        since_micros: Option<i64>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, AdminError> {
        self.settle_recording();
        Ok(self.store.events(&EventFilter {
            after_id,
            since_micros,
            limit: limit.clamp(1, MAX_PAGE),
            ..EventFilter::default()
        })?)
    }

    /// Walks the hash chain.
    pub fn verify_audit(&self) -> Result<VerifyReport, AdminError> {
        self.settle_recording();
        Ok(self.store.verify_chain()?)
    }

    /// Deletes events older than the retention period, leaving a checkpoint.
    pub fn prune_audit(&self) -> Result<PruneReport, AdminError> {
        let retention = i64::try_from(self.settings.retention.as_micros()).unwrap_or(i64::MAX / 2);
        let report = self.store.prune_events(now_micros() - retention)?;
        if report.pruned_events > 0 {
            let pruned = crate::events::AuditPruned {
                pruned_events: report.pruned_events,
                through_id: report.through_id,
            };
            self.store
                .append_event(crate::events::record(None, None, &pruned))?;
            tracing::info!(
                pruned = report.pruned_events,
                "audit events past retention pruned"
            );
        }
        Ok(report)
    }
}

/// Runs the pruning job every `prune_interval` until the state is dropped.
pub async fn run_pruning(state: Arc<GatewayState>) {
    let mut interval = tokio::time::interval(state.settings.prune_interval);
    loop {
        interval.tick().await;
        let worker = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || worker.prune_audit()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "audit pruning failed"),
            Err(_) => tracing::error!("audit pruning task failed"),
        }
    }
}
