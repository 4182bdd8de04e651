//! Warren as a library: start an AMQP 0-9-1 broker inside your own program
//! or test suite.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let broker = warren::start_ephemeral().await?;
//! let url = broker.amqp_url(); // amqp://guest:guest@127.0.0.1:<port>/%2f
//! // ... connect with lapin, pika, amqplib ...
//! let api = broker.management_url(); // http://127.0.0.1:<port>/api/
//! broker.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use warren_broker::{Admin, BrokerConfig, PasswordSpec, RunningBroker, ServerIdentity, Settings, TlsSettings};
use warren_cluster::Cluster;
use warren_management::Management;
use warren_metrics::Metrics;

/// A running Warren: the AMQP broker and, unless turned off, its
/// management HTTP API.
pub struct Warren {
    broker: RunningBroker,
    management: Option<Management>,
    metrics: Option<Metrics>,
    cluster: Option<Cluster>,
}

impl Warren {
    /// The AMQP listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.broker.local_addr()
    }

    /// An `amqp://` URL for the default user on the default vhost.
    pub fn amqp_url(&self) -> String {
        self.broker.amqp_url()
    }

    /// The TLS listener's address, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.broker.tls_addr()
    }

    /// The management API's address, if it runs.
    pub fn management_addr(&self) -> Option<SocketAddr> {
        self.management.as_ref().map(Management::local_addr)
    }

    /// `http://host:port/api/` of the management API (empty if it is off).
    pub fn management_url(&self) -> String {
        self.management_addr().map_or_else(String::new, |addr| {
            let host = if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            };
            format!("http://{host}:{}/api/", addr.port())
        })
    }

    /// The Prometheus endpoint's address, if it runs.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(Metrics::local_addr)
    }

    /// The broker's administration handle.
    pub fn admin(&self) -> Admin {
        self.broker.admin()
    }

    /// The cluster port's address, if this node is in a cluster.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster.as_ref().map(Cluster::local_addr)
    }

    /// Closes every connection with 320 CONNECTION_FORCED and stops.
    pub async fn shutdown(self) {
        if let Some(cluster) = self.cluster {
            cluster.shutdown().await;
        }
        self.broker.shutdown().await;
        if let Some(management) = self.management {
            management.wait().await;
        }
        if let Some(metrics) = self.metrics {
            metrics.wait().await;
        }
    }

    /// Waits until the broker stops.
    pub async fn wait(self) {
        self.broker.wait().await;
        if let Some(cluster) = self.cluster {
            cluster.shutdown().await;
        }
        if let Some(management) = self.management {
            management.wait().await;
        }
        if let Some(metrics) = self.metrics {
            metrics.wait().await;
        }
    }
}

/// Starts the broker and, if `config.management_listen` is set, the
/// management API beside it.
pub async fn start(mut config: BrokerConfig) -> std::io::Result<Warren> {
    let listen = config.management_listen;
    let prometheus = config.prometheus_listen;
    // The broker knows its cluster from the start: queues it recovers join
    // their groups at once.
    let link = match &config.cluster {
        Some(settings) => Some(warren_cluster::Link::new(settings, &config.data_dir)?),
        None => None,
    };
    if let Some(link) = &link {
        config.cluster_link = Some(link.clone());
    }
    let broker = warren_broker::start(config).await?;
    let mut warren = Warren {
        broker,
        management: None,
        metrics: None,
        cluster: None,
    };
    if let Err(e) = warren.start_beside(link, listen, prometheus).await {
        // What started stops again, the broker last.
        warren.shutdown().await;
        return Err(e);
    }
    // The line testcontainers' RabbitMQ module waits for.
    tracing::info!(
        "Server startup complete; AMQP on {}{}",
        warren.broker.local_addr(),
        warren
            .management
            .as_ref()
            .map(|m| format!(", management API on http://{}/api/", m.local_addr()))
            .unwrap_or_default()
    );
    Ok(warren)
}

impl Warren {
    /// Starts what runs beside the broker: the cluster first (changes made
    /// through the management API go through it from the first request
    /// on), then the management API and the metrics endpoint.
    async fn start_beside(
        &mut self,
        link: Option<Arc<warren_cluster::Link>>,
        management: Option<SocketAddr>,
        prometheus: Option<SocketAddr>,
    ) -> std::io::Result<()> {
        if let Some(link) = link {
            self.cluster = Some(warren_cluster::start(link, self.broker.admin()).await?);
        }
        if let Some(addr) = management {
            self.management = Some(warren_management::start(self.broker.admin(), addr).await?);
        }
        if let Some(addr) = prometheus {
            self.metrics = Some(warren_metrics::start(self.broker.admin(), addr).await?);
        }
        Ok(())
    }
}

/// A configuration for tests: listen on a free loopback port, keep data in a
/// fresh directory under the system's temp dir.
pub fn ephemeral_config() -> BrokerConfig {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = format!(
        "warren-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    BrokerConfig {
        listen: "127.0.0.1:0".parse().expect("valid literal address"),
        data_dir: std::env::temp_dir().join(unique),
        management_listen: Some("127.0.0.1:0".parse().expect("valid literal address")),
        prometheus_listen: Some("127.0.0.1:0".parse().expect("valid literal address")),
        remove_data_dir_on_shutdown: true,
        ..BrokerConfig::default()
    }
}

/// Starts a broker on an ephemeral loopback port with a temporary data dir.
pub async fn start_ephemeral() -> std::io::Result<Warren> {
    start(ephemeral_config()).await
}

/// The default data directory, relative to the working directory.
pub fn default_data_dir() -> PathBuf {
    BrokerConfig::default().data_dir
}
