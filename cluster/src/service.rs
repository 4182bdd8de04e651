//! The server side of the cluster port: Raft's messages for the metadata
//! group, proposals forwarded to this node as the leader, and the status
//! other members probe. Bodies are bincode (see `network.rs`); a body that
//! does not decode is answered 400 and logged, never a panic.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::error::{ClientWriteError, RaftError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use warren_broker::MetadataChange;

use crate::metadata::MetadataRaft;

/// What the routes share.
#[derive(Clone)]
pub(crate) struct Service {
    pub raft: MetadataRaft,
    pub node_name: String,
}

/// What `/status` answers: who this node is.
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct Status {
    pub name: String,
}

/// A forwarded proposal's answer: the index it was committed at, or why not.
pub(crate) type ProposeReply = Result<u64, String>;

pub(crate) fn router(service: Service) -> Router {
    Router::new()
        .route("/raft/metadata/{kind}", post(raft_message))
        .route("/metadata/propose", post(propose))
        .route("/status", post(status))
        .with_state(service)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    bincode::deserialize(body).map_err(|e| {
        tracing::warn!("cluster port: a request that does not decode: {e}");
        (StatusCode::BAD_REQUEST, format!("undecodable body: {e}")).into_response()
    })
}

fn encode<T: Serialize>(value: &T) -> Response {
    match bincode::serialize(value) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn raft_message(State(service): State<Service>, Path(kind): Path<String>, body: Bytes) -> Response {
    let raft = &service.raft;
    let answer = match kind.as_str() {
        "vote" => match decode(&body) {
            Ok(request) => encode(&raft.vote(request).await),
            Err(refused) => refused,
        },
        "append" => match decode(&body) {
            Ok(request) => encode(&raft.append_entries(request).await),
            Err(refused) => refused,
        },
        "snapshot" => match decode(&body) {
            Ok(request) => encode(&raft.install_snapshot(request).await),
            Err(refused) => refused,
        },
        _ => StatusCode::NOT_FOUND.into_response(),
    };
    answer
}

async fn propose(State(service): State<Service>, body: Bytes) -> Response {
    let change: MetadataChange = match decode(&body) {
        Ok(change) => change,
        Err(refused) => return refused,
    };
    let reply: ProposeReply = match service.raft.client_write(change).await {
        Ok(written) => Ok(written.log_id.index),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Err("not the leader".to_string()),
        Err(e) => Err(e.to_string()),
    };
    encode(&reply)
}

async fn status(State(service): State<Service>) -> Response {
    encode(&Status {
        name: service.node_name.clone(),
    })
}
