//! Every class and method of AMQP 0-9-1, with RabbitMQ's extensions
//! (connection.blocked/unblocked/update-secret, exchange.bind/unbind,
//! basic.nack, confirm.select).
//!
//! Each method is a plain struct whose fields are listed in wire order; the
//! `methods!` macro derives the decoder, the encoder and the `Method` enum
//! from that list, and the [`Field`] trait does bit packing, so a method's
//! definition here reads like the spec's XML.

use bytes::{BufMut, Bytes, BytesMut};

use crate::constants::reply_code;
use crate::error::{ErrorKind, ProtocolError, Result};
use crate::field_table::FieldTable;
use crate::types::ShortStr;
use crate::wire::{Field, Reader, Writer};

#[cold]
fn trailing_bytes(class_id: u16, method_id: u16) -> ProtocolError {
    ProtocolError::arguments("trailing bytes after the arguments").with_method(class_id, method_id)
}

/// Completes an error found in a method frame's payload: arguments that do
/// not fit the method's layout become RabbitMQ's 501 "cannot decode", which
/// shows the argument bytes (after class and method ids) as Erlang prints
/// a binary (`~w`); other kinds keep their text.
#[cold]
fn cannot_decode(e: ProtocolError, payload: &[u8]) -> ProtocolError {
    if e.kind != ErrorKind::Arguments || e.class_id == 0 && e.method_id == 0 {
        return e;
    }
    let bytes = payload.get(4..).unwrap_or_default();
    let mut text = String::from("cannot decode <<");
    for (i, b) in bytes.iter().enumerate() {
        if text.len() > MAX_TEXT {
            // The reply text is cut here anyway; the rest is never sent.
            break;
        }
        if i > 0 {
            text.push(',');
        }
        text.push_str(&b.to_string());
    }
    if text.len() <= MAX_TEXT {
        text.push_str(">>");
    }
    ProtocolError {
        code: reply_code::FRAME_ERROR,
        text,
        ..e
    }
}

/// A reply text is at most 255 bytes: past this, the bytes of a long
/// payload are not written out.
const MAX_TEXT: usize = 300;

macro_rules! methods {
    ($(
        $(#[$doc:meta])*
        $variant:ident = ($class:literal, $method:literal, $name:literal $(, $content:ident)?) {
            $($field:ident : $ty:ty),* $(,)?
        }
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Default)]
            pub struct $variant {
                $(pub $field: $ty,)*
            }

            impl $variant {
                pub const CLASS_ID: u16 = $class;
                pub const METHOD_ID: u16 = $method;
            }

            impl From<$variant> for Method {
                fn from(m: $variant) -> Method {
                    Method::$variant(m)
                }
            }
        )*

        /// Any AMQP 0-9-1 method, with its arguments.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Method {
            $($variant($variant),)*
        }

        impl Method {
            /// The class and method ids.
            pub fn ids(&self) -> (u16, u16) {
                match self {
                    $(Method::$variant(_) => ($class, $method),)*
                }
            }

            /// The method's name as the spec writes it, e.g. `basic.publish`.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Method::$variant(_) => $name,)*
                }
            }

            /// The name of a method given by ids, if it exists.
            pub fn name_of(class_id: u16, method_id: u16) -> Option<&'static str> {
                match (class_id, method_id) {
                    $(($class, $method) => Some($name),)*
                    _ => None,
                }
            }

            /// Whether content (a header and body frames) follows this method.
            pub fn has_content(&self) -> bool {
                match self {
                    $(Method::$variant(_) => methods!(@content $($content)?),)*
                }
            }

            /// Whether content follows the method given by ids (RabbitMQ
            /// does not check its short strings for UTF-8).
            fn carries_content(class_id: u16, method_id: u16) -> bool {
                match (class_id, method_id) {
                    $(($class, $method) => methods!(@content $($content)?),)*
                    _ => false,
                }
            }

            /// Whether the method given by ids has a field that keeps a
            /// slice of its payload (a longstr, byte field or table). The
            /// frame decoder borrows the payload of every other method
            /// instead of making it a shared `Bytes`, which saves two
            /// atomic operations per frame (basic.publish, basic.ack...).
            pub fn shares_payload(class_id: u16, method_id: u16) -> bool {
                match (class_id, method_id) {
                    $(($class, $method) => false $(|| <$ty as Field>::SHARES_PAYLOAD)*,)*
                    _ => false,
                }
            }

            /// Decodes a method frame's payload: class id, method id, arguments.
            pub fn decode(payload: &Bytes) -> Result<Method> {
                Self::decode_from(Reader::new(payload)).map_err(|e| cannot_decode(e, payload))
            }

            /// Decodes a borrowed method frame's payload; fields that keep
            /// a slice of the payload are copied.
            pub fn decode_borrowed(payload: &[u8]) -> Result<Method> {
                Self::decode_from(Reader::borrowed(payload)).map_err(|e| cannot_decode(e, payload))
            }

            /// Decodes class id, method id and arguments. The reader is not
            /// borrowed by the error path (that would keep it out of
            /// registers on every read): errors are completed by the caller.
            fn decode_from(mut r: Reader<'_>) -> Result<Method> {
                let class_id = r.u16()?;
                let method_id = r.u16()?;
                if Self::carries_content(class_id, method_id) {
                    r.accept_invalid_utf8();
                }
                let method = match (class_id, method_id) {
                    $(($class, $method) => Method::$variant($variant {
                        $($field: <$ty as Field>::read(&mut r)
                            .map_err(|e| e.with_method(class_id, method_id))?,)*
                    }),)*
                    _ => {
                        return Err(ProtocolError::new(
                            ErrorKind::UnknownMethod,
                            reply_code::COMMAND_INVALID,
                            format!("unknown method: class {class_id}, method {method_id}"),
                        ).with_method(class_id, method_id))
                    }
                };
                if r.remaining() > 0 {
                    return Err(trailing_bytes(class_id, method_id));
                }
                Ok(method)
            }

            /// A proptest strategy producing every method with arbitrary arguments.
            #[cfg(feature = "arbitrary")]
            pub fn arbitrary() -> proptest::strategy::BoxedStrategy<Method> {
                use proptest::strategy::Strategy;
                use crate::arbitrary::Arbitrary;
                proptest::strategy::Union::new(vec![
                    $(
                        // The leading Just(()) makes methods without arguments a strategy too.
                        (proptest::strategy::Just(()), $(<$ty as Arbitrary>::strategy(),)*)
                            .prop_map(|((), $($field,)*)| Method::$variant($variant { $($field,)* }))
                            .boxed(),
                    )*
                ])
                .boxed()
            }

            /// Every method, with default arguments.
            pub fn all_defaults() -> Vec<Method> {
                vec![$(Method::$variant($variant::default()),)*]
            }

            /// Appends class id, method id and arguments.
            pub fn encode(&self, buf: &mut BytesMut) {
                let (class_id, method_id) = self.ids();
                buf.put_u16(class_id);
                buf.put_u16(method_id);
                let mut _w = Writer::new(buf);
                match self {
                    $(Method::$variant(_m) => { $(_m.$field.write(&mut _w);)* })*
                }
            }
        }
    };
    (@content content) => { true };
    (@content) => { false };
}

methods! {
    ConnectionStart = (10, 10, "connection.start") {
        version_major: u8, version_minor: u8, server_properties: FieldTable,
        mechanisms: Bytes, locales: Bytes,
    }
    ConnectionStartOk = (10, 11, "connection.start-ok") {
        client_properties: FieldTable, mechanism: ShortStr, response: Bytes, locale: ShortStr,
    }
    ConnectionSecure = (10, 20, "connection.secure") { challenge: Bytes }
    ConnectionSecureOk = (10, 21, "connection.secure-ok") { response: Bytes }
    ConnectionTune = (10, 30, "connection.tune") { channel_max: u16, frame_max: u32, heartbeat: u16 }
    ConnectionTuneOk = (10, 31, "connection.tune-ok") { channel_max: u16, frame_max: u32, heartbeat: u16 }
    ConnectionOpen = (10, 40, "connection.open") { virtual_host: ShortStr, capabilities: ShortStr, insist: bool }
    ConnectionOpenOk = (10, 41, "connection.open-ok") { known_hosts: ShortStr }
    ConnectionClose = (10, 50, "connection.close") {
        reply_code: u16, reply_text: ShortStr, class_id: u16, method_id: u16,
    }
    ConnectionCloseOk = (10, 51, "connection.close-ok") {}
    ConnectionBlocked = (10, 60, "connection.blocked") { reason: ShortStr }
    ConnectionUnblocked = (10, 61, "connection.unblocked") {}
    ConnectionUpdateSecret = (10, 70, "connection.update-secret") { new_secret: Bytes, reason: ShortStr }
    ConnectionUpdateSecretOk = (10, 71, "connection.update-secret-ok") {}

    ChannelOpen = (20, 10, "channel.open") { out_of_band: ShortStr }
    ChannelOpenOk = (20, 11, "channel.open-ok") { channel_id: Bytes }
    ChannelFlow = (20, 20, "channel.flow") { active: bool }
    ChannelFlowOk = (20, 21, "channel.flow-ok") { active: bool }
    ChannelClose = (20, 40, "channel.close") {
        reply_code: u16, reply_text: ShortStr, class_id: u16, method_id: u16,
    }
    ChannelCloseOk = (20, 41, "channel.close-ok") {}

    ExchangeDeclare = (40, 10, "exchange.declare") {
        ticket: u16, exchange: ShortStr, kind: ShortStr, passive: bool, durable: bool,
        auto_delete: bool, internal: bool, nowait: bool, arguments: FieldTable,
    }
    ExchangeDeclareOk = (40, 11, "exchange.declare-ok") {}
    ExchangeDelete = (40, 20, "exchange.delete") { ticket: u16, exchange: ShortStr, if_unused: bool, nowait: bool }
    ExchangeDeleteOk = (40, 21, "exchange.delete-ok") {}
    ExchangeBind = (40, 30, "exchange.bind") {
        ticket: u16, destination: ShortStr, source: ShortStr, routing_key: ShortStr,
        nowait: bool, arguments: FieldTable,
    }
    ExchangeBindOk = (40, 31, "exchange.bind-ok") {}
    ExchangeUnbind = (40, 40, "exchange.unbind") {
        ticket: u16, destination: ShortStr, source: ShortStr, routing_key: ShortStr,
        nowait: bool, arguments: FieldTable,
    }
    ExchangeUnbindOk = (40, 51, "exchange.unbind-ok") {}

    QueueDeclare = (50, 10, "queue.declare") {
        ticket: u16, queue: ShortStr, passive: bool, durable: bool, exclusive: bool,
        auto_delete: bool, nowait: bool, arguments: FieldTable,
    }
    QueueDeclareOk = (50, 11, "queue.declare-ok") { queue: ShortStr, message_count: u32, consumer_count: u32 }
    QueueBind = (50, 20, "queue.bind") {
        ticket: u16, queue: ShortStr, exchange: ShortStr, routing_key: ShortStr,
        nowait: bool, arguments: FieldTable,
    }
    QueueBindOk = (50, 21, "queue.bind-ok") {}
    QueuePurge = (50, 30, "queue.purge") { ticket: u16, queue: ShortStr, nowait: bool }
    QueuePurgeOk = (50, 31, "queue.purge-ok") { message_count: u32 }
    QueueDelete = (50, 40, "queue.delete") {
        ticket: u16, queue: ShortStr, if_unused: bool, if_empty: bool, nowait: bool,
    }
    QueueDeleteOk = (50, 41, "queue.delete-ok") { message_count: u32 }
    QueueUnbind = (50, 50, "queue.unbind") {
        ticket: u16, queue: ShortStr, exchange: ShortStr, routing_key: ShortStr, arguments: FieldTable,
    }
    QueueUnbindOk = (50, 51, "queue.unbind-ok") {}

    BasicQos = (60, 10, "basic.qos") { prefetch_size: u32, prefetch_count: u16, global: bool }
    BasicQosOk = (60, 11, "basic.qos-ok") {}
    BasicConsume = (60, 20, "basic.consume") {
        ticket: u16, queue: ShortStr, consumer_tag: ShortStr, no_local: bool, no_ack: bool,
        exclusive: bool, nowait: bool, arguments: FieldTable,
    }
    BasicConsumeOk = (60, 21, "basic.consume-ok") { consumer_tag: ShortStr }
    BasicCancel = (60, 30, "basic.cancel") { consumer_tag: ShortStr, nowait: bool }
    BasicCancelOk = (60, 31, "basic.cancel-ok") { consumer_tag: ShortStr }
    BasicPublish = (60, 40, "basic.publish", content) {
        ticket: u16, exchange: ShortStr, routing_key: ShortStr, mandatory: bool, immediate: bool,
    }
    BasicReturn = (60, 50, "basic.return", content) {
        reply_code: u16, reply_text: ShortStr, exchange: ShortStr, routing_key: ShortStr,
    }
    BasicDeliver = (60, 60, "basic.deliver", content) {
        consumer_tag: ShortStr, delivery_tag: u64, redelivered: bool, exchange: ShortStr,
        routing_key: ShortStr,
    }
    BasicGet = (60, 70, "basic.get") { ticket: u16, queue: ShortStr, no_ack: bool }
    BasicGetOk = (60, 71, "basic.get-ok", content) {
        delivery_tag: u64, redelivered: bool, exchange: ShortStr, routing_key: ShortStr,
        message_count: u32,
    }
    BasicGetEmpty = (60, 72, "basic.get-empty") { cluster_id: ShortStr }
    BasicAck = (60, 80, "basic.ack") { delivery_tag: u64, multiple: bool }
    BasicReject = (60, 90, "basic.reject") { delivery_tag: u64, requeue: bool }
    BasicRecoverAsync = (60, 100, "basic.recover-async") { requeue: bool }
    BasicRecover = (60, 110, "basic.recover") { requeue: bool }
    BasicRecoverOk = (60, 111, "basic.recover-ok") {}
    BasicNack = (60, 120, "basic.nack") { delivery_tag: u64, multiple: bool, requeue: bool }

    ConfirmSelect = (85, 10, "confirm.select") { nowait: bool }
    ConfirmSelectOk = (85, 11, "confirm.select-ok") {}

    TxSelect = (90, 10, "tx.select") {}
    TxSelectOk = (90, 11, "tx.select-ok") {}
    TxCommit = (90, 20, "tx.commit") {}
    TxCommitOk = (90, 21, "tx.commit-ok") {}
    TxRollback = (90, 30, "tx.rollback") {}
    TxRollbackOk = (90, 31, "tx.rollback-ok") {}
}
