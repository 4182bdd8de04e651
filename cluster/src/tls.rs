//! TLS on the cluster port, both ways (`--cluster-tls-cert`, `-key`,
//! `-ca`): every member serves its certificate and shows the same one when
//! it calls another, and both sides accept only certificates the cluster's
//! CA signed. The server side is a listener for axum that hands over
//! connections once their handshake is done (handshakes run side by side,
//! each with a time limit, so a caller that stalls holds up nobody); the
//! client side is the rustls configuration the cluster client uses.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use warren_broker::{read_certificates, read_private_key, ClusterTls};

/// How long a caller has to finish its TLS handshake.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The two rustls configurations of a member.
#[derive(Clone)]
pub(crate) struct Configs {
    pub server: Arc<ServerConfig>,
    pub client: ClientConfig,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cluster TLS {what}: {e}"))
}

/// Reads the certificate, key and CA of `tls` into both configurations.
pub(crate) fn configs(tls: &ClusterTls) -> io::Result<Configs> {
    let chain = read_certificates(&tls.cert)?;
    let key = read_private_key(&tls.key)?;
    let mut roots = RootCertStore::empty();
    for cert in read_certificates(&tls.ca)? {
        roots.add(cert).map_err(|e| invalid(&tls.ca.display().to_string(), e))?;
    }
    let roots = Arc::new(roots);
    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| invalid("client verifier", e))?;
    let server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| invalid("server", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| invalid(&tls.cert.display().to_string(), e))?;
    let client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| invalid("client", e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| invalid(&tls.cert.display().to_string(), e))?;
    Ok(Configs {
        server: Arc::new(server),
        client,
    })
}

/// The cluster port's listener under TLS: what axum serves from.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `listener`, handshaking each caller on a task of its own.
    pub(crate) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (hand_over, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(config);
        let accepting = tokio::spawn(async move {
            loop {
                let (socket, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait, as
                        // axum's own listener does.
                        tracing::warn!("cluster port: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let acceptor = acceptor.clone();
                let hand_over = hand_over.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_WITHIN, acceptor.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            let _ = hand_over.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::info!("cluster port: TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::info!("cluster port: TLS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task holds a sender for as long as it runs,
            // and runs until this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
