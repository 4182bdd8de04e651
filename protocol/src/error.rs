//! Decoding errors, each carrying the AMQP reply code the broker must send.

use crate::constants::reply_code;

/// Something on the wire was not valid AMQP 0-9-1.
///
/// Every error knows the connection-level reply code that answers it
/// (501 FRAME_ERROR, 502 SYNTAX_ERROR, 503 COMMAND_INVALID, 505
/// UNEXPECTED_FRAME, 540 NOT_IMPLEMENTED), and a text saying what was wrong,
/// so the broker can send `connection.close` without interpreting it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} - {text}", reply_code::name(*code))]
pub struct ProtocolError {
    pub code: u16,
    pub text: String,
    /// The class and method being decoded when the error was found (0 if none).
    pub class_id: u16,
    pub method_id: u16,
}

impl ProtocolError {
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        ProtocolError {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
        }
    }

    pub fn frame(text: impl Into<String>) -> Self {
        Self::new(reply_code::FRAME_ERROR, text)
    }

    pub fn syntax(text: impl Into<String>) -> Self {
        Self::new(reply_code::SYNTAX_ERROR, text)
    }

    pub fn with_method(mut self, class_id: u16, method_id: u16) -> Self {
        self.class_id = class_id;
        self.method_id = method_id;
        self
    }
}

pub type Result<T> = std::result::Result<T, ProtocolError>;
