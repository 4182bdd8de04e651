//! Opening a connection: protocol header, connection.start / start-ok
//! (authentication), tune / tune-ok and open / open-ok.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warren_protocol::*;

use super::log::{self, ConnectionName};
use super::server_properties::server_properties;
use super::transport::Transport;
use crate::access::{Grant, LoginRefusal, User};
use crate::broker::Broker;
use crate::client_capabilities::ClientCapabilities;
use crate::connection_slots::{ConnectionSlot, LimitReached};
use crate::error::AmqpError;
use crate::vhost::VHost;

/// The outcome of a successful handshake.
pub(super) struct Session {
    /// Its place under `--max-connections`, held while it is open.
    pub slot: ConnectionSlot,
    pub vhost: Arc<VHost>,
    pub user: String,
    /// How it logged in (PLAIN, AMQPLAIN, EXTERNAL).
    pub auth_mechanism: String,
    /// Whether it came over TLS.
    pub tls: bool,
    /// What the user may do in the vhost.
    pub grant: Grant,
    pub client_properties: FieldTable,
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
    /// Say nothing, wait [`SILENT_CLOSE_DELAY`], then drop the socket: what
    /// RabbitMQ does with a client it cannot trust yet (a start-ok or
    /// tune-ok it cannot decode, limits it cannot accept). The reason goes
    /// to the log only.
    Silent(String),
}

/// How long a handshake that fails silently keeps the socket (RabbitMQ's
/// `SILENT_CLOSE_DELAY`).
pub(super) const SILENT_CLOSE_DELAY: Duration = Duration::from_secs(3);

impl From<std::io::Error> for HandshakeError {
    fn from(_: std::io::Error) -> Self {
        HandshakeError::Gone
    }
}

/// Reads frames during the handshake, before the connection splits its socket.
struct FrameReader<'a, S> {
    socket: &'a mut S,
    buf: BytesMut,
}

impl<S: Transport> FrameReader<'_, S> {
    /// The next method on channel 0 (heartbeats are skipped); a frame that
    /// does not decode is given back as it is, for the caller to answer.
    async fn next_method(&mut self, frame_max: u32) -> Result<Result<Method, ProtocolError>, HandshakeError> {
        loop {
            match decode_frame(&mut self.buf, frame_max) {
                Ok(Some(Frame::Method(0, method))) => return Ok(Ok(method)),
                Ok(Some(Frame::Heartbeat(_))) => continue,
                Ok(Some(frame)) => {
                    return Err(HandshakeError::Silent(format!(
                        "a frame on channel {} before the connection was open",
                        frame.channel()
                    )))
                }
                Ok(None) => {}
                Err(e) => return Ok(Err(e)),
            }
            if self.socket.read_buf(&mut self.buf).await? == 0 {
                return Err(HandshakeError::Gone);
            }
        }
    }

    /// The next method, which must be `expected`; anything else, or a frame
    /// that does not decode, ends the handshake silently.
    async fn expect<T>(
        &mut self,
        frame_max: u32,
        expected: &str,
        pick: impl FnOnce(Method) -> Option<T>,
    ) -> Result<T, HandshakeError> {
        match self.next_method(frame_max).await? {
            Ok(method) => {
                let name = method.name();
                pick(method).ok_or_else(|| HandshakeError::Silent(format!("expected '{expected}', got '{name}'")))
            }
            Err(e) => Err(HandshakeError::Silent(e.to_string())),
        }
    }
}

async fn send<S: Transport>(socket: &mut S, method: Method) -> Result<(), HandshakeError> {
    let mut out = BytesMut::new();
    encode_method(&mut out, 0, &method);
    socket.write_all(&out).await?;
    Ok(())
}

/// Runs the handshake after the protocol header has been checked.
pub(super) async fn run<S: Transport>(
    broker: &Broker,
    socket: &mut S,
    name: ConnectionName,
    buf: BytesMut,
) -> Result<Session, HandshakeError> {
    // EXTERNAL is offered on TLS connections whose client certificate was
    // verified, as rabbitmq_auth_mechanism_ssl offers it.
    let peer_subject = socket.peer_subject();
    let tls = socket.is_tls();
    let mut reader = FrameReader { socket, buf };
    let config = &broker.config;
    let mechanisms: &'static [u8] = if peer_subject.is_some() {
        b"PLAIN AMQPLAIN EXTERNAL"
    } else {
        b"PLAIN AMQPLAIN"
    };
    send(
        reader.socket,
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: server_properties(config.server_identity),
            mechanisms: Bytes::from_static(mechanisms),
            locales: Bytes::from_static(b"en_US"),
        }
        .into(),
    )
    .await?;

    // Until tuned, frames are held to the protocol's minimum size.
    let start_ok = reader
        .expect(constants::FRAME_MIN_SIZE, "connection.start_ok", |m| match m {
            Method::ConnectionStartOk(m) => Some(m),
            _ => None,
        })
        .await?;
    let capabilities = ClientCapabilities::from_client_properties(&start_ok.client_properties);
    let user = authenticate(broker, &start_ok, name, capabilities, peer_subject.as_deref())?;

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
    let tune_ok = reader
        .expect(constants::FRAME_MIN_SIZE, "connection.tune_ok", |m| match m {
            Method::ConnectionTuneOk(m) => Some(m),
            _ => None,
        })
        .await?;
    let failed =
        |reason: String| HandshakeError::Silent(format!("failed to negotiate connection parameters: {reason}"));
    check_tuned("channel_max", tune_ok.channel_max.into(), 1, config.channel_max.into()).map_err(failed)?;
    check_tuned(
        "frame_max",
        tune_ok.frame_max,
        constants::FRAME_MIN_SIZE,
        config.frame_max,
    )
    .map_err(failed)?;
    let frame_max = tune_ok.frame_max;

    let open = match reader.next_method(frame_max).await? {
        Ok(Method::ConnectionOpen(m)) => m,
        Ok(other) => {
            return Err(HandshakeError::Silent(format!(
                "expected 'connection.open', got '{}'",
                other.name()
            )))
        }
        // The one decode error RabbitMQ answers here: a vhost name that is
        // not UTF-8.
        Err(e) if e.kind == ErrorKind::Utf8 => {
            return Err(HandshakeError::Refuse(AmqpError::from(e).on_method((10, 40))))
        }
        Err(e) => return Err(HandshakeError::Silent(e.to_string())),
    };
    let slot = match broker.connection_slots().take() {
        Ok(slot) => slot,
        Err(LimitReached(limit)) => {
            let what = format!("connection refused: node connection limit ({limit}) is reached");
            log::handshake_error(name, Some(&user.name), "opening", &what);
            return Err(HandshakeError::Refuse(AmqpError::not_allowed(what).on_method((10, 40))));
        }
    };
    let Some(vhost) = broker.vhost(open.virtual_host.as_str()) else {
        let what = format!("vhost {} not found", open.virtual_host);
        log::handshake_error(name, Some(&user.name), "opening", &what);
        return Err(HandshakeError::Refuse(AmqpError::not_allowed(what).on_method((10, 40))));
    };
    let client_id = match start_ok.client_properties.get("client_id") {
        Some(FieldValue::LongStr(id)) => Some(String::from_utf8_lossy(id).into_owned()),
        _ => None,
    };
    let Some(grant) = Grant::new(broker.access.clone(), user.clone(), &vhost.name, client_id) else {
        let what = format!("access to vhost '{}' refused for user '{}'", vhost.name, user.name);
        log::handshake_error(name, Some(&user.name), "opening", &what);
        return Err(HandshakeError::Refuse(AmqpError::not_allowed(what).on_method((10, 40))));
    };
    if let Err(refused) = broker.check_connection_limits(&vhost.name, &user.name) {
        log::handshake_error(name, Some(&user.name), "opening", refused.detail());
        return Err(HandshakeError::Refuse(refused.on_method((10, 40))));
    }
    send(reader.socket, ConnectionOpenOk::default().into()).await?;
    Ok(Session {
        slot,
        vhost,
        user: user.name.clone(),
        auth_mechanism: start_ok.mechanism.to_string(),
        tls,
        grant,
        client_properties: start_ok.client_properties,
        frame_max,
        channel_max: tune_ok.channel_max,
        heartbeat: tune_ok.heartbeat,
        capabilities,
        leftover: reader.buf,
    })
}

/// RabbitMQ's check of a tuned limit: the client's value must be at least
/// `min` and, when the server has a limit, not above it (0, "no limit", is
/// above any). The texts are RabbitMQ's.
fn check_tuned(what: &str, client: u32, min: u32, server: u32) -> Result<(), String> {
    let shown = if client == 0 && what == "channel_max" {
        "0 (no limit)".to_string()
    } else {
        client.to_string()
    };
    if client != 0 && client < min {
        return Err(format!(
            "negotiated {what} = {shown} is lower than the minimum allowed value ({min})"
        ));
    }
    if server != 0 && (client == 0 || client > server) {
        return Err(format!(
            "negotiated {what} = {shown} is higher than the maximum allowed value ({server})"
        ));
    }
    Ok(())
}

/// Checks the credentials in start-ok; loopback users may only log in
/// from this host.
fn authenticate(
    broker: &Broker,
    start_ok: &ConnectionStartOk,
    name: ConnectionName,
    caps: ClientCapabilities,
    peer_subject: Option<&str>,
) -> Result<Arc<User>, HandshakeError> {
    let peer = name.peer;
    let mechanism = start_ok.mechanism.as_str();
    if let ("EXTERNAL", Some(subject)) = (mechanism, peer_subject) {
        return match broker.access.user(subject) {
            Some(user) => Ok(user),
            None => {
                let why = format!("user '{subject}' - invalid credentials");
                log::handshake_error(name, None, "starting", &format!("EXTERNAL login refused: {why}"));
                if caps.authentication_failure_close {
                    Err(HandshakeError::Refuse(AmqpError::access_refused(
                        "Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile.",
                    )))
                } else {
                    Err(HandshakeError::Gone)
                }
            }
        };
    }
    let credentials = match mechanism {
        "PLAIN" => parse_plain(&start_ok.response),
        "AMQPLAIN" => parse_amqplain(&start_ok.response),
        _ => {
            // RabbitMQ refuses an unknown mechanism with a 503 it only logs
            // during the handshake: the client sees the socket close.
            return Err(HandshakeError::Silent(format!(
                "unsupported authentication mechanism '{mechanism}'"
            )));
        }
    };
    let outcome = match &credentials {
        None => Err("malformed credentials".to_string()),
        Some((user, password)) => match broker.access.authenticate(user, password, peer.ip().is_loopback()) {
            Ok(user) => Ok(user),
            Err(LoginRefusal::InvalidCredentials) => Err(format!("user '{user}' - invalid credentials")),
            Err(LoginRefusal::LoopbackOnly) => Err(format!("user '{user}' - User can only log in via localhost")),
        },
    };
    match outcome {
        Ok(user) => Ok(user),
        Err(why) => {
            log::handshake_error(name, None, "starting", &format!("{mechanism} login refused: {why}"));
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
