//! A connection's log lines, worded as RabbitMQ's so that operators (and
//! their log searches) find the same events: accepted, authenticated and
//! granted a vhost, closed (cleanly or not), channel and connection errors,
//! refused logins and failed negotiations. Connections are named as
//! RabbitMQ names them, `peer -> local`.

use std::fmt;

use warren_protocol::Method;

use crate::error::AmqpError;
pub(crate) use crate::ids::ConnectionName;

/// Who is on an open connection, for its log lines.
pub(crate) struct Opened<'a> {
    pub name: ConnectionName,
    pub vhost: &'a str,
    pub user: &'a str,
}

impl fmt::Display for Opened<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, vhost: '{}', user: '{}'", self.name, self.vhost, self.user)
    }
}

/// The method an exception names, as `queue.declare`, or "none".
fn operation(error: &AmqpError) -> &'static str {
    Method::name_of(error.class_id, error.method_id).unwrap_or("none")
}

pub(crate) fn accepting(name: ConnectionName) {
    tracing::info!("accepting AMQP connection ({name})");
}

pub(crate) fn granted(who: &Opened<'_>) {
    tracing::info!(
        "connection ({}): user '{}' authenticated and granted access to vhost '{}'",
        who.name,
        who.user,
        who.vhost
    );
}

pub(crate) fn closed(who: &Opened<'_>) {
    tracing::info!("closing AMQP connection ({who})");
}

pub(crate) fn dropped_by_client(who: &Opened<'_>) {
    tracing::warn!("closing AMQP connection ({who}): client unexpectedly closed TCP connection");
}

pub(crate) fn channel_error(who: &Opened<'_>, channel: u16, error: &AmqpError) {
    tracing::error!(
        "Channel error on connection ({who}), channel {channel}: operation {} caused a channel exception {}: {}",
        operation(error),
        error.name(),
        error.detail()
    );
}

pub(crate) fn connection_error(who: &Opened<'_>, channel: u16, error: &AmqpError) {
    tracing::error!(
        "Error on AMQP connection ({who}, state: running), channel {channel}: operation {} caused a connection \
         exception {}: \"{}\"",
        operation(error),
        error.name(),
        error.detail()
    );
}

/// An error before the connection was open (`state` is RabbitMQ's:
/// starting, tuning, opening).
pub(crate) fn handshake_error(name: ConnectionName, user: Option<&str>, state: &str, what: &str) {
    match user {
        Some(user) => tracing::error!("Error on AMQP connection ({name}, user: '{user}', state: {state}): {what}"),
        None => tracing::error!("Error on AMQP connection ({name}, state: {state}): {what}"),
    }
}

/// A handshake given up without a word to the client.
pub(crate) fn silent_close(name: ConnectionName, why: &str) {
    tracing::error!("closing AMQP connection ({name}): {why}");
}
