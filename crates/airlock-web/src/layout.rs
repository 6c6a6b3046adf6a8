//! The page shell: document head (the stylesheet and the vendored scripts,
//! all from `/ui/assets/`, with htmx configured to inject no inline style
//! and evaluate nothing), a skip link, the navigation the viewer's roles
//! allow, who is signed in with the sign-out form, and the main region.
//! Also the few formatting helpers pages share (times, durations, flash
//! notices).

use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::html::Html;
use crate::sign_ins::SignIn;

/// Which navigation entry a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Approvals,
    LiveSessions,
    Sessions,
    Policies,
    Access,
    Tokens,
    Connections,
    Audit,
    None,
}

fn head(html: &mut Html, title: &str) {
    html.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        // No indicator <style> element (the CSP forbids inline styles), no
        // eval, no script tags in swapped content.
        .raw("<meta name=\"htmx-config\" content=\"{&quot;includeIndicatorStyles&quot;:false,&quot;allowEval&quot;:false,&quot;allowScriptTags&quot;:false}\">")
        .raw("<title>")
        .text(title)
        .raw(" · airlock</title>")
        .raw("<link rel=\"icon\" href=\"/ui/assets/favicon.svg\" type=\"image/svg+xml\">")
        .raw("<link rel=\"stylesheet\" href=\"/ui/assets/airlock.css\">")
        .raw("<script src=\"/ui/assets/htmx.min.js\" defer></script>")
        .raw("<script src=\"/ui/assets/htmx-ext-sse.min.js\" defer></script>")
        .raw("</head><body><a class=\"skip\" href=\"#main\">Skip to content</a>");
}

fn nav_link(html: &mut Html, href: &'static str, label: &'static str, current: bool) {
    html.raw("<li><a href=\"").raw(href).raw("\"");
    if current {
        html.raw(" aria-current=\"page\"");
    }
    html.raw(">").raw(label).raw("</a></li>");
}

/// A page for a signed-in viewer.
pub fn page(title: &str, current: Nav, viewer: &SignIn, body: &Html) -> Response {
    let mut html = Html::new();
    head(&mut html, title);
    html.raw("<header class=\"top\"><a class=\"brand\" href=\"/ui/approvals\">airlock</a>")
        .raw("<nav aria-label=\"Main\"><ul>");
    nav_link(
        &mut html,
        "/ui/approvals",
        "Approvals",
        current == Nav::Approvals,
    );
    if viewer.roles.auditor {
        nav_link(
            &mut html,
            "/ui/sessions/live",
            "Live sessions",
            current == Nav::LiveSessions,
        );
        nav_link(
            &mut html,
            "/ui/sessions",
            "Sessions",
            current == Nav::Sessions,
        );
        nav_link(
            &mut html,
            "/ui/policies",
            "Policies",
            current == Nav::Policies,
        );
        nav_link(&mut html, "/ui/access", "Access", current == Nav::Access);
        nav_link(&mut html, "/ui/tokens", "Tokens", current == Nav::Tokens);
        nav_link(
            &mut html,
            "/ui/connections",
            "Connections",
            current == Nav::Connections,
        );
        nav_link(&mut html, "/ui/audit", "Audit", current == Nav::Audit);
    }
    html.raw("</ul></nav><div class=\"who\"><span>Signed in as <strong>")
        .text(&viewer.identity.name)
        .raw("</strong> (")
        .text(&viewer.roles.names().join(", "))
        .raw(")</span>")
        .raw("<form method=\"post\" action=\"/ui/signout\">");
    csrf_field(&mut html, viewer);
    html.raw("<button type=\"submit\" class=\"link\">Sign out</button></form></div></header>")
        .raw("<main id=\"main\" tabindex=\"-1\"><h1>")
        .text(title)
        .raw("</h1>")
        .append(body)
        .raw("</main></body></html>");
    html_response(html)
}

/// A page without navigation (sign-in, errors).
pub fn bare_page(title: &str, body: &Html) -> Response {
    let mut html = Html::new();
    head(&mut html, title);
    html.raw("<main id=\"main\" class=\"signin\" tabindex=\"-1\"><h1>")
        .text(title)
        .raw("</h1>")
        .append(body)
        .raw("</main></body></html>");
    html_response(html)
}

/// The hidden CSRF field every form of a sign-in carries.
pub fn csrf_field(html: &mut Html, viewer: &SignIn) {
    html.raw("<input type=\"hidden\" name=\"csrf\" value=\"")
        .text(&viewer.csrf)
        .raw("\">");
}

/// The last cells of a grant's or a token's row: its state (revoked at,
/// active, expired) and, for admins, a Revoke form posting to `revoke_to`
/// while it is active.
pub fn state_and_revoke_cells(
    html: &mut Html,
    viewer: &SignIn,
    revoked_at: Option<i64>,
    active: bool,
    revoke_to: &str,
) {
    html.raw("<td data-label=\"State\">");
    match revoked_at {
        Some(at) => {
            html.raw("revoked ").text(&time(at));
        }
        None if active => {
            html.raw("<span class=\"badge\">active</span>");
        }
        None => {
            html.raw("expired");
        }
    }
    html.raw("</td>");
    if viewer.roles.admin {
        html.raw("<td data-label=\"Revoke\">");
        if active {
            html.raw("<form class=\"inline\" method=\"post\" action=\"")
                .text(revoke_to)
                .raw("\">");
            csrf_field(html, viewer);
            html.raw("<button type=\"submit\" class=\"danger\">Revoke</button></form>");
        }
        html.raw("</td>");
    }
}

/// An HTML answer.
pub fn html_response(html: Html) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html.into_string(),
    )
        .into_response()
}

/// Unix seconds as `2026-12-02 16:55:01 UTC`.
pub fn time(seconds: i64) -> String {
    let Ok(moment) = time::OffsetDateTime::from_unix_timestamp(seconds) else {
        return seconds.to_string();
    };
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    moment
        .format(&format)
        .unwrap_or_else(|_| seconds.to_string())
}

/// A length of time as `45 s`, `3 min 5 s`, `2 h 10 min`.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// A notice after a redirect (`?done=…`): only known words make a message,
/// and the id shown must look like one, so a link cannot put words of its
/// own on the page.
pub fn flash(html: &mut Html, done: Option<&str>, subject: Option<&str>) {
    let message = match done {
        Some("approved") => "approved",
        Some("denied") => "denied",
        Some("ended") => "ended",
        Some("rolled_back") => "live (rolled back)",
        Some("revoked") => "revoked",
        _ => return,
    };
    let subject = subject.filter(|id| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '-')
    });
    html.raw("<div class=\"notice\" role=\"status\">");
    if let Some(subject) = subject {
        html.text(subject).raw(": ");
    }
    html.raw(message).raw("</div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(duration(5), "5 s");
        assert_eq!(duration(185), "3 min 5 s");
        assert_eq!(duration(7800), "2 h 10 min");
        assert_eq!(duration(-3), "0 s");
    }

    #[test]
    fn a_flash_shows_known_words_only() {
        let mut html = Html::new();
        flash(&mut html, Some("approved"), Some("r-1a2b"));
        assert!(html.as_str().contains("r-1a2b: approved"));
        let mut html = Html::new();
        flash(&mut html, Some("hacked"), Some("r-1"));
        assert_eq!(html.as_str(), "");
        let mut html = Html::new();
        flash(&mut html, Some("denied"), Some("<b>evil</b>"));
        assert!(!html.as_str().contains("evil"));
    }
}
