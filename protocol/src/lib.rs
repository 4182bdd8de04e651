//! The AMQP 0-9-1 wire protocol for Warren: frames, methods, content headers
//! and field tables, decoded with nom and encoded into shared buffers.
//!
//! This crate does no I/O and holds no broker logic: bytes in, typed frames
//! out, and back. Decoding is zero-copy for bodies and long fields (slices of
//! the read buffer; short strings are copied, which costs less than sharing)
//! and every malformed input becomes a [`ProtocolError`] that carries the
//! reply code the broker must send.

mod added_header;
#[cfg(feature = "arbitrary")]
pub mod arbitrary;
pub mod constants;
pub mod error;
pub mod field_table;
pub mod frame;
pub mod methods;
pub mod properties;
pub mod types;
pub mod wire;

pub use constants::{class, frame_type, reply_code, FRAME_END, PROTOCOL_HEADER};
pub use error::{ErrorKind, ProtocolError};
pub use field_table::{FieldTable, FieldValue, MAX_VALUES};
pub use frame::{
    decode_frame, decode_protocol_header, encode_body, encode_content, encode_frame, encode_header, encode_header_with,
    encode_heartbeat, encode_method, erlang_binary_text, Frame, ProtocolHeader, WriteBuffer,
};
pub use methods::*;
pub use properties::{BasicProperties, ContentHeader};
pub use types::{LongStr, ShortStr};
