//! The server side of the cluster port: Raft's messages for the metadata
//! group, proposals forwarded to this node as the leader, and the status
//! other members probe. Bodies are bincode (see `network.rs`); a body that
//! does not decode is answered 400 and logged, never a panic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use openraft::{Raft, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use warren_broker::MetadataChange;

use crate::groups::Groups;
use crate::metadata::MetadataRaft;
use crate::queue_group::{GroupEntry, GroupReply};
use crate::roster::{Member, NodeId};
use crate::signing::{Credentials, Refusal, Signer, ROSTER_HEADER, SIGNATURE_HEADER, TIME_HEADER};
use crate::snapshot_chunk::SnapshotChunk;
use crate::writes::{self, Forwarded, Writer};

/// What the routes share.
#[derive(Clone)]
pub(crate) struct Service {
    /// The broker beside this member, which answers calls about its queues.
    pub admin: warren_broker::Admin,
    pub raft: MetadataRaft,
    pub groups: Arc<Groups>,
    pub node_name: String,
    pub writer: Writer,
    pub signer: Signer,
}

/// What `/status` answers: who this node is.
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct Status {
    pub name: String,
    /// Its clock when it answered, ms since the Unix epoch.
    pub now_ms: u64,
}

/// The largest request body: a Raft message with a batch of entries, or a
/// snapshot chunk (`raft_config.rs` keeps chunks well below it).
pub(crate) const MAX_BODY: usize = 1 << 30;

/// How long a caller has to send a request's body.
const BODY_WITHIN: Duration = Duration::from_secs(60);

/// What guards the routes: the signature check, and the memory that
/// bodies not yet checked may take together (a caller without the secret
/// could otherwise make the port hold a gigabyte per request it opens).
#[derive(Clone)]
struct Gate {
    signer: Signer,
    /// Permits of a KiB each, MAX_BODY's worth: a body reserves its
    /// declared length whole before it is read (all at once, so two large
    /// bodies never wait on each other half-read).
    unchecked: Arc<Semaphore>,
}

fn kib(bytes: usize) -> u32 {
    bytes.div_ceil(1024) as u32
}

pub(crate) fn router(service: Service) -> Router {
    let gate = Gate {
        signer: service.signer.clone(),
        unchecked: Arc::new(Semaphore::new(kib(MAX_BODY) as usize)),
    };
    Router::new()
        .route("/raft/{group}/{kind}", post(raft_message))
        .route("/metadata/propose", post(propose))
        .route("/metadata/applied", post(applied))
        .route("/group/{group}/propose", post(propose_to_group))
        .route("/status", post(status))
        .route("/call", post(call))
        .with_state(service)
        .layer(middleware::from_fn_with_state(gate, signed))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// When of the last refusal logged (ms since the Unix epoch): a member
/// with the wrong secret would otherwise fill the log every probe.
static LAST_REFUSAL_LOGGED: AtomicU64 = AtomicU64::new(0);

/// Lets through only requests from members given the same roster, and
/// signed with the cluster's secret when there is one. Every body is read
/// here, under the gate's budget, with its length declared up front.
async fn signed(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let given = Credentials {
        roster: header(ROSTER_HEADER),
        time: header(TIME_HEADER),
        signature: header(SIGNATURE_HEADER),
    };
    // Another roster, unsigned or stale: refused before the body is read.
    if let Err(refusal) = gate.signer.verify_early(given) {
        return refused(parts.uri.path(), refusal);
    }
    // Exact for a body framed by its content-length (and an empty one).
    let Some(length) = body.size_hint().exact().map(|n| n as usize) else {
        return (StatusCode::LENGTH_REQUIRED, "a content-length is required").into_response();
    };
    if length > MAX_BODY {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("bodies are at most {MAX_BODY} bytes"),
        )
            .into_response();
    }
    let Ok(reserved) = gate.unchecked.acquire_many(kib(length)).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let bytes = match tokio::time::timeout(BODY_WITHIN, axum::body::to_bytes(body, length)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        Err(_) => return (StatusCode::REQUEST_TIMEOUT, "the body came too slowly").into_response(),
    };
    if let Err(refusal) = gate.signer.verify(given, parts.uri.path(), &bytes) {
        return refused(parts.uri.path(), refusal);
    }
    drop(reserved);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// 409 for another roster, else 401; logged at most every ten seconds.
fn refused(path: &str, refusal: Refusal) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now.saturating_sub(LAST_REFUSAL_LOGGED.swap(now, Ordering::Relaxed)) >= 10 {
        tracing::warn!("cluster port: refused a request to {path}: {refusal}");
    }
    let status = match refusal {
        Refusal::OtherRoster => StatusCode::CONFLICT,
        _ => StatusCode::UNAUTHORIZED,
    };
    (status, refusal.to_string()).into_response()
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

async fn raft_message(
    State(service): State<Service>,
    Path((group, kind)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if group == "metadata" {
        return deliver(&service.raft, &kind, &body).await;
    }
    match service.groups.raft(&group) {
        Some(raft) => deliver(&raft, &kind, &body).await,
        // Not started here yet (or deleted): the sender retries.
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Hands one Raft message to a group's Raft.
async fn deliver<C>(raft: &Raft<C>, kind: &str, body: &[u8]) -> Response
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member>,
    C::D: DeserializeOwned,
    C::Entry: DeserializeOwned,
    C::R: Serialize,
{
    let answer = match kind {
        "vote" => match decode(body) {
            Ok(request) => encode(&raft.vote(request).await),
            Err(refused) => refused,
        },
        "append" => match decode(body) {
            Ok(request) => encode(&raft.append_entries(request).await),
            Err(refused) => refused,
        },
        "snapshot" => match decode::<SnapshotChunk>(body) {
            Ok(chunk) => encode(&raft.install_snapshot(chunk.request()).await),
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
    encode(&writes::answer_forwarded(&service.raft, &service.writer, change).await)
}

async fn propose_to_group(State(service): State<Service>, Path(group): Path<String>, body: Bytes) -> Response {
    let entry: GroupEntry = match decode(&body) {
        Ok(entry) => entry,
        Err(refused) => return refused,
    };
    let answer: Forwarded<GroupReply> = match service.groups.raft(&group) {
        Some(raft) => writes::answer_forwarded(&raft, &service.writer, entry).await,
        None => Err(format!("queue group {group} does not run here")),
    };
    encode(&answer)
}

/// How far this node applied the metadata log.
async fn applied(State(service): State<Service>) -> Response {
    let applied = service.raft.metrics().borrow().last_applied.map_or(0, |id| id.index);
    encode(&applied)
}

/// A call from another member's broker to this one's (a queue whose home
/// is here), answered by the broker.
async fn call(State(service): State<Service>, body: Bytes) -> Response {
    let request: serde_bytes::ByteBuf = match decode(&body) {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let answer = service.admin.answer_call(&request).await;
    encode(&serde_bytes::ByteBuf::from(answer))
}

async fn status(State(service): State<Service>) -> Response {
    encode(&Status {
        name: service.node_name.clone(),
        now_ms: crate::signing::now_ms(),
    })
}
