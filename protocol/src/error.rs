//! Decoding errors, each carrying the AMQP reply code the broker must send
//! and what kind of failure it was.

use crate::constants::reply_code;

/// What kind of malformed input an error is. RabbitMQ answers them
/// differently depending on where they arrive (an open channel, channel 0,
/// the handshake), so the broker decides from the kind; `code` and `text`
/// are the answer on an open channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The framing itself: a frame larger than frame_max, a bad frame-end
    /// octet, an unknown frame type.
    Framing,
    /// A frame larger than the negotiated frame_max (RabbitMQ stops reading
    /// the connection after it).
    FrameTooLarge,
    /// A method's arguments do not match its layout (too short, too long,
    /// a length running past the payload): RabbitMQ's "cannot decode".
    Arguments,
    /// A field table whose contents do not parse (RabbitMQ's parser
    /// crashes and the connection is dropped).
    FieldTable,
    /// A short string that is not UTF-8.
    Utf8,
    /// A class or method id that does not exist.
    UnknownMethod,
    /// A content header whose fixed part or property list is malformed.
    ContentHeader,
}

/// Something on the wire was not valid AMQP 0-9-1.
///
/// Every error knows the connection-level reply code that answers it on an
/// open channel (501 FRAME_ERROR, 502 SYNTAX_ERROR, 503 COMMAND_INVALID),
/// and a text saying what was wrong, so the broker can send
/// `connection.close` without interpreting it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} - {text}", reply_code::name(*code))]
pub struct ProtocolError {
    pub code: u16,
    pub text: String,
    /// The class and method being decoded when the error was found (0 if none).
    pub class_id: u16,
    pub method_id: u16,
    pub kind: ErrorKind,
    /// The channel of the frame the error was found in.
    pub channel: u16,
}

impl ProtocolError {
    pub fn new(kind: ErrorKind, code: u16, text: impl Into<String>) -> Self {
        ProtocolError {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
            kind,
            channel: 0,
        }
    }

    pub fn frame(text: impl Into<String>) -> Self {
        Self::new(ErrorKind::Framing, reply_code::FRAME_ERROR, text)
    }

    /// A method's arguments are cut short or run past the payload.
    pub fn arguments(text: impl Into<String>) -> Self {
        Self::new(ErrorKind::Arguments, reply_code::SYNTAX_ERROR, text)
    }

    /// A field table's contents are malformed.
    pub fn field_table(text: impl Into<String>) -> Self {
        Self::new(ErrorKind::FieldTable, reply_code::SYNTAX_ERROR, text)
    }

    pub fn with_method(mut self, class_id: u16, method_id: u16) -> Self {
        self.class_id = class_id;
        self.method_id = method_id;
        self
    }
}

pub type Result<T> = std::result::Result<T, ProtocolError>;
