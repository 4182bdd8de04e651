//! The client side of the cluster port: Raft's messages to the other
//! members (vote, append entries, install snapshot) and a proposal
//! forwarded to the leader, each an HTTP POST with a bincode body, over
//! one pool of kept-alive connections. The server side is `service.rs`.

use std::marker::PhantomData;
use std::net::IpAddr;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::RaftTypeConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::roster::{Member, NodeId};
use crate::signing::Signer;
use crate::snapshot_chunk::SnapshotChunk;

/// What every node's cluster client shares: one connection pool, and the
/// signer of its requests.
#[derive(Clone)]
pub(crate) struct Peers {
    client: reqwest::Client,
    signer: Signer,
    /// `https` under TLS, else `http`.
    scheme: &'static str,
}

/// Why a request to another member failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error("{0} does not answer: {1}")]
    Unreachable(String, String),
    #[error("{0} answered badly: {1}")]
    Network(String, String),
}

impl Peers {
    /// Connections leave from `local`, the address the cluster port
    /// listens on when it names one: a member's messages come from the
    /// address its peers know it by (a multi-homed host does not pick
    /// another interface, and a firewall or proxy can tell members apart).
    /// Under `tls`, every call is HTTPS with this member's certificate.
    pub(crate) fn new(
        local: Option<IpAddr>,
        signer: Signer,
        tls: Option<rustls::ClientConfig>,
    ) -> std::io::Result<Peers> {
        let mut builder = reqwest::Client::builder()
            .local_address(local)
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(30));
        let scheme = match tls {
            Some(config) => {
                builder = builder.tls_backend_preconfigured(config);
                "https"
            }
            None => "http",
        };
        let client = builder
            .build()
            .map_err(|e| std::io::Error::other(format!("cluster client: {e}")))?;
        Ok(Peers { client, signer, scheme })
    }

    /// POSTs `body` (bincode) to `path` on `member` and decodes the answer.
    pub(crate) async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        member: &Member,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let bytes = bincode::serialize(body).map_err(|e| PeerError::Network(member.to_string(), e.to_string()))?;
        let mut request = self
            .client
            .post(format!("{}://{}{path}", self.scheme, member.address))
            .timeout(timeout);
        for (name, value) in self.signer.sign(&member.name, path, &bytes) {
            request = request.header(name, value);
        }
        let response = request.body(bytes).send().await.map_err(|e| {
            if e.is_connect() || e.is_timeout() {
                PeerError::Unreachable(member.to_string(), e.to_string())
            } else {
                PeerError::Network(member.to_string(), e.to_string())
            }
        })?;
        if !response.status().is_success() {
            return Err(PeerError::Network(
                member.to_string(),
                format!("status {}", response.status()),
            ));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PeerError::Network(member.to_string(), e.to_string()))?;
        bincode::deserialize(&bytes).map_err(|e| PeerError::Network(member.to_string(), e.to_string()))
    }
}

/// Raft's network for one group (`/raft/<group>/...` on each member).
pub(crate) struct GroupNetwork<C> {
    peers: Peers,
    group: String,
    _types: PhantomData<C>,
}

impl<C> GroupNetwork<C> {
    pub(crate) fn new(peers: Peers, group: &str) -> Self {
        GroupNetwork {
            peers,
            group: group.to_string(),
            _types: PhantomData,
        }
    }
}

/// Raft's connection to one member.
pub(crate) struct Connection<C> {
    peers: Peers,
    path: String,
    target: NodeId,
    member: Member,
    _types: PhantomData<C>,
}

impl<C> RaftNetworkFactory<C> for GroupNetwork<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member>,
{
    type Network = Connection<C>;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Self::Network {
        Connection {
            peers: self.peers.clone(),
            path: format!("/raft/{}", self.group),
            target,
            member: node.clone(),
            _types: PhantomData,
        }
    }
}

impl<C> Connection<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member>,
{
    async fn call<Req, Resp, E>(
        &self,
        kind: &str,
        request: Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Member, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Resp, RaftError<NodeId, E>> = self
            .peers
            .post(
                &self.member,
                &format!("{}/{kind}", self.path),
                &request,
                option.hard_ttl(),
            )
            .await
            .map_err(|e| match e {
                PeerError::Unreachable(..) => RPCError::Unreachable(Unreachable::new(&e)),
                PeerError::Network(..) => RPCError::Network(NetworkError::new(&e)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new_with_node(self.target, self.member.clone(), e)))
    }
}

impl<C> RaftNetwork<C> for Connection<C>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = Member>,
    C::Entry: Serialize + DeserializeOwned,
    C::D: Serialize + DeserializeOwned,
{
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.call("append", request, &option).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call("snapshot", SnapshotChunk::of(request), &option).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.call("vote", request, &option).await
    }
}
