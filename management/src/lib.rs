//! RabbitMQ's management HTTP API for Warren, on axum: the endpoints,
//! JSON shapes, status codes and error bodies that rabbitmqadmin, KEDA,
//! Flower, Terraform's RabbitMQ provider and Kubernetes probes use,
//! served from a running broker's [`Admin`] handle.
//!
//! Start it with [`start`]; it stops when the broker shuts down.

#![warn(unreachable_pub)]

mod auth;
mod body;
mod error;
mod listing;
mod rates;
mod render;
mod routes;
mod state;
mod ui;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::{Router, ServiceExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;
use warren_broker::Admin;

use crate::error::ApiError;
use crate::rates::Rates;
use crate::state::Api;

/// A running management API.
pub struct Management {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Management {
    /// The address it listens on (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until it has stopped (it stops with the broker).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

fn router(api: Api) -> Router {
    Router::new()
        .merge(routes::overview::routes())
        .merge(routes::vhosts::routes())
        .merge(routes::users::routes())
        .merge(routes::queues::routes())
        .merge(routes::exchanges::routes())
        .merge(routes::bindings::routes())
        .merge(routes::connections::routes())
        .merge(routes::channels::routes())
        .merge(routes::definitions::routes())
        .merge(routes::policies::routes())
        .merge(routes::shovels::routes())
        .merge(routes::limits::routes())
        .merge(ui::routes())
        .merge(routes::health::routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(api)
}

/// Binds `listen` and serves the API for `admin`'s broker until it stops.
pub async fn start(admin: Admin, listen: SocketAddr) -> io::Result<Management> {
    let context =
        |addr: SocketAddr, e: io::Error| io::Error::new(e.kind(), format!("management API: listening on {addr}: {e}"));
    // The unspecified IPv6 address takes IPv4 too; without IPv6, IPv4 only.
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) if listen.ip() == std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], listen.port()));
            tracing::info!("IPv6 is not available here ({e}); management API on {v4} only");
            TcpListener::bind(v4).await.map_err(|e| context(v4, e))?
        }
        Err(e) => return Err(context(listen, e)),
    };
    let addr = listener.local_addr()?;
    let rates = Arc::new(Rates::default());
    rates.spawn_sampler(admin.clone());
    let api = Api {
        node: admin.node_name().into(),
        rates,
        admin: admin.clone(),
        http_port: addr.port(),
    };
    // A path ending in '/' is the path without it, as RabbitMQ's web
    // server matches them (clients such as amqp091-go's tests ask for
    // `/api/connections/`). Trimmed before routing, so around the router.
    let app = NormalizePathLayer::trim_trailing_slash().layer(router(api));
    let app = ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
    let task = tokio::spawn(async move {
        let stopping = async move { admin.stopping().await };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopping).await {
            tracing::error!("management API stopped: {e}");
        }
    });
    tracing::info!(%addr, "management API listening on http://{addr}/api/");
    Ok(Management { addr, task })
}
