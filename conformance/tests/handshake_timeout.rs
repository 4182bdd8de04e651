//! A client that connects and never finishes the handshake is dropped once
//! the handshake timeout passes (10 s by default, as in RabbitMQ; 300 ms for
//! this test's broker).

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn an_unfinished_handshake_is_dropped() {
    let mut config = warren::ephemeral_config();
    config.handshake_timeout = Duration::from_millis(300);
    let url = warren_conformance::start_background_broker(config);
    let address = url.rsplit('@').next().unwrap().split('/').next().unwrap().to_string();
    let mut socket = TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the broker closed the socket");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the timeout"
    );
}
