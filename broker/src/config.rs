//! Broker settings: [`Settings`], the one list of what can be configured,
//! read from flags, `WARREN_*` environment variables and a TOML file (flags
//! win over the environment, which wins over the file), and
//! [`BrokerConfig`], the validated configuration a broker starts with
//! (RabbitMQ's defaults unless set).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::memory::MemoryWatermark;
use crate::replication::ClusterLink;
use crate::tls::TlsSettings;

/// What Warren calls itself in connection.start (see
/// `connection/server_properties.rs` for why RabbitMQ is the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerIdentity {
    /// product "RabbitMQ", version 3.13.7; Warren's own in `information`.
    #[default]
    #[value(name = "rabbitmq")]
    RabbitMq,
    /// product "Warren" and Warren's version.
    Warren,
}

/// Everything a broker needs to know to start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Where to accept AMQP connections (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Whether the plain (non-TLS) listener runs at all.
    pub plain_listener: bool,
    /// AMQP over TLS (RabbitMQ's `listeners.ssl`), if configured.
    pub tls: Option<TlsSettings>,
    /// Where durable state is kept.
    pub data_dir: PathBuf,
    /// How long a delivery may stay unacknowledged before its channel is
    /// closed (RabbitMQ's `consumer_timeout`); `None` disables the check.
    pub consumer_timeout: Option<Duration>,
    /// Heartbeat interval the server proposes, in seconds (0 disables).
    pub heartbeat: u16,
    /// Largest frame payload accepted once tuned.
    pub frame_max: u32,
    /// Highest channel number a client may open.
    pub channel_max: u16,
    /// Largest message body accepted, in bytes.
    pub max_message_size: usize,
    /// The user made on a data directory that holds no users yet (an
    /// administrator with every permission on `vhosts`), and its password
    /// (RabbitMQ's `default_user`/`default_pass`).
    pub default_user: String,
    pub default_pass: String,
    /// The vhosts made on a data directory that holds none yet; the first
    /// is the default vhost (RabbitMQ's `default_vhost`).
    pub vhosts: Vec<String>,
    /// Users who may log in only from this host (RabbitMQ's `loopback_users`).
    pub loopback_users: Vec<String>,
    /// A RabbitMQ definitions file (JSON) loaded at start (RabbitMQ's
    /// `load_definitions`): users, vhosts, permissions, exchanges, queues
    /// and bindings it names are created or updated.
    pub definitions_file: Option<PathBuf>,
    /// How long a client has to finish the connection handshake.
    pub handshake_timeout: Duration,
    /// Below this many free bytes on the data directory's disk, publishing
    /// connections are blocked (RabbitMQ's disk alarm; its default 50 MB).
    pub disk_free_limit: u64,
    /// At or above this much resident memory, publishing connections are
    /// blocked (RabbitMQ's `vm_memory_high_watermark`).
    pub memory_high_watermark: MemoryWatermark,
    /// The share of the watermark at which non-durable queues start keeping
    /// only a window of their messages in memory and the rest on disk
    /// (RabbitMQ 3.x's `vm_memory_high_watermark_paging_ratio`); durable
    /// queues always do.
    pub memory_paging_ratio: f64,
    /// Returns freed memory to the operating system. The process's
    /// allocator knows how (the `warren` binary's is mimalloc); the broker
    /// calls it while the memory alarm is raised, so memory consumers freed
    /// shows in the resident size and the alarm can clear.
    pub release_memory: Option<fn()>,
    /// What Warren calls itself to clients.
    pub server_identity: ServerIdentity,
    /// Connections open at once beyond which connection.open is refused
    /// (RabbitMQ's `connection_max`); None for no limit, 0 refuses all.
    pub max_connections: Option<u32>,
    /// Consumers one channel may hold (RabbitMQ's
    /// `consumer_max_per_channel`); None for no limit.
    pub max_consumers_per_channel: Option<u32>,
    /// What one connection's unfinished messages (header received, body
    /// not yet complete, on all its channels together) of 64 KiB or more
    /// may take, announced bodies and decoded headers; None: a quarter of
    /// the memory watermark, and at least `max_message_size`.
    pub max_unfinished_per_connection: Option<u64>,
    /// Where the management HTTP API listens (None: not at all). The
    /// broker itself does not serve it; `warren::start` does.
    pub management_listen: Option<SocketAddr>,
    /// Where the Prometheus metrics endpoint listens (None: not at all);
    /// `warren::start` serves it.
    pub prometheus_listen: Option<SocketAddr>,
    /// Delete `data_dir` when the broker shuts down (for tests).
    pub remove_data_dir_on_shutdown: bool,
    /// This node's place in a cluster (None: a single node, as always).
    /// The broker only carries it; `warren::start` starts the cluster.
    pub cluster: Option<ClusterSettings>,
    /// The cluster this node belongs to, made by the cluster layer before
    /// the broker starts (None: a single node).
    pub cluster_link: Option<Arc<dyn ClusterLink>>,
}

/// A node's cluster settings: its name, where it listens for the other
/// nodes, and every member (itself included), the same list on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub node_name: String,
    pub listen: SocketAddr,
    pub peers: Vec<ClusterPeer>,
    /// The secret every member shares, if any (`--cluster-secret`).
    pub secret: Option<ClusterSecret>,
    /// TLS on the cluster port, both ways (None: plain HTTP).
    pub tls: Option<ClusterTls>,
}

/// Mutual TLS between the members: each serves `cert` and presents it as
/// a client; both sides accept only certificates that `ca` signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTls {
    /// This member's certificate chain (PEM); it must name the host of
    /// this member's cluster address (an IP address SAN for an IP).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA certificates (PEM) every member's certificate is checked against.
    pub ca: PathBuf,
}

/// The cluster's shared secret; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(pub String);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// One member of a cluster: its name and its cluster address (HOST:PORT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPeer {
    pub name: String,
    pub address: String,
}

impl ClusterSettings {
    /// Parses `n1=HOST:PORT,n2=HOST:PORT,...` and checks that `node_name`
    /// is one of them and that no name appears twice.
    pub fn new(node_name: String, listen: SocketAddr, peers: &str) -> Result<ClusterSettings, ConfigError> {
        let mut list: Vec<ClusterPeer> = Vec::new();
        for item in peers.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, address)) = item.split_once('=') else {
                return Err(ConfigError::Invalid(format!(
                    "cluster_peers item '{item}' is not NAME=HOST:PORT"
                )));
            };
            let (name, address) = (name.trim(), address.trim());
            if name.is_empty()
                || address
                    .rsplit_once(':')
                    .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            {
                return Err(ConfigError::Invalid(format!(
                    "cluster_peers item '{item}' is not NAME=HOST:PORT"
                )));
            }
            if list.iter().any(|p| p.name == name) {
                return Err(ConfigError::Invalid(format!("cluster_peers names '{name}' twice")));
            }
            list.push(ClusterPeer {
                name: name.to_string(),
                address: address.to_string(),
            });
        }
        if !list.iter().any(|p| p.name == node_name) {
            return Err(ConfigError::Invalid(format!(
                "node_name '{node_name}' is not one of cluster_peers"
            )));
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ClusterSettings {
            node_name,
            listen,
            peers: list,
            secret: None,
            tls: None,
        })
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            // Every address, IPv6 and IPv4 (as RabbitMQ listens by
            // default); IPv4 only where IPv6 is not available.
            listen: SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 5672)),
            plain_listener: true,
            tls: None,
            data_dir: PathBuf::from("./warren-data"),
            consumer_timeout: Some(Duration::from_millis(1_800_000)),
            heartbeat: 60,
            frame_max: 131_072,
            channel_max: 2047,
            // RabbitMQ 3.x's default (RabbitMQ 4 lowered it to 16 MiB;
            // client suites publish 20 MiB messages).
            max_message_size: 128 * 1024 * 1024,
            default_user: "guest".into(),
            default_pass: "guest".into(),
            vhosts: vec!["/".into()],
            loopback_users: vec!["guest".into()],
            definitions_file: None,
            management_listen: Some(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 15672))),
            prometheus_listen: Some(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 15692))),
            handshake_timeout: Duration::from_secs(10),
            disk_free_limit: 50_000_000,
            memory_high_watermark: MemoryWatermark::default(),
            memory_paging_ratio: 0.5,
            release_memory: None,
            server_identity: ServerIdentity::RabbitMq,
            max_connections: None,
            max_consumers_per_channel: None,
            max_unfinished_per_connection: None,
            remove_data_dir_on_shutdown: false,
            cluster: None,
            cluster_link: None,
        }
    }
}

/// The protocol's smallest frame_max (RabbitMQ's `FRAME_MIN_SIZE`).
const FRAME_MIN: u32 = 4096;
/// RabbitMQ's hard ceiling on `max_message_size` (512 MiB).
const MAX_MESSAGE_SIZE_CEILING: usize = 536_870_912;

/// Warren: an AMQP 0-9-1 message broker, a drop-in replacement for RabbitMQ.
///
/// Every option can also be set in a TOML file given with --config (the
/// same names with underscores, e.g. `consumer_timeout_ms = 60000`) or with
/// a WARREN_* environment variable. Flags win over the environment, which
/// wins over the file. Log verbosity comes from RUST_LOG (default: info).
#[derive(Debug, Default, Parser, Serialize, Deserialize)]
#[command(name = "warren", version)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOML file with settings.
    #[arg(long, env = "WARREN_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to accept AMQP connections on, or `none` for no plain
    /// listener (TLS only) [default: [::]:5672, every IPv6 and IPv4 address].
    #[arg(long, env = "WARREN_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Address to accept AMQP over TLS on (RabbitMQ's 5671); needs
    /// --tls-cert and --tls-key [default: no TLS listener].
    #[arg(long, env = "WARREN_TLS_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_listen: Option<SocketAddr>,
    /// The TLS listener's certificate chain (PEM).
    #[arg(long, env = "WARREN_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS listener's private key (PEM).
    #[arg(long, env = "WARREN_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM): clients are asked for a certificate, verified
    /// against these, whose subject logs in with EXTERNAL.
    #[arg(long, env = "WARREN_TLS_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Refuse TLS clients without a certificate (with --tls-ca) [default: false].
    #[arg(long, env = "WARREN_TLS_FAIL_IF_NO_PEER_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_fail_if_no_peer_cert: Option<bool>,
    /// Directory for durable state [default: ./warren-data].
    #[arg(long, env = "WARREN_DATA_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Close a channel whose delivery stays unacknowledged this long, in ms;
    /// 0 disables [default: 1800000, as RabbitMQ].
    #[arg(long, env = "WARREN_CONSUMER_TIMEOUT_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_timeout_ms: Option<u64>,
    /// Heartbeat interval proposed to clients, in seconds; 0 disables [default: 60].
    #[arg(long, env = "WARREN_HEARTBEAT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<u16>,
    /// Largest frame payload accepted, in bytes; at least 4096 [default: 131072].
    #[arg(long, env = "WARREN_FRAME_MAX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_max: Option<u32>,
    /// Highest channel number a client may open; 0 for no limit [default: 2047].
    #[arg(long, env = "WARREN_CHANNEL_MAX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_max: Option<u16>,
    /// Largest message body accepted, in bytes; at most 536870912 [default: 134217728].
    #[arg(long, env = "WARREN_MAX_MESSAGE_SIZE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<usize>,
    /// Block publishers while the data directory's disk has less free space
    /// than this, in bytes [default: 50000000, as RabbitMQ].
    #[arg(long, env = "WARREN_DISK_FREE_LIMIT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_free_limit: Option<u64>,
    /// Block publishers while the process's resident memory is at or above
    /// this: a fraction of the memory available to it (the machine's, or
    /// its cgroup's limit) such as 0.6, or a size such as 512MiB or 2GB;
    /// 0 blocks all publishing [default: 0.6, as RabbitMQ 4].
    #[arg(long, env = "WARREN_MEMORY_HIGH_WATERMARK", value_parser = MemoryWatermark::parse)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_high_watermark: Option<MemoryWatermark>,
    /// Non-durable queues keep only a window of their messages in memory,
    /// the rest on disk, once resident memory reaches this share of the
    /// high watermark; 0 makes them always do, as durable queues do
    /// [default: 0.5, as RabbitMQ 3.x's paging ratio].
    #[arg(long, env = "WARREN_MEMORY_PAGING_RATIO")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_paging_ratio: Option<f64>,
    /// What Warren calls itself to clients in connection.start: `rabbitmq`
    /// (product RabbitMQ 3.13.7, which Celery/kombu need for RabbitMQ's
    /// prefetch semantics) or `warren` [default: rabbitmq].
    #[arg(long, env = "WARREN_SERVER_IDENTITY", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_identity: Option<ServerIdentity>,
    /// Refuse connection.open once this many connections are open
    /// (530, as RabbitMQ's connection_max); 0 refuses every connection
    /// [default: no limit, as RabbitMQ].
    #[arg(long, env = "WARREN_MAX_CONNECTIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Close a connection whose channel asks for more consumers than this
    /// (530, as RabbitMQ's consumer_max_per_channel) [default: no limit,
    /// as RabbitMQ].
    #[arg(long, env = "WARREN_MAX_CONSUMERS_PER_CHANNEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_consumers_per_channel: Option<u32>,
    /// What one connection's unfinished messages of 64 KiB or more may take
    /// (bodies and decoded headers), on all its channels together; a
    /// message that would go over is refused as
    /// an oversized one is (406 after its body, the body not kept)
    /// [default: a quarter of the memory watermark, at least
    /// max_message_size].
    #[arg(long, env = "WARREN_MAX_UNFINISHED_PER_CONNECTION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unfinished_per_connection: Option<u64>,
    /// The user created, as an administrator with every permission on the
    /// default vhost, when the data directory holds no users yet
    /// [default: guest].
    #[arg(long, env = "WARREN_DEFAULT_USER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_user: Option<String>,
    /// The default user's password [default: guest].
    #[arg(long, env = "WARREN_DEFAULT_PASS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_pass: Option<String>,
    /// The vhost created when the data directory holds none yet [default: /].
    #[arg(long, env = "WARREN_DEFAULT_VHOST")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_vhost: Option<String>,
    /// Users who may only connect from this host, comma-separated; empty
    /// for none [default: guest, as RabbitMQ's loopback_users].
    #[arg(long, env = "WARREN_LOOPBACK_USERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loopback_users: Option<String>,
    /// A RabbitMQ definitions file (JSON, as exported by RabbitMQ or by
    /// Warren) to load at start: its users, vhosts, permissions, policies,
    /// exchanges, queues and bindings are created or updated.
    #[arg(long, env = "WARREN_DEFINITIONS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definitions: Option<PathBuf>,
    /// Address of the management HTTP API, or `none` [default: [::]:15672].
    #[arg(long, env = "WARREN_MANAGEMENT_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_listen: Option<String>,
    /// Address of the Prometheus metrics endpoint, or `none` [default: [::]:15692].
    #[arg(long, env = "WARREN_PROMETHEUS_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_listen: Option<String>,
    /// This node's name in a cluster (with cluster_listen and cluster_peers).
    #[arg(long, env = "WARREN_NODE_NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Where this node listens for the other nodes of its cluster (HOST:PORT).
    #[arg(long, env = "WARREN_CLUSTER_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_listen: Option<String>,
    /// Every member of the cluster, this node included, the same list on
    /// each: n1=HOST:PORT,n2=HOST:PORT,n3=HOST:PORT [default: no cluster].
    #[arg(long, env = "WARREN_CLUSTER_PEERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_peers: Option<String>,
    /// A secret every member of the cluster is given (as RabbitMQ's Erlang
    /// cookie): the cluster port then answers only requests signed with it
    /// [default: none, any caller that reaches the port is believed].
    #[arg(long, env = "WARREN_CLUSTER_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_secret: Option<String>,
    /// This member's certificate chain (PEM) for TLS on the cluster port;
    /// with --cluster-tls-key and --cluster-tls-ca, the same CA on every
    /// member [default: no TLS between members].
    #[arg(long, env = "WARREN_CLUSTER_TLS_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --cluster-tls-cert.
    #[arg(long, env = "WARREN_CLUSTER_TLS_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_tls_key: Option<PathBuf>,
    /// CA certificates (PEM): the cluster port accepts only members whose
    /// certificate they signed, and calls only members that show one.
    #[arg(long, env = "WARREN_CLUSTER_TLS_CA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_tls_ca: Option<PathBuf>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// The settings from the command line and environment, over those of
    /// the `--config` file if one is given.
    pub fn load() -> Result<Settings, ConfigError> {
        Settings::parse().over_file()
    }

    /// These settings over the ones in the `--config` file: a setting
    /// given here wins, the file's fills in the rest.
    pub fn over_file(self) -> Result<Settings, ConfigError> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let parse = |source| ConfigError::Parse {
            path: path.clone(),
            source,
        };
        let mut merged: toml::Table = toml::from_str(&text).map_err(parse)?;
        // Checked on its own first, so an unknown key in the file is named.
        Settings::deserialize(merged.clone()).map_err(parse)?;
        let ours = toml::Table::try_from(&self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        merged.extend(ours);
        let mut settings = Settings::deserialize(merged).map_err(parse)?;
        settings.config = self.config;
        Ok(settings)
    }

    /// The configuration these settings give, checked.
    pub fn resolve(self) -> Result<BrokerConfig, ConfigError> {
        let mut config = BrokerConfig::default();
        match self.listen.as_deref() {
            None => {}
            Some("none") => config.plain_listener = false,
            Some(addr) => {
                config.listen = addr.parse().map_err(|e| {
                    ConfigError::Invalid(format!("listen '{addr}' is not an address (HOST:PORT) or 'none': {e}"))
                })?
            }
        }
        if let Some(listen) = self.tls_listen {
            let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) else {
                return Err(ConfigError::Invalid("tls_listen needs tls_cert and tls_key".into()));
            };
            config.tls = Some(TlsSettings {
                listen,
                cert,
                key,
                ca: self.tls_ca,
                fail_if_no_peer_cert: self.tls_fail_if_no_peer_cert.unwrap_or(false),
            });
        }
        if let Some(v) = self.data_dir {
            config.data_dir = v;
        }
        if let Some(ms) = self.consumer_timeout_ms {
            config.consumer_timeout = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(v) = self.heartbeat {
            config.heartbeat = v;
        }
        if let Some(v) = self.frame_max {
            config.frame_max = v;
        }
        if let Some(v) = self.channel_max {
            config.channel_max = v;
        }
        if let Some(v) = self.max_message_size {
            config.max_message_size = v;
        }
        if let Some(v) = self.disk_free_limit {
            config.disk_free_limit = v;
        }
        if let Some(v) = self.server_identity {
            config.server_identity = v;
        }
        if let Some(v) = self.memory_high_watermark {
            config.memory_high_watermark = v;
        }
        if let Some(v) = self.memory_paging_ratio {
            config.memory_paging_ratio = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = Some(v);
        }
        if let Some(v) = self.max_consumers_per_channel {
            config.max_consumers_per_channel = Some(v);
        }
        if let Some(v) = self.max_unfinished_per_connection {
            config.max_unfinished_per_connection = Some(v);
        }
        if let Some(v) = self.default_user {
            config.default_user = v;
        }
        if let Some(v) = self.default_pass {
            config.default_pass = v;
        }
        if let Some(v) = self.default_vhost {
            config.vhosts = vec![v];
        }
        if let Some(v) = self.loopback_users {
            config.loopback_users = v
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect();
        }
        config.definitions_file = self.definitions;
        if let Some(v) = self.management_listen {
            config.management_listen = optional_address("management_listen", &v)?;
        }
        if let Some(v) = self.prometheus_listen {
            config.prometheus_listen = optional_address("prometheus_listen", &v)?;
        }
        match (self.node_name, self.cluster_listen, self.cluster_peers) {
            (None, None, None) => {
                if self.cluster_secret.is_some() {
                    return Err(ConfigError::Invalid("cluster_secret is set but no cluster is".into()));
                }
                if self.cluster_tls_cert.is_some() || self.cluster_tls_key.is_some() || self.cluster_tls_ca.is_some() {
                    return Err(ConfigError::Invalid("cluster_tls_* is set but no cluster is".into()));
                }
            }
            (Some(name), Some(listen), Some(peers)) => {
                let listen = listen.parse().map_err(|e| {
                    ConfigError::Invalid(format!("cluster_listen '{listen}' is not an address (HOST:PORT): {e}"))
                })?;
                let mut cluster = ClusterSettings::new(name, listen, &peers)?;
                if let Some(secret) = self.cluster_secret {
                    if secret.is_empty() {
                        return Err(ConfigError::Invalid("cluster_secret is empty".into()));
                    }
                    cluster.secret = Some(ClusterSecret(secret));
                }
                cluster.tls = match (self.cluster_tls_cert, self.cluster_tls_key, self.cluster_tls_ca) {
                    (None, None, None) => None,
                    (Some(cert), Some(key), Some(ca)) => Some(ClusterTls { cert, key, ca }),
                    _ => return Err(ConfigError::Invalid(
                        "TLS on the cluster port needs cluster_tls_cert, cluster_tls_key and cluster_tls_ca together"
                            .into(),
                    )),
                };
                config.cluster = Some(cluster);
            }
            _ => {
                return Err(ConfigError::Invalid(
                    "a cluster needs node_name, cluster_listen and cluster_peers together".into(),
                ))
            }
        }
        config.validate()?;
        Ok(config)
    }
}

/// An address setting that may be `none` (off).
fn optional_address(setting: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    match value {
        "none" | "off" | "" => Ok(None),
        addr => addr.parse().map(Some).map_err(|e| {
            ConfigError::Invalid(format!(
                "{setting} '{addr}' is not an address (HOST:PORT) or 'none': {e}"
            ))
        }),
    }
}

impl BrokerConfig {
    /// Refuses values the protocol or RabbitMQ do not allow.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.frame_max < FRAME_MIN {
            return Err(ConfigError::Invalid(format!(
                "frame_max {} is below the protocol's minimum of {FRAME_MIN} bytes",
                self.frame_max
            )));
        }
        if !(0.0..=1.0).contains(&self.memory_paging_ratio) {
            return Err(ConfigError::Invalid(format!(
                "memory_paging_ratio {} is not between 0 and 1",
                self.memory_paging_ratio
            )));
        }
        if self.max_message_size > MAX_MESSAGE_SIZE_CEILING {
            return Err(ConfigError::Invalid(format!(
                "max_message_size {} is above the ceiling of {MAX_MESSAGE_SIZE_CEILING} bytes (512 MiB)",
                self.max_message_size
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TOML file with `text`, removed when the handle drops.
    fn file(text: &str) -> (tempfile::NamedTempFile, PathBuf) {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write temp file");
        let path = file.path().to_path_buf();
        (file, path)
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let (_keep, path) = file("heartbeat = 10\nframe_max = 8192\nserver_identity = \"warren\"\n");
        let settings = Settings::try_parse_from(["warren", "--heartbeat", "30", "--config", path.to_str().unwrap()])
            .unwrap()
            .over_file()
            .unwrap();
        let config = settings.resolve().unwrap();
        assert_eq!(config.heartbeat, 30);
        assert_eq!(config.frame_max, 8192);
        assert_eq!(config.server_identity, ServerIdentity::Warren);
        assert_eq!(config.channel_max, 2047);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let (_keep, path) = file("hearbeat = 10\n");
        let err = Settings::try_parse_from(["warren", "--config", path.to_str().unwrap()])
            .unwrap()
            .over_file()
            .unwrap_err()
            .to_string();
        assert!(err.contains("hearbeat"), "{err}");
        let err = Settings::try_parse_from(["warren", "--frame-max", "8"])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert_eq!(err, "frame_max 8 is below the protocol's minimum of 4096 bytes");
        let err = Settings::try_parse_from(["warren", "--memory-paging-ratio", "1.5"])
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert_eq!(err, "memory_paging_ratio 1.5 is not between 0 and 1");
    }

    #[test]
    fn zero_disables_the_consumer_timeout() {
        let config = Settings::try_parse_from(["warren", "--consumer-timeout-ms", "0"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(config.consumer_timeout, None);
    }

    #[test]
    fn the_memory_watermark_reads_from_flags_and_files() {
        let config = Settings::try_parse_from(["warren", "--memory-high-watermark", "512MiB"])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(config.memory_high_watermark, MemoryWatermark::Absolute(512 << 20));
        assert!(Settings::try_parse_from(["warren", "--memory-high-watermark", "lots"]).is_err());
        for (text, expected) in [
            ("0.4", MemoryWatermark::Relative(0.4)),
            ("\"2GiB\"", MemoryWatermark::Absolute(2 << 30)),
            ("1000000", MemoryWatermark::Absolute(1_000_000)),
        ] {
            let (_keep, path) = file(&format!("memory_high_watermark = {text}\n"));
            let config = Settings::try_parse_from(["warren", "--config", path.to_str().unwrap()])
                .unwrap()
                .over_file()
                .unwrap()
                .resolve()
                .unwrap();
            assert_eq!(config.memory_high_watermark, expected, "{text}");
        }
        // A flag over a file goes through the merge's serialisation intact.
        let (_keep, path) = file("memory_high_watermark = 0.4\n");
        let config = Settings::try_parse_from([
            "warren",
            "--memory-high-watermark",
            "64MiB",
            "--config",
            path.to_str().unwrap(),
        ])
        .unwrap()
        .over_file()
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(config.memory_high_watermark, MemoryWatermark::Absolute(64 << 20));
    }

    #[test]
    fn cluster_settings_come_together_and_name_this_node() {
        let peers = "n2=127.0.0.2:25672, n1=127.0.0.1:25672,n3=host3:25672";
        let config = Settings::try_parse_from([
            "warren",
            "--node-name",
            "n1",
            "--cluster-listen",
            "127.0.0.1:25672",
            "--cluster-peers",
            peers,
        ])
        .unwrap()
        .resolve()
        .unwrap();
        let cluster = config.cluster.expect("a cluster");
        assert_eq!(cluster.node_name, "n1");
        let names: Vec<&str> = cluster.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "n3"]);
        assert_eq!(cluster.peers[2].address, "host3:25672");

        let refused = |args: &[&str]| {
            let mut all = vec!["warren"];
            all.extend_from_slice(args);
            Settings::try_parse_from(all)
                .unwrap()
                .resolve()
                .unwrap_err()
                .to_string()
        };
        assert!(refused(&["--node-name", "n1"]).contains("together"));
        let with = |name: &str, peers: &str| {
            refused(&[
                "--node-name",
                name,
                "--cluster-peers",
                peers,
                "--cluster-listen",
                "127.0.0.1:1",
            ])
        };
        assert!(with("n9", peers).contains("not one of cluster_peers"));
        assert!(with("n1", "n1=127.0.0.1:1,n1=127.0.0.2:1").contains("twice"));
        assert!(with("n1", "n1=127.0.0.1").contains("NAME=HOST:PORT"));
    }
}
