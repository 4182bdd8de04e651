//! How a frame that does not decode is answered on an open connection,
//! which depends on what was wrong and on the channel it came on, as
//! RabbitMQ 3.10 answers (each case measured on the wire beside it:
//! `protocol/tests/decode_errors.rs` and `conformance/tests/wire.rs`).

use warren_protocol::{ErrorKind, ProtocolError};

use crate::error::AmqpError;

/// What to do about a frame that did not decode.
#[derive(Debug)]
pub(super) enum Answer {
    /// connection.close with this error, then wait for close-ok.
    Close(AmqpError),
    /// connection.close, then read nothing more and drop the socket a
    /// moment later whatever the client says (RabbitMQ's fatal frame
    /// error: once framing is lost, nothing after it can be trusted).
    CloseAndStop(AmqpError),
    /// Drop the socket without a word: RabbitMQ's reader process crashes on
    /// these (an unknown method, a field table it cannot parse).
    Drop,
}

pub(super) fn answer(e: ProtocolError) -> Answer {
    let on_channel_zero = e.channel == 0;
    match e.kind {
        ErrorKind::Framing | ErrorKind::FrameTooLarge => Answer::CloseAndStop(e.into()),
        ErrorKind::UnknownMethod => Answer::Drop,
        ErrorKind::FieldTable if !on_channel_zero => Answer::Drop,
        // Channel 0's methods are decoded where every failure but a bare
        // AMQP error becomes an internal error.
        ErrorKind::Arguments | ErrorKind::FieldTable => {
            if on_channel_zero {
                Answer::Close(AmqpError::crashed())
            } else {
                Answer::Close(e.into())
            }
        }
        // On a channel, RabbitMQ raises it without naming the method; on
        // channel 0 the method is named.
        ErrorKind::Utf8 if !on_channel_zero => Answer::Close(AmqpError::from(e.with_method(0, 0))),
        ErrorKind::Utf8 | ErrorKind::ContentHeader => Answer::Close(e.into()),
    }
}
