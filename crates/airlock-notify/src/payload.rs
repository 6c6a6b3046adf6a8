//! Request bodies: the event as JSON, or a Slack-compatible message.
//!
//! The Slack text is written for the approver reading it on a phone: what
//! waits, who ran it, where, the (masked) statement or the reason, and the
//! exact command to approve or deny it. Every value that came from a client
//! (identity, connection, statement) is escaped for Slack's mrkdwn so it
//! cannot forge links or mentions, and long values are truncated.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::WebhookFormat;
use crate::event::{kinds, NotificationEvent};

/// Longest statement or reason quoted in a Slack message, in characters.
/// Slack refuses section texts over 3000 characters.
pub const MAX_SLACK_SUMMARY_CHARS: usize = 1500;
/// Longest identity, connection, rule or id quoted, in characters.
const MAX_SLACK_FIELD_CHARS: usize = 200;

/// The body for `format`. `review_url` is the webhook's link template.
pub fn render(
    format: WebhookFormat,
    event: &NotificationEvent,
    review_url: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    match format {
        WebhookFormat::Json => json_body(event),
        WebhookFormat::Slack => serde_json::to_vec(&slack_message(event, review_url)),
    }
}

/// The event as JSON: `{"event": kind, "id": ..., ...}`.
pub fn json_body(event: &NotificationEvent) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(event)
}

/// The Slack message: `{"text": ..., "blocks": [...]}`. `text` holds the
/// whole message (it is what notifications and clients without blocks
/// show); the blocks lay the same content out in sections.
pub fn slack_message(event: &NotificationEvent, review_url: Option<&str>) -> Value {
    let headline = headline(event);
    let details = details(event);
    let commands = commands(event);
    let link = link(event, review_url);

    let mut text_parts = vec![headline.clone(), details.clone()];
    text_parts.extend(commands.clone());
    text_parts.extend(link.clone());
    let text = text_parts.join("\n");

    let mut blocks = vec![section(&headline), section(&details)];
    if let Some(commands) = &commands {
        blocks.push(section(commands));
    }
    if let Some(link) = &link {
        blocks.push(section(link));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context(event)}],
    }));
    json!({ "text": text, "blocks": blocks })
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn headline(event: &NotificationEvent) -> String {
    let id = escape(&truncate(&event.id, MAX_SLACK_FIELD_CHARS));
    let group = escape(&truncate(&event.approver_group, MAX_SLACK_FIELD_CHARS));
    match event.kind.as_str() {
        kinds::REVIEW_CREATED => {
            format!(":lock: *Review {id}* is waiting for approval by *{group}*")
        }
        kinds::REVIEW_APPROVED => format!(":white_check_mark: *Review {id}* was approved"),
        kinds::REVIEW_DENIED => format!(":no_entry: *Review {id}* was denied"),
        kinds::REVIEW_EXPIRED => format!(":hourglass: *Review {id}* expired without a decision"),
        kinds::ACCESS_REQUESTED => {
            format!(":key: *Access request {id}* is waiting for approval by *{group}*")
        }
        kinds::ACCESS_APPROVED => format!(":white_check_mark: *Access request {id}* was approved"),
        kinds::ACCESS_DENIED => format!(":no_entry: *Access request {id}* was denied"),
        other => format!(
            "*airlock {}* for {id}",
            escape(&truncate(other, MAX_SLACK_FIELD_CHARS))
        ),
    }
}

fn details(event: &NotificationEvent) -> String {
    let field = |value: &str| escape(&truncate(value, MAX_SLACK_FIELD_CHARS));
    let mut lines = vec![
        format!("*Identity:* {}", field(&event.identity)),
        format!("*Connection:* {}", field(&event.connection)),
    ];
    let summary = escape(&truncate(&event.summary, MAX_SLACK_SUMMARY_CHARS));
    if event.is_access_request() {
        lines.push(format!("*Reason:* {summary}"));
    } else {
        // A fence inside the statement would end the code block early.
        lines.push(format!(
            "*Statement:*\n```{}```",
            summary.replace("```", "'''")
        ));
    }
    if let Some(rule) = &event.rule {
        lines.push(format!("*Rule:* {}", field(rule)));
    }
    if let Some(version) = event.policy_version {
        lines.push(format!("*Policy version:* {version}"));
    }
    if let Some(expires_at) = event.expires_at {
        if event.awaits_decision() {
            lines.push(format!("*Expires:* {}", slack_date(expires_at)));
        }
    }
    lines.join("\n")
}

/// The approve and deny commands, for events that await a decision.
fn commands(event: &NotificationEvent) -> Option<String> {
    if !event.awaits_decision() {
        return None;
    }
    let id = escape(&shell_word(&event.id));
    Some(if event.is_access_request() {
        format!("Approve: `airlock access approve {id}`\nDeny: `airlock access deny {id}`")
    } else {
        format!(
            "Approve: `airlock review approve {id}`\nDeny: `airlock review deny {id} --reason \"...\"`"
        )
    })
}

fn link(event: &NotificationEvent, review_url: Option<&str>) -> Option<String> {
    let url = match review_url {
        Some(template) => template.replace("{id}", &percent_encode(&event.id)),
        None => event.url.clone()?,
    };
    let noun = if event.is_access_request() {
        "access request"
    } else {
        "review"
    };
    Some(format!(
        "<{}|Open {noun} {}>",
        escape(&url),
        escape(&truncate(&event.id, MAX_SLACK_FIELD_CHARS))
    ))
}

fn context(event: &NotificationEvent) -> String {
    let mut text = format!(
        "airlock · {}",
        escape(&truncate(&event.kind, MAX_SLACK_FIELD_CHARS))
    );
    if let Some(version) = event.policy_version {
        text.push_str(&format!(" · policy v{version}"));
    }
    text
}

/// Slack's date token renders in the reader's time zone; the fallback is UTC.
fn slack_date(unix_seconds: i64) -> String {
    let fallback = OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|moment| moment.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_seconds.to_string());
    format!("<!date^{unix_seconds}^{{date_short_pretty}} {{time}}|{fallback}>")
}

/// Escapes the three characters Slack's mrkdwn treats as control characters,
/// so client-controlled text cannot form links or `<!channel>` mentions.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}

/// Quotes `word` for a POSIX shell when it holds anything but id-safe
/// characters, so a pasted command does exactly what it says.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn percent_encode(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            output.push(char::from(byte));
        } else {
            output.push_str(&format!("%{byte:02X}"));
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(kind: &str) -> NotificationEvent {
        NotificationEvent {
            kind: kind.to_owned(),
            id: "rv_42".to_owned(),
            approver_group: "dba".to_owned(),
            identity: "agent-7".to_owned(),
            connection: "prod-orders".to_owned(),
            summary: "DELETE FROM orders WHERE id = $1".to_owned(),
            rule: Some("deletes-need-review".to_owned()),
            policy_version: Some(3),
            expires_at: Some(1_700_000_000),
            url: None,
        }
    }

    fn access(kind: &str) -> NotificationEvent {
        NotificationEvent {
            kind: kind.to_owned(),
            id: "ar_9".to_owned(),
            summary: "investigating ticket OPS-12".to_owned(),
            rule: None,
            policy_version: None,
            ..review(kind)
        }
    }

    #[test]
    fn json_body_is_the_event_with_event_key() {
        let body: Value =
            serde_json::from_slice(&json_body(&review(kinds::REVIEW_CREATED)).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "event": "review.created",
                "id": "rv_42",
                "approver_group": "dba",
                "identity": "agent-7",
                "connection": "prod-orders",
                "summary": "DELETE FROM orders WHERE id = $1",
                "rule": "deletes-need-review",
                "policy_version": 3,
                "expires_at": 1_700_000_000,
                "url": null,
            })
        );
        let back: NotificationEvent = serde_json::from_value(body).unwrap();
        assert_eq!(back, review(kinds::REVIEW_CREATED));
    }

    #[test]
    fn slack_review_created_names_everything_and_the_commands() {
        let message = slack_message(
            &review(kinds::REVIEW_CREATED),
            Some("https://airlock.example/reviews/{id}"),
        );
        let text = message["text"].as_str().unwrap();
        assert_eq!(
            text,
            ":lock: *Review rv_42* is waiting for approval by *dba*\n\
             *Identity:* agent-7\n\
             *Connection:* prod-orders\n\
             *Statement:*\n```DELETE FROM orders WHERE id = $1```\n\
             *Rule:* deletes-need-review\n\
             *Policy version:* 3\n\
             *Expires:* <!date^1700000000^{date_short_pretty} {time}|2023-11-14T22:13:20Z>\n\
             Approve: `airlock review approve rv_42`\n\
             Deny: `airlock review deny rv_42 --reason \"...\"`\n\
             <https://airlock.example/reviews/rv_42|Open review rv_42>"
        );
        let blocks = message["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 5);
        assert_eq!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .lines()
                .next()
                .unwrap(),
            "Approve: `airlock review approve rv_42`"
        );
        assert_eq!(blocks[4]["type"], "context");
    }

    #[test]
    fn slack_access_request_uses_access_commands_and_reason() {
        let message = slack_message(&access(kinds::ACCESS_REQUESTED), None);
        let text = message["text"].as_str().unwrap();
        assert!(
            text.starts_with(":key: *Access request ar_9* is waiting for approval by *dba*"),
            "{text}"
        );
        assert!(
            text.contains("*Reason:* investigating ticket OPS-12"),
            "{text}"
        );
        assert!(
            text.contains("Approve: `airlock access approve ar_9`"),
            "{text}"
        );
        assert!(text.contains("Deny: `airlock access deny ar_9`"), "{text}");
        assert!(!text.contains("review"), "{text}");
        assert!(
            !text.contains("<http"),
            "no link without template or url: {text}"
        );
    }

    #[test]
    fn decided_events_carry_no_commands() {
        for kind in [
            kinds::REVIEW_APPROVED,
            kinds::REVIEW_DENIED,
            kinds::REVIEW_EXPIRED,
        ] {
            let text = slack_message(&review(kind), None)["text"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(!text.contains("airlock review approve"), "{kind}: {text}");
            assert!(!text.contains("*Expires:*"), "{kind}: {text}");
        }
        let mut with_url = review(kinds::REVIEW_APPROVED);
        with_url.url = Some("https://ui.example/r/rv_42".to_owned());
        let text = slack_message(&with_url, None)["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.starts_with(":white_check_mark: *Review rv_42* was approved"));
        assert!(
            text.ends_with("<https://ui.example/r/rv_42|Open review rv_42>"),
            "{text}"
        );
    }

    #[test]
    fn client_text_cannot_forge_slack_markup_or_shell() {
        let mut event = review(kinds::REVIEW_CREATED);
        event.identity = "<!channel> & <https://evil.example|click>".to_owned();
        event.summary = "SELECT 1 ``` <@U123>".to_owned();
        event.id = "x'; rm -rf /".to_owned();
        let text = slack_message(&event, Some("https://a.example/r/{id}"))["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            text.contains("*Identity:* &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"),
            "{text}"
        );
        assert!(text.contains("```SELECT 1 ''' &lt;@U123&gt;```"), "{text}");
        assert!(
            text.contains(r"`airlock review approve 'x'\''; rm -rf /'`"),
            "{text}"
        );
        assert!(
            text.contains("<https://a.example/r/x%27%3B%20rm%20-rf%20%2F|"),
            "{text}"
        );
    }

    #[test]
    fn long_statements_are_truncated_on_a_char_boundary() {
        let mut event = review(kinds::REVIEW_CREATED);
        event.summary = "é".repeat(MAX_SLACK_SUMMARY_CHARS + 10);
        let text = slack_message(&event, None)["text"]
            .as_str()
            .unwrap()
            .to_owned();
        let quoted = format!("```{}…```", "é".repeat(MAX_SLACK_SUMMARY_CHARS));
        assert!(text.contains(&quoted));
    }

    #[test]
    fn render_dispatches_on_format() {
        let event = review(kinds::REVIEW_CREATED);
        let json: Value =
            serde_json::from_slice(&render(WebhookFormat::Json, &event, None).unwrap()).unwrap();
        assert_eq!(json["event"], "review.created");
        let slack: Value =
            serde_json::from_slice(&render(WebhookFormat::Slack, &event, None).unwrap()).unwrap();
        assert!(slack["text"].is_string());
        assert!(slack.get("event").is_none());
    }
}
