//! AMQP exceptions raised by the broker, with RabbitMQ's reply codes and texts.
//!
//! A channel exception (404, 403, 405, 406) closes only the channel; a
//! connection exception (5xx, 320, 530) closes the connection. Which one it is
//! follows from the reply code, as in the spec.

use std::fmt;

use warren_protocol::{reply_code, ProtocolError, ShortStr};

/// An exception to report to the client with `channel.close` or
/// `connection.close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AmqpError {
    pub code: u16,
    /// The full reply text, `NAME - detail` as RabbitMQ writes it.
    pub text: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl AmqpError {
    pub(crate) fn new(code: u16, detail: impl fmt::Display) -> Self {
        AmqpError {
            code,
            text: format!("{} - {}", reply_code::name(code), detail),
            class_id: 0,
            method_id: 0,
        }
    }

    /// An exception whose reply text is exactly `text` (RabbitMQ's
    /// 541 says only "INTERNAL_ERROR").
    pub(crate) fn bare(code: u16, text: &str) -> Self {
        AmqpError {
            code,
            text: text.to_string(),
            class_id: 0,
            method_id: 0,
        }
    }

    /// The reply text as sent: at most 255 bytes, a longer one cut to its
    /// first 252 and "..." as RabbitMQ cuts it.
    pub(crate) fn reply_text(&self) -> ShortStr {
        if self.text.len() <= 255 {
            return ShortStr::from(self.text.as_str());
        }
        let mut end = 252;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        ShortStr::from(format!("{}...", &self.text[..end]))
    }

    /// The exception's name as RabbitMQ's logs write it (`not_found`).
    pub(crate) fn name(&self) -> String {
        reply_code::name(self.code).to_ascii_lowercase()
    }

    /// The text after the name (`no queue 'q' in vhost '/'`).
    pub(crate) fn detail(&self) -> &str {
        self.text
            .split_once(" - ")
            .map_or(self.text.as_str(), |(_, detail)| detail)
    }

    /// Records which method caused the exception, if not already known.
    pub(crate) fn on_method(mut self, (class_id, method_id): (u16, u16)) -> Self {
        if self.class_id == 0 {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }

    pub(crate) fn is_connection_error(&self) -> bool {
        reply_code::is_hard_error(self.code)
    }

    pub(crate) fn not_found(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::NOT_FOUND, detail)
    }

    pub(crate) fn access_refused(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::ACCESS_REFUSED, detail)
    }

    pub(crate) fn resource_locked(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::RESOURCE_LOCKED, detail)
    }

    pub(crate) fn precondition_failed(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::PRECONDITION_FAILED, detail)
    }

    pub(crate) fn command_invalid(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::COMMAND_INVALID, detail)
    }

    pub(crate) fn channel_error(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::CHANNEL_ERROR, detail)
    }

    pub(crate) fn unexpected_frame(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::UNEXPECTED_FRAME, detail)
    }

    pub(crate) fn not_allowed(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::NOT_ALLOWED, detail)
    }

    pub(crate) fn not_implemented(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::NOT_IMPLEMENTED, detail)
    }

    pub(crate) fn frame_error(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::FRAME_ERROR, detail)
    }

    /// What a client sees where RabbitMQ's own code crashes on its input
    /// (541 with the bare text, and the connection closed): answered where
    /// clients could come to rely on it.
    pub(crate) fn crashed() -> Self {
        Self::bare(reply_code::INTERNAL_ERROR, "INTERNAL_ERROR")
    }

    pub(crate) fn internal_error(detail: impl fmt::Display) -> Self {
        Self::new(reply_code::INTERNAL_ERROR, detail)
    }

    /// "no queue 'q' in vhost '/'" and its kin.
    pub(crate) fn no_such(kind: &str, name: &str, vhost: &str) -> Self {
        Self::not_found(format!("no {kind} '{name}' in vhost '{vhost}'"))
    }
}

impl From<ProtocolError> for AmqpError {
    fn from(e: ProtocolError) -> Self {
        AmqpError::new(e.code, e.text).on_method((e.class_id, e.method_id))
    }
}

impl fmt::Display for AmqpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl std::error::Error for AmqpError {}

pub(crate) type AmqpResult<T> = Result<T, AmqpError>;
