//! Accepting connections, and starting and stopping a broker.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::connection;
use crate::tls;

/// A broker that is accepting connections.
pub struct RunningBroker {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    broker: Arc<Broker>,
    accept_loops: Vec<JoinHandle<()>>,
    connections: TaskTracker,
}

impl RunningBroker {
    /// The address it listens on (with the real port if 0 was asked for):
    /// the plain listener's, or the TLS one's if there is no plain one.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS listener's address, if there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The administration interface (for the management API).
    pub fn admin(&self) -> crate::Admin {
        crate::Admin::new(self.broker.clone())
    }

    /// An `amqp://` URL for the default user on the default vhost.
    pub fn amqp_url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            self.addr.ip().to_string()
        };
        let config = &self.broker.config;
        let vhost = config.vhosts.first().map_or("/", String::as_str);
        format!(
            "amqp://{}:{}@{host}:{}/{}",
            url_encode(&config.default_user),
            url_encode(&config.default_pass),
            self.addr.port(),
            url_encode(vhost)
        )
    }

    /// Closes every connection with 320 CONNECTION_FORCED and stops
    /// accepting; returns once connections are gone (or after a grace period).
    pub async fn shutdown(self) {
        self.broker.begin_shutdown();
        for accept_loop in self.accept_loops {
            let _ = accept_loop.await;
        }
        self.connections.close();
        if tokio::time::timeout(Duration::from_secs(5), self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown grace period");
        }
        stop_durability(&self.broker).await;
        if self.broker.config.remove_data_dir_on_shutdown {
            let _ = std::fs::remove_dir_all(&self.broker.config.data_dir);
        }
    }

    /// Waits until the broker stops (after `Broker::begin_shutdown`).
    pub async fn wait(self) {
        for accept_loop in self.accept_loops {
            let _ = accept_loop.await;
        }
        self.connections.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.connections.wait()).await;
        stop_durability(&self.broker).await;
    }
}

/// Percent-encodes all but unreserved characters, for a URL's parts.
fn url_encode(text: &str) -> String {
    // Escapes in lower case (`%2f`), as RabbitMQ's documentation and
    // clients write the default vhost and as this URL always was; the
    // percent-encoding crate writes them in upper case only.
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// The last sync, on a blocking thread.
async fn stop_durability(broker: &Arc<Broker>) {
    let durability = broker.durability().clone();
    let _ = tokio::task::spawn_blocking(move || durability.stop()).await;
}

/// Gives back, every second, what nodes that stopped answering took from
/// this node's queues (`queue::remote`), for as long as the broker runs.
fn start_sweeping(broker: std::sync::Weak<Broker>, link: Arc<dyn crate::replication::ClusterLink>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            every.tick().await;
            let Some(broker) = broker.upgrade() else { return };
            for queue in broker.remote_holds.sweep(|node| link.is_running(node)) {
                if queue.settings.auto_delete {
                    broker.delete_queue_everywhere(&queue);
                }
            }
        }
    });
}

/// Binds the listener and starts accepting connections in the background.
pub async fn start(config: BrokerConfig) -> io::Result<RunningBroker> {
    // Opening recovers the data directory: file work, off the runtime.
    // So does a definitions file.
    let broker = tokio::task::spawn_blocking(move || {
        let broker = Broker::open(config)?;
        if let Some(path) = broker.config.definitions_file.clone() {
            load_definitions(&broker, &path)?;
        }
        Ok::<_, io::Error>(broker)
    })
    .await
    .map_err(std::io::Error::other)??;
    broker.start_shovels();
    if let Some(link) = broker.config.cluster_link.clone() {
        broker.earlier_lives.forget(link.clone());
        start_sweeping(Arc::downgrade(&broker), link);
    }
    let connections = TaskTracker::new();
    let mut accept_loops = Vec::new();
    let mut addr = None;
    if broker.config.plain_listener {
        let listener = bind(broker.config.listen).await?;
        let bound = listener.local_addr()?;
        broker.add_listener(bound);
        tracing::info!("started TCP listener on {bound}");
        accept_loops.push(tokio::spawn(accept_loop(
            listener,
            broker.clone(),
            connections.clone(),
            None,
        )));
        addr = Some(bound);
    }
    let mut tls_addr = None;
    if let Some(settings) = broker.config.tls.clone() {
        let acceptor = TlsAcceptor::from(tls::server_config(&settings)?);
        let listener = bind(settings.listen).await?;
        let bound = listener.local_addr()?;
        broker.add_listener(bound);
        tracing::info!("started TLS (SSL) listener on {bound}");
        accept_loops.push(tokio::spawn(accept_loop(
            listener,
            broker.clone(),
            connections.clone(),
            Some(acceptor),
        )));
        tls_addr = Some(bound);
    }
    let Some(addr) = addr.or(tls_addr) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no listener: the plain listener is off and no TLS listener is configured",
        ));
    };
    tracing::info!(%addr, "Warren is ready to accept AMQP connections on {addr}");
    Ok(RunningBroker {
        addr,
        tls_addr,
        broker,
        accept_loops,
        connections,
    })
}

/// Loads a definitions file at start (RabbitMQ's `load_definitions`); a
/// file that cannot be read or imported stops the start, naming why.
fn load_definitions(broker: &Arc<Broker>, path: &std::path::Path) -> io::Result<()> {
    let context = |what: String| io::Error::other(format!("definitions file {}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| context(e.to_string()))?;
    let document: serde_json::Value = serde_json::from_str(&text).map_err(|e| context(e.to_string()))?;
    crate::Admin::new(broker.clone())
        .import_definitions(&document, None)
        .map_err(|e| context(e.to_string()))?;
    tracing::info!("imported definitions from {}", path.display());
    Ok(())
}

/// Runs the TLS handshake (within the AMQP handshake's time limit), then
/// serves the connection.
async fn serve_tls(broker: Arc<Broker>, acceptor: TlsAcceptor, socket: TcpStream, peer: SocketAddr, local: SocketAddr) {
    let limit = broker.config.handshake_timeout;
    match tokio::time::timeout(limit, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => connection::serve(broker, stream, peer, local).await,
        Ok(Err(e)) => tracing::info!("TLS handshake with {peer} failed: {e}"),
        Err(_) => tracing::info!("TLS handshake with {peer} timed out"),
    }
}

/// Binds the AMQP listener. The unspecified IPv6 address takes IPv4
/// connections too; where the machine has no IPv6 it falls back to
/// `0.0.0.0` on the same port.
async fn bind(listen: SocketAddr) -> std::io::Result<TcpListener> {
    let context =
        |addr: SocketAddr, e: std::io::Error| std::io::Error::new(e.kind(), format!("listening on {addr}: {e}"));
    match TcpListener::bind(listen).await {
        Ok(listener) => Ok(listener),
        Err(e) if listen.ip() == std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED) => {
            let v4 = SocketAddr::from(([0, 0, 0, 0], listen.port()));
            tracing::info!("IPv6 is not available here ({e}); listening on {v4} only");
            TcpListener::bind(v4).await.map_err(|e| context(v4, e))
        }
        Err(e) => Err(context(listen, e)),
    }
}

async fn accept_loop(listener: TcpListener, broker: Arc<Broker>, connections: TaskTracker, tls: Option<TlsAcceptor>) {
    let mut shutdown = broker.shutdown_signal();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let Ok(local) = socket.local_addr() else {
                        continue;
                    };
                    match &tls {
                        None => {
                            connections.spawn(connection::serve(broker.clone(), socket, peer, local));
                        }
                        Some(acceptor) => {
                            connections.spawn(serve_tls(broker.clone(), acceptor.clone(), socket, peer, local));
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = Broker::stopping(&mut shutdown) => break,
        }
    }
}
