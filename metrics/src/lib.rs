//! Prometheus metrics for Warren on their own port, with the names,
//! types, help texts and labels of RabbitMQ's rabbitmq_prometheus plugin,
//! so the RabbitMQ Grafana dashboards and alert rules work unchanged:
//! `/metrics` (aggregated), `/metrics/per-object` and
//! `/metrics/detailed?family=...&vhost=...`.

#![warn(unreachable_pub)]

mod exposition;
mod families;
mod process;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;

use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use warren_broker::Admin;

/// A running metrics endpoint.
pub struct Metrics {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Metrics {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until it has stopped (it stops with the broker).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders off the runtime's workers (a scrape walks the queues).
async fn rendered(admin: Admin, render: impl FnOnce(&Admin) -> String + Send + 'static) -> impl IntoResponse {
    let text = tokio::task::spawn_blocking(move || render(&admin))
        .await
        .unwrap_or_default();
    ([(CONTENT_TYPE, TEXT_FORMAT)], text)
}

/// The repeated query parameters of `/metrics/detailed`.
fn parameters(query: Option<String>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(key.to_string()).or_default().push(percent_decode(value));
    }
    out
}

fn percent_decode(text: &str) -> String {
    // A literal `+` is a space in a query string; `%2B` stays a plus.
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn router(admin: Admin) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(admin): State<Admin>| rendered(admin, |a| families::render(a, false))),
        )
        .route(
            "/metrics/per-object",
            get(|State(admin): State<Admin>| rendered(admin, |a| families::render(a, true))),
        )
        .route(
            "/metrics/detailed",
            get(|State(admin): State<Admin>, RawQuery(query): RawQuery| {
                let params = parameters(query);
                let families_asked = params.get("family").cloned().unwrap_or_default();
                let vhosts = params.get("vhost").cloned().unwrap_or_default();
                rendered(admin, move |a| families::render_detailed(a, &families_asked, &vhosts))
            }),
        )
        .with_state(admin)
}

/// Binds `listen` and serves the metrics of `admin`'s broker until it stops.
pub async fn start(admin: Admin, listen: SocketAddr) -> io::Result<Metrics> {
    let context =
        |addr: SocketAddr, e: io::Error| io::Error::new(e.kind(), format!("metrics: listening on {addr}: {e}"));
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) if listen.ip() == std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], listen.port()));
            tracing::info!("IPv6 is not available here ({e}); metrics on {v4} only");
            TcpListener::bind(v4).await.map_err(|e| context(v4, e))?
        }
        Err(e) => return Err(context(listen, e)),
    };
    let addr = listener.local_addr()?;
    let app = router(admin.clone());
    let task = tokio::spawn(async move {
        let stopping = async move { admin.stopping().await };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopping).await {
            tracing::error!("metrics endpoint stopped: {e}");
        }
    });
    tracing::info!(%addr, "Prometheus metrics on http://{addr}/metrics");
    Ok(Metrics { addr, task })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detailed_parameters_repeat_and_decode() {
        let p = parameters(Some("family=queue_coarse_metrics&family=vhost_status&vhost=%2F".into()));
        assert_eq!(p["family"], vec!["queue_coarse_metrics", "vhost_status"]);
        assert_eq!(p["vhost"], vec!["/"]);
    }
}
