//! The web UI: static files embedded in the binary (no build step, no
//! third-party code), served at `/` beside the API they call.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::state::Api;

/// (path under /ui/, content type, contents).
const FILES: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../ui/app.css")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../ui/api.js")),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/chart.js"),
    ),
    (
        "router.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/router.js"),
    ),
    (
        "pages/overview.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages/overview.js"),
    ),
    (
        "pages/queues.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages/queues.js"),
    ),
    (
        "pages/exchanges.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages/exchanges.js"),
    ),
    (
        "pages/connections.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages/connections.js"),
    ),
    (
        "pages/access.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages/access.js"),
    ),
    (
        "pages/definitions.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages/definitions.js"),
    ),
    (
        "pages/shovels.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/pages/shovels.js"),
    ),
];

const INDEX: &str = include_str!("../ui/index.html");

fn page(content_type: &'static str, body: &'static str) -> Response {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")], body).into_response()
}

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/", get(|| async { page("text/html; charset=utf-8", INDEX) }))
        .route(
            "/ui/{*file}",
            get(|Path(file): Path<String>| async move {
                FILES
                    .iter()
                    .find(|(name, _, _)| *name == file)
                    .map(|(_, content_type, body)| page(content_type, body))
                    .unwrap_or_else(|| ApiError::not_found().into_response())
            }),
        )
}
