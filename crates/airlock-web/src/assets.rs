//! The UI's static files, embedded in the binary: the vendored htmx and
//! its server-sent events extension (licences beside them in `assets/`),
//! and the one stylesheet. Served under `/ui/assets/`; nothing is read
//! from disk at run time.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// htmx 2.0.11 (BSD Zero Clause, `assets/LICENSE.htmx`).
const HTMX: &[u8] = include_bytes!("../assets/htmx.min.js");
/// htmx-ext-sse 2.2.4 (BSD Zero Clause, `assets/LICENSE.htmx-ext-sse`).
const HTMX_SSE: &[u8] = include_bytes!("../assets/htmx-ext-sse.min.js");
const STYLESHEET: &[u8] = include_bytes!("../assets/airlock.css");
const FAVICON: &[u8] = include_bytes!("../assets/favicon.svg");
const HTMX_LICENSE: &[u8] = include_bytes!("../assets/LICENSE.htmx");
const HTMX_SSE_LICENSE: &[u8] = include_bytes!("../assets/LICENSE.htmx-ext-sse");

/// The file served at `/ui/assets/{name}` and its media type.
fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    match name {
        "htmx.min.js" => Some((HTMX, "text/javascript; charset=utf-8")),
        "htmx-ext-sse.min.js" => Some((HTMX_SSE, "text/javascript; charset=utf-8")),
        "airlock.css" => Some((STYLESHEET, "text/css; charset=utf-8")),
        "favicon.svg" => Some((FAVICON, "image/svg+xml")),
        "LICENSE.htmx" => Some((HTMX_LICENSE, "text/plain; charset=utf-8")),
        "LICENSE.htmx-ext-sse" => Some((HTMX_SSE_LICENSE, "text/plain; charset=utf-8")),
        _ => None,
    }
}

/// `GET /ui/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match asset(&name) {
        Some((body, media_type)) => (
            [
                (header::CONTENT_TYPE, media_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_nothing_else_is_served() {
        for name in [
            "htmx.min.js",
            "htmx-ext-sse.min.js",
            "airlock.css",
            "favicon.svg",
            "LICENSE.htmx",
            "LICENSE.htmx-ext-sse",
        ] {
            assert!(
                asset(name).is_some_and(|(body, _)| !body.is_empty()),
                "{name}"
            );
        }
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("").is_none());
    }
}
