//! A TCP proxy in front of the broker that can stop reading what the
//! broker sends, so a real client behind it looks to the broker like a
//! reader on a stalled network: the broker's writes fill the socket
//! buffers and then wait.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One listening proxy; every connection through it pauses together.
pub struct PausableProxy {
    pub addr: SocketAddr,
    paused: watch::Sender<bool>,
}

impl PausableProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> PausableProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (paused, watch) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(forward(client_read, server_write, None));
                tokio::spawn(forward(server_read, client_write, Some(watch.clone())));
            }
        });
        PausableProxy { addr, paused }
    }

    /// Stops (true) or resumes (false) reading from the broker.
    pub fn pause(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut paused: Option<watch::Receiver<bool>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(paused) = paused.as_mut() {
            if paused.wait_for(|p| !*p).await.is_err() {
                return;
            }
        }
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
