//! Opening a connection: protocol header, connection.start / start-ok
//! (authentication), tune / tune-ok and open / open-ok.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_protocol::*;

use crate::broker::Broker;
use crate::client_capabilities::ClientCapabilities;
use crate::error::AmqpError;
use crate::vhost::VHost;

/// The outcome of a successful handshake.
pub(super) struct Session {
    pub vhost: Arc<VHost>,
    pub user: String,
    pub frame_max: u32,
    pub channel_max: u16,
    pub heartbeat: u16,
    pub capabilities: ClientCapabilities,
    /// Bytes the client sent after connection.open that belong to the main loop.
    pub leftover: BytesMut,
}

/// Why the handshake ended without a session.
pub(super) enum HandshakeError {
    /// The socket closed or failed; nothing more to say to the client.
    Gone,
    /// Send this connection.close, then drop the socket.
    Refuse(AmqpError),
}

impl From<std::io::Error> for HandshakeError {
    fn from(_: std::io::Error) -> Self {
        HandshakeError::Gone
    }
}

/// Reads frames during the handshake, before the connection splits its socket.
struct FrameReader<'a> {
    socket: &'a mut TcpStream,
    buf: BytesMut,
}

impl FrameReader<'_> {
    async fn next_method(&mut self, frame_max: u32) -> Result<Method, HandshakeError> {
        loop {
            match decode_frame(&mut self.buf, frame_max) {
                Ok(Some(Frame::Method(0, method))) => return Ok(method),
                Ok(Some(Frame::Heartbeat(_))) => continue,
                Ok(Some(_)) => {
                    return Err(HandshakeError::Refuse(AmqpError::command_invalid(
                        "expected a connection method on channel 0",
                    )))
                }
                Ok(None) => {}
                Err(e) => return Err(HandshakeError::Refuse(e.into())),
            }
            if self.socket.read_buf(&mut self.buf).await? == 0 {
                return Err(HandshakeError::Gone);
            }
        }
    }
}

async fn send(socket: &mut TcpStream, method: Method) -> Result<(), HandshakeError> {
    let mut out = BytesMut::new();
    encode_method(&mut out, 0, &method);
    socket.write_all(&out).await?;
    Ok(())
}

fn server_properties() -> FieldTable {
    let mut capabilities = FieldTable::new();
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "consumer_priorities",
        "authentication_failure_close",
        "per_consumer_qos",
        "direct_reply_to",
    ] {
        capabilities.insert(cap, FieldValue::Bool(true));
    }
    let mut props = FieldTable::new();
    props.insert("capabilities", FieldValue::Table(capabilities));
    props.insert("product", "Warren".into());
    props.insert("version", env!("CARGO_PKG_VERSION").into());
    props.insert("platform", "Rust".into());
    props.insert("cluster_name", "warren".into());
    props.insert("copyright", "The Warren developers".into());
    props.insert("information", "An AMQP 0-9-1 broker compatible with RabbitMQ".into());
    props
}

/// Runs the handshake after the protocol header has been checked.
pub(super) async fn run(
    broker: &Broker,
    socket: &mut TcpStream,
    peer: SocketAddr,
    buf: BytesMut,
) -> Result<Session, HandshakeError> {
    let mut reader = FrameReader { socket, buf };
    let config = &broker.config;
    send(
        reader.socket,
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties(),
            mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
            locales: Bytes::from_static(b"en_US"),
        }
        .into(),
    )
    .await?;

    let start_ok = match reader.next_method(config.frame_max).await? {
        Method::ConnectionStartOk(m) => m,
        other => return Err(unexpected(&other, "connection.start-ok")),
    };
    let capabilities = ClientCapabilities::from_client_properties(&start_ok.client_properties);
    let user = authenticate(broker, &start_ok, peer, capabilities)?;

    send(
        reader.socket,
        ConnectionTune {
            channel_max: config.channel_max,
            frame_max: config.frame_max,
            heartbeat: config.heartbeat,
        }
        .into(),
    )
    .await?;
    let tune_ok = match reader.next_method(config.frame_max).await? {
        Method::ConnectionTuneOk(m) => m,
        other => return Err(unexpected(&other, "connection.tune-ok")),
    };
    let frame_max = negotiate(tune_ok.frame_max, config.frame_max);
    if frame_max < constants::FRAME_MIN_SIZE {
        return Err(HandshakeError::Refuse(AmqpError::not_allowed(format!(
            "frame_max={frame_max} < {} min size",
            constants::FRAME_MIN_SIZE
        ))));
    }
    let channel_max = negotiate(tune_ok.channel_max, config.channel_max);

    let open = match reader.next_method(frame_max).await? {
        Method::ConnectionOpen(m) => m,
        other => return Err(unexpected(&other, "connection.open")),
    };
    let Some(vhost) = broker.vhost(open.virtual_host.as_str()) else {
        return Err(HandshakeError::Refuse(AmqpError::not_allowed(format!(
            "vhost {} not found",
            open.virtual_host
        ))));
    };
    send(reader.socket, ConnectionOpenOk::default().into()).await?;
    Ok(Session {
        vhost,
        user,
        frame_max,
        channel_max,
        heartbeat: tune_ok.heartbeat,
        capabilities,
        leftover: reader.buf,
    })
}

/// The lower of two limits where 0 means "no limit".
fn negotiate<T: Ord + Default + Copy>(client: T, server: T) -> T {
    if client == T::default() {
        server
    } else if server == T::default() {
        client
    } else {
        client.min(server)
    }
}

fn unexpected(got: &Method, expected: &str) -> HandshakeError {
    HandshakeError::Refuse(
        AmqpError::command_invalid(format!("expected '{expected}', got '{}'", got.name())).on_method(got.ids()),
    )
}

/// Checks the credentials in start-ok; guest may only log in from loopback.
fn authenticate(
    broker: &Broker,
    start_ok: &ConnectionStartOk,
    peer: SocketAddr,
    caps: ClientCapabilities,
) -> Result<String, HandshakeError> {
    let mechanism = start_ok.mechanism.as_str();
    let credentials = match mechanism {
        "PLAIN" => parse_plain(&start_ok.response),
        "AMQPLAIN" => parse_amqplain(&start_ok.response),
        _ => {
            // RabbitMQ refuses an unknown mechanism with a 503 it only logs
            // during the handshake: the client sees the socket close.
            tracing::warn!(%peer, "unsupported authentication mechanism '{mechanism}'");
            return Err(HandshakeError::Gone);
        }
    };
    let accepted = credentials.as_ref().is_some_and(|(user, password)| {
        broker.authenticate(user, password)
            && (user != "guest" || broker.config.guest_remote_access || peer.ip().is_loopback())
    });
    match credentials {
        Some((user, _)) if accepted => Ok(user),
        _ => {
            tracing::warn!(%peer, "login refused using mechanism {mechanism}");
            if caps.authentication_failure_close {
                Err(HandshakeError::Refuse(AmqpError::access_refused(format!(
                    "Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
                ))))
            } else {
                Err(HandshakeError::Gone)
            }
        }
    }
}

/// PLAIN: `authzid NUL user NUL password`.
fn parse_plain(response: &[u8]) -> Option<(String, String)> {
    let mut parts = response.split(|&b| b == 0);
    let _authzid = parts.next()?;
    let user = std::str::from_utf8(parts.next()?).ok()?;
    let password = std::str::from_utf8(parts.next()?).ok()?;
    Some((user.to_string(), password.to_string()))
}

/// AMQPLAIN: a field table body with LOGIN and PASSWORD.
fn parse_amqplain(response: &Bytes) -> Option<(String, String)> {
    let table = FieldTable::decode(response, 0).ok()?;
    let text = |key: &str| match table.get(key)? {
        FieldValue::LongStr(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    };
    Some((text("LOGIN")?, text("PASSWORD")?))
}
