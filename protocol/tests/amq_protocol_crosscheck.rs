//! A cross-check against the amq-protocol crate (the codec lapin uses).
//!
//! Values, not only bytes: every method, content header and field table is
//! mapped field by field to amq-protocol's types, and
//!
//! - what this codec encodes, amq-protocol parses to exactly the mapped value;
//! - what amq-protocol generates from the mapped value, this codec decodes to
//!   exactly the original value;
//! - and, where both encodings are canonical, the bytes are the same.
//!
//! Differences found, asserted below rather than hidden:
//!
//! - amq-protocol does not keep reserved or deprecated arguments (tickets,
//!   connection.open's capabilities and insist, connection.open-ok's
//!   known-hosts, channel.open's out-of-band, channel.open-ok's channel-id,
//!   basic.get-empty's cluster-id) nor basic.qos's prefetch-size (which
//!   RabbitMQ does not implement either); it writes them as zero/empty.
//! - amq-protocol keeps field tables in a `BTreeMap`: it sorts keys and a
//!   repeated key keeps its last value. We keep the sender's order and every
//!   entry.
//! - Field value type letters: both follow RabbitMQ's errata table
//!   (`t b B s u I i l f d D S A T F V x`), with two deviations on the
//!   amq-protocol side: it reads `L` as a signed 64-bit integer and writes
//!   it back as `l` (RabbitMQ's parser also reads `L` as signed; we read it
//!   as unsigned `FieldValue::U64` and write `L`), and it reads the spec's
//!   `U` as a signed 16-bit integer (RabbitMQ and we reject `U`). Its
//!   `ShortString` value has no letter (it writes `_`, which RabbitMQ and we
//!   reject); nothing in RabbitMQ's table corresponds to it.
//! - amq-protocol knows the `access` class (30) that 0-9-1 deprecated; we
//!   answer `access.request` with 503 COMMAND_INVALID.

use amq_protocol::frame::{gen_frame, parse_frame, AMQPContentHeader, AMQPFrame, WriteContext};
use amq_protocol::protocol::{
    access, basic, channel, confirm, connection, exchange, queue, tx, AMQPClass, BasicProperties as AmqProperties,
};
use amq_protocol::types::{
    generation::gen_field_table, parsing::parse_field_table, AMQPValue, ByteArray, DecimalValue, FieldArray,
    FieldTable as AmqTable, LongString, ShortString,
};
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use warren_protocol::arbitrary::{any_table, Arbitrary};
use warren_protocol::*;

// ---------------------------------------------------------------------------
// Running both codecs.

fn amq_parse(bytes: &[u8]) -> AMQPFrame {
    let (rest, frame) = parse_frame(bytes).expect("amq-protocol parses our frame");
    assert!(rest.is_empty(), "amq-protocol used the whole frame");
    frame
}

fn amq_encode(frame: &AMQPFrame) -> Vec<u8> {
    gen_frame(frame)(WriteContext::from(Vec::new()))
        .expect("amq-protocol encodes")
        .write
}

fn ours_decode(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = decode_frame(&mut buf, 0)
        .expect("we decode amq-protocol's frame")
        .expect("a whole frame");
    assert!(buf.is_empty(), "we used the whole frame");
    frame
}

fn ours_encode(frame: &Frame) -> Vec<u8> {
    let mut out = WriteBuffer::new();
    encode_frame(&mut out, frame);
    out.to_bytes().to_vec()
}

// ---------------------------------------------------------------------------
// Field values and tables.

fn short(s: &ShortStr) -> ShortString {
    ShortString::from(s.as_str())
}

fn long(b: &Bytes) -> LongString {
    LongString::from(b.to_vec())
}

fn from_short(s: &ShortString) -> ShortStr {
    ShortStr::from(s.as_str())
}

fn from_long(s: &LongString) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn value_to_amq(v: &FieldValue) -> AMQPValue {
    match v {
        FieldValue::Bool(b) => AMQPValue::Boolean(*b),
        FieldValue::I8(n) => AMQPValue::ShortShortInt(*n),
        FieldValue::U8(n) => AMQPValue::ShortShortUInt(*n),
        FieldValue::I16(n) => AMQPValue::ShortInt(*n),
        FieldValue::U16(n) => AMQPValue::ShortUInt(*n),
        FieldValue::I32(n) => AMQPValue::LongInt(*n),
        FieldValue::U32(n) => AMQPValue::LongUInt(*n),
        FieldValue::I64(n) => AMQPValue::LongLongInt(*n),
        // amq-protocol (like RabbitMQ) reads `L` as signed: same bits.
        FieldValue::U64(n) => AMQPValue::LongLongInt(*n as i64),
        FieldValue::F32(f) => AMQPValue::Float(*f),
        FieldValue::F64(f) => AMQPValue::Double(*f),
        FieldValue::Decimal(scale, value) => AMQPValue::DecimalValue(DecimalValue {
            scale: *scale,
            value: *value,
        }),
        FieldValue::LongStr(b) => AMQPValue::LongString(long(b)),
        FieldValue::ByteArray(b) => AMQPValue::ByteArray(ByteArray::from(b.to_vec())),
        FieldValue::Array(values) => {
            AMQPValue::FieldArray(FieldArray::from(values.iter().map(value_to_amq).collect::<Vec<_>>()))
        }
        FieldValue::Timestamp(t) => AMQPValue::Timestamp(*t),
        FieldValue::Table(t) => AMQPValue::FieldTable(table_to_amq(t)),
        FieldValue::Void => AMQPValue::Void,
    }
}

fn table_to_amq(t: &FieldTable) -> AmqTable {
    let mut table = AmqTable::default();
    for (k, v) in t.iter() {
        // A repeated key keeps its last value, as amq-protocol's parser does.
        table.insert(short(k), value_to_amq(v));
    }
    table
}

fn value_from_amq(v: &AMQPValue) -> FieldValue {
    match v {
        AMQPValue::Boolean(b) => FieldValue::Bool(*b),
        AMQPValue::ShortShortInt(n) => FieldValue::I8(*n),
        AMQPValue::ShortShortUInt(n) => FieldValue::U8(*n),
        AMQPValue::ShortInt(n) => FieldValue::I16(*n),
        AMQPValue::ShortUInt(n) => FieldValue::U16(*n),
        AMQPValue::LongInt(n) => FieldValue::I32(*n),
        AMQPValue::LongUInt(n) => FieldValue::U32(*n),
        AMQPValue::LongLongInt(n) => FieldValue::I64(*n),
        AMQPValue::Float(f) => FieldValue::F32(*f),
        AMQPValue::Double(f) => FieldValue::F64(*f),
        AMQPValue::DecimalValue(d) => FieldValue::Decimal(d.scale, d.value),
        AMQPValue::LongString(s) => FieldValue::LongStr(from_long(s)),
        AMQPValue::ByteArray(b) => FieldValue::ByteArray(Bytes::copy_from_slice(b.as_slice())),
        AMQPValue::FieldArray(a) => FieldValue::Array(a.as_slice().iter().map(value_from_amq).collect()),
        AMQPValue::Timestamp(t) => FieldValue::Timestamp(*t),
        AMQPValue::FieldTable(t) => FieldValue::Table(table_from_amq(t)),
        AMQPValue::Void => FieldValue::Void,
        AMQPValue::ShortString(_) => panic!("amq-protocol's ShortString value has no wire type"),
    }
}

fn table_from_amq(t: &AmqTable) -> FieldTable {
    t.inner()
        .iter()
        .map(|(k, v)| (from_short(k), value_from_amq(v)))
        .collect()
}

/// What a table becomes after a trip through amq-protocol: keys sorted, a
/// repeated key keeping its last value, `L` values read as signed `l`.
fn via_amq(t: &FieldTable) -> FieldTable {
    table_from_amq(&table_to_amq(t))
}

// ---------------------------------------------------------------------------
// Methods, field by field.

fn method_to_amq(m: &Method) -> AMQPClass {
    use Method as M;
    match m {
        M::ConnectionStart(m) => AMQPClass::Connection(connection::AMQPMethod::Start(connection::Start {
            version_major: m.version_major,
            version_minor: m.version_minor,
            server_properties: table_to_amq(&m.server_properties),
            mechanisms: long(&m.mechanisms),
            locales: long(&m.locales),
        })),
        M::ConnectionStartOk(m) => AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
            client_properties: table_to_amq(&m.client_properties),
            mechanism: short(&m.mechanism),
            response: long(&m.response),
            locale: short(&m.locale),
        })),
        M::ConnectionSecure(m) => AMQPClass::Connection(connection::AMQPMethod::Secure(connection::Secure {
            challenge: long(&m.challenge),
        })),
        M::ConnectionSecureOk(m) => AMQPClass::Connection(connection::AMQPMethod::SecureOk(connection::SecureOk {
            response: long(&m.response),
        })),
        M::ConnectionTune(m) => AMQPClass::Connection(connection::AMQPMethod::Tune(connection::Tune {
            channel_max: m.channel_max,
            frame_max: m.frame_max,
            heartbeat: m.heartbeat,
        })),
        M::ConnectionTuneOk(m) => AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
            channel_max: m.channel_max,
            frame_max: m.frame_max,
            heartbeat: m.heartbeat,
        })),
        M::ConnectionOpen(m) => AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
            virtual_host: short(&m.virtual_host),
        })),
        M::ConnectionOpenOk(_) => AMQPClass::Connection(connection::AMQPMethod::OpenOk(connection::OpenOk {})),
        M::ConnectionClose(m) => AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: m.reply_code,
            reply_text: short(&m.reply_text),
            class_id: m.class_id,
            method_id: m.method_id,
        })),
        M::ConnectionCloseOk(_) => AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
        M::ConnectionBlocked(m) => AMQPClass::Connection(connection::AMQPMethod::Blocked(connection::Blocked {
            reason: short(&m.reason),
        })),
        M::ConnectionUnblocked(_) => AMQPClass::Connection(connection::AMQPMethod::Unblocked(connection::Unblocked {})),
        M::ConnectionUpdateSecret(m) => {
            AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(connection::UpdateSecret {
                new_secret: long(&m.new_secret),
                reason: short(&m.reason),
            }))
        }
        M::ConnectionUpdateSecretOk(_) => {
            AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(connection::UpdateSecretOk {}))
        }
        M::ChannelOpen(_) => AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        M::ChannelOpenOk(_) => AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {})),
        M::ChannelFlow(m) => AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: m.active })),
        M::ChannelFlowOk(m) => AMQPClass::Channel(channel::AMQPMethod::FlowOk(channel::FlowOk { active: m.active })),
        M::ChannelClose(m) => AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
            reply_code: m.reply_code,
            reply_text: short(&m.reply_text),
            class_id: m.class_id,
            method_id: m.method_id,
        })),
        M::ChannelCloseOk(_) => AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
        M::ExchangeDeclare(m) => AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
            exchange: short(&m.exchange),
            kind: short(&m.kind),
            passive: m.passive,
            durable: m.durable,
            auto_delete: m.auto_delete,
            internal: m.internal,
            nowait: m.nowait,
            arguments: table_to_amq(&m.arguments),
        })),
        M::ExchangeDeclareOk(_) => AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {})),
        M::ExchangeDelete(m) => AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
            exchange: short(&m.exchange),
            if_unused: m.if_unused,
            nowait: m.nowait,
        })),
        M::ExchangeDeleteOk(_) => AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {})),
        M::ExchangeBind(m) => AMQPClass::Exchange(exchange::AMQPMethod::Bind(exchange::Bind {
            destination: short(&m.destination),
            source: short(&m.source),
            routing_key: short(&m.routing_key),
            nowait: m.nowait,
            arguments: table_to_amq(&m.arguments),
        })),
        M::ExchangeBindOk(_) => AMQPClass::Exchange(exchange::AMQPMethod::BindOk(exchange::BindOk {})),
        M::ExchangeUnbind(m) => AMQPClass::Exchange(exchange::AMQPMethod::Unbind(exchange::Unbind {
            destination: short(&m.destination),
            source: short(&m.source),
            routing_key: short(&m.routing_key),
            nowait: m.nowait,
            arguments: table_to_amq(&m.arguments),
        })),
        M::ExchangeUnbindOk(_) => AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {})),
        M::QueueDeclare(m) => AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
            queue: short(&m.queue),
            passive: m.passive,
            durable: m.durable,
            exclusive: m.exclusive,
            auto_delete: m.auto_delete,
            nowait: m.nowait,
            arguments: table_to_amq(&m.arguments),
        })),
        M::QueueDeclareOk(m) => AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
            queue: short(&m.queue),
            message_count: m.message_count,
            consumer_count: m.consumer_count,
        })),
        M::QueueBind(m) => AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
            queue: short(&m.queue),
            exchange: short(&m.exchange),
            routing_key: short(&m.routing_key),
            nowait: m.nowait,
            arguments: table_to_amq(&m.arguments),
        })),
        M::QueueBindOk(_) => AMQPClass::Queue(queue::AMQPMethod::BindOk(queue::BindOk {})),
        M::QueuePurge(m) => AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
            queue: short(&m.queue),
            nowait: m.nowait,
        })),
        M::QueuePurgeOk(m) => AMQPClass::Queue(queue::AMQPMethod::PurgeOk(queue::PurgeOk {
            message_count: m.message_count,
        })),
        M::QueueDelete(m) => AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
            queue: short(&m.queue),
            if_unused: m.if_unused,
            if_empty: m.if_empty,
            nowait: m.nowait,
        })),
        M::QueueDeleteOk(m) => AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
            message_count: m.message_count,
        })),
        M::QueueUnbind(m) => AMQPClass::Queue(queue::AMQPMethod::Unbind(queue::Unbind {
            queue: short(&m.queue),
            exchange: short(&m.exchange),
            routing_key: short(&m.routing_key),
            arguments: table_to_amq(&m.arguments),
        })),
        M::QueueUnbindOk(_) => AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {})),
        M::BasicQos(m) => AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: m.prefetch_count,
            global: m.global,
        })),
        M::BasicQosOk(_) => AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {})),
        M::BasicConsume(m) => AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: short(&m.queue),
            consumer_tag: short(&m.consumer_tag),
            no_local: m.no_local,
            no_ack: m.no_ack,
            exclusive: m.exclusive,
            nowait: m.nowait,
            arguments: table_to_amq(&m.arguments),
        })),
        M::BasicConsumeOk(m) => AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
            consumer_tag: short(&m.consumer_tag),
        })),
        M::BasicCancel(m) => AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
            consumer_tag: short(&m.consumer_tag),
            nowait: m.nowait,
        })),
        M::BasicCancelOk(m) => AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
            consumer_tag: short(&m.consumer_tag),
        })),
        M::BasicPublish(m) => AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: short(&m.exchange),
            routing_key: short(&m.routing_key),
            mandatory: m.mandatory,
            immediate: m.immediate,
        })),
        M::BasicReturn(m) => AMQPClass::Basic(basic::AMQPMethod::Return(basic::Return {
            reply_code: m.reply_code,
            reply_text: short(&m.reply_text),
            exchange: short(&m.exchange),
            routing_key: short(&m.routing_key),
        })),
        M::BasicDeliver(m) => AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
            consumer_tag: short(&m.consumer_tag),
            delivery_tag: m.delivery_tag,
            redelivered: m.redelivered,
            exchange: short(&m.exchange),
            routing_key: short(&m.routing_key),
        })),
        M::BasicGet(m) => AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
            queue: short(&m.queue),
            no_ack: m.no_ack,
        })),
        M::BasicGetOk(m) => AMQPClass::Basic(basic::AMQPMethod::GetOk(basic::GetOk {
            delivery_tag: m.delivery_tag,
            redelivered: m.redelivered,
            exchange: short(&m.exchange),
            routing_key: short(&m.routing_key),
            message_count: m.message_count,
        })),
        M::BasicGetEmpty(_) => AMQPClass::Basic(basic::AMQPMethod::GetEmpty(basic::GetEmpty {})),
        M::BasicAck(m) => AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: m.delivery_tag,
            multiple: m.multiple,
        })),
        M::BasicReject(m) => AMQPClass::Basic(basic::AMQPMethod::Reject(basic::Reject {
            delivery_tag: m.delivery_tag,
            requeue: m.requeue,
        })),
        M::BasicRecoverAsync(m) => AMQPClass::Basic(basic::AMQPMethod::RecoverAsync(basic::RecoverAsync {
            requeue: m.requeue,
        })),
        M::BasicRecover(m) => AMQPClass::Basic(basic::AMQPMethod::Recover(basic::Recover { requeue: m.requeue })),
        M::BasicRecoverOk(_) => AMQPClass::Basic(basic::AMQPMethod::RecoverOk(basic::RecoverOk {})),
        M::BasicNack(m) => AMQPClass::Basic(basic::AMQPMethod::Nack(basic::Nack {
            delivery_tag: m.delivery_tag,
            multiple: m.multiple,
            requeue: m.requeue,
        })),
        M::ConfirmSelect(m) => AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait: m.nowait })),
        M::ConfirmSelectOk(_) => AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(confirm::SelectOk {})),
        M::TxSelect(_) => AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {})),
        M::TxSelectOk(_) => AMQPClass::Tx(tx::AMQPMethod::SelectOk(tx::SelectOk {})),
        M::TxCommit(_) => AMQPClass::Tx(tx::AMQPMethod::Commit(tx::Commit {})),
        M::TxCommitOk(_) => AMQPClass::Tx(tx::AMQPMethod::CommitOk(tx::CommitOk {})),
        M::TxRollback(_) => AMQPClass::Tx(tx::AMQPMethod::Rollback(tx::Rollback {})),
        M::TxRollbackOk(_) => AMQPClass::Tx(tx::AMQPMethod::RollbackOk(tx::RollbackOk {})),
    }
}

/// What a method becomes after a trip through amq-protocol: the arguments
/// it does not keep reset, and its tables as amq-protocol rewrites them.
fn via_amq_method(method: &Method) -> Method {
    use Method as M;
    let mut m = method.clone();
    match &mut m {
        M::ConnectionStart(m) => m.server_properties = via_amq(&m.server_properties),
        M::ConnectionStartOk(m) => m.client_properties = via_amq(&m.client_properties),
        M::ConnectionOpen(m) => {
            m.capabilities = ShortStr::default();
            m.insist = false;
        }
        M::ConnectionOpenOk(m) => m.known_hosts = ShortStr::default(),
        M::ChannelOpen(m) => m.out_of_band = ShortStr::default(),
        M::ChannelOpenOk(m) => m.channel_id = Bytes::new(),
        M::ExchangeDeclare(m) => {
            m.ticket = 0;
            m.arguments = via_amq(&m.arguments);
        }
        M::ExchangeDelete(m) => m.ticket = 0,
        M::ExchangeBind(m) => {
            m.ticket = 0;
            m.arguments = via_amq(&m.arguments);
        }
        M::ExchangeUnbind(m) => {
            m.ticket = 0;
            m.arguments = via_amq(&m.arguments);
        }
        M::QueueDeclare(m) => {
            m.ticket = 0;
            m.arguments = via_amq(&m.arguments);
        }
        M::QueueBind(m) => {
            m.ticket = 0;
            m.arguments = via_amq(&m.arguments);
        }
        M::QueuePurge(m) => m.ticket = 0,
        M::QueueDelete(m) => m.ticket = 0,
        M::QueueUnbind(m) => {
            m.ticket = 0;
            m.arguments = via_amq(&m.arguments);
        }
        M::BasicQos(m) => m.prefetch_size = 0,
        M::BasicConsume(m) => {
            m.ticket = 0;
            m.arguments = via_amq(&m.arguments);
        }
        M::BasicPublish(m) => m.ticket = 0,
        M::BasicGet(m) => m.ticket = 0,
        M::BasicGetEmpty(m) => m.cluster_id = ShortStr::default(),
        _ => {}
    }
    m
}

// ---------------------------------------------------------------------------
// Properties, field by field.

fn properties_to_amq(p: &BasicProperties) -> AmqProperties {
    let mut a = AmqProperties::default();
    if let Some(v) = &p.content_type {
        a = a.with_content_type(short(v));
    }
    if let Some(v) = &p.content_encoding {
        a = a.with_content_encoding(short(v));
    }
    if let Some(v) = &p.headers {
        a = a.with_headers(table_to_amq(v));
    }
    if let Some(v) = p.delivery_mode {
        a = a.with_delivery_mode(v);
    }
    if let Some(v) = p.priority {
        a = a.with_priority(v);
    }
    if let Some(v) = &p.correlation_id {
        a = a.with_correlation_id(short(v));
    }
    if let Some(v) = &p.reply_to {
        a = a.with_reply_to(short(v));
    }
    if let Some(v) = &p.expiration {
        a = a.with_expiration(short(v));
    }
    if let Some(v) = &p.message_id {
        a = a.with_message_id(short(v));
    }
    if let Some(v) = p.timestamp {
        a = a.with_timestamp(v);
    }
    if let Some(v) = &p.kind {
        a = a.with_type(short(v));
    }
    if let Some(v) = &p.user_id {
        a = a.with_user_id(short(v));
    }
    if let Some(v) = &p.app_id {
        a = a.with_app_id(short(v));
    }
    if let Some(v) = &p.cluster_id {
        a = a.with_cluster_id(short(v));
    }
    a
}

fn via_amq_properties(p: &BasicProperties) -> BasicProperties {
    BasicProperties {
        headers: p.headers.as_ref().map(via_amq),
        ..p.clone()
    }
}

// ---------------------------------------------------------------------------
// The checks.

/// Ours -> amq-protocol: our bytes parse to the mapped value.
/// amq-protocol -> ours: its bytes for the mapped value decode to `expected`.
fn check_method(channel: u16, method: &Method) {
    let mut buf = BytesMut::new();
    encode_method(&mut buf, channel, method);
    let theirs = AMQPFrame::Method(channel, method_to_amq(method));
    assert_eq!(amq_parse(&buf), theirs, "amq-protocol read our {}", method.name());

    let expected = via_amq_method(method);
    let their_bytes = amq_encode(&theirs);
    assert_eq!(
        ours_decode(&their_bytes),
        Frame::Method(channel, expected.clone()),
        "we read amq-protocol's {}",
        method.name()
    );
    // Once the value is one both sides can hold, the bytes agree too.
    let mut canonical = BytesMut::new();
    encode_method(&mut canonical, channel, &expected);
    assert_eq!(&canonical[..], &their_bytes[..], "{} bytes", method.name());
}

fn check_header(channel: u16, size: u64, properties: &BasicProperties) {
    let mut buf = BytesMut::new();
    encode_header(&mut buf, channel, &ContentHeader::new(60, size, properties.clone()));
    let theirs = AMQPFrame::Header(
        channel,
        AMQPContentHeader {
            class_id: 60,
            body_size: size,
            properties: properties_to_amq(properties),
        },
    );
    assert_eq!(amq_parse(&buf), theirs, "amq-protocol read our header");

    let their_bytes = amq_encode(&theirs);
    let Frame::Header(c, header) = ours_decode(&their_bytes) else {
        panic!("expected a header frame")
    };
    assert_eq!((c, header.class_id, header.body_size), (channel, 60, size));
    let expected = via_amq_properties(properties);
    assert_eq!(header.properties(), &expected, "we read amq-protocol's header");
    let mut canonical = BytesMut::new();
    encode_header(&mut canonical, channel, &ContentHeader::new(60, size, expected));
    assert_eq!(&canonical[..], &their_bytes[..], "header bytes");
}

#[test]
fn every_method_with_default_arguments() {
    for method in Method::all_defaults() {
        check_method(1, &method);
    }
}

#[test]
fn every_method_with_every_argument_set() {
    // Non-default values in every field, reserved ones included.
    let table: FieldTable = [
        (ShortStr::from("x-max-length"), FieldValue::I64(10)),
        (ShortStr::from("x-queue-type"), FieldValue::from("quorum")),
    ]
    .into_iter()
    .collect();
    let s = |v: &str| ShortStr::from(v);
    let b = |v: &str| Bytes::copy_from_slice(v.as_bytes());
    let methods: Vec<Method> = vec![
        ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: table.clone(),
            mechanisms: b("PLAIN AMQPLAIN"),
            locales: b("en_US"),
        }
        .into(),
        ConnectionStartOk {
            client_properties: table.clone(),
            mechanism: s("PLAIN"),
            response: b("\0guest\0guest"),
            locale: s("en_US"),
        }
        .into(),
        ConnectionSecure { challenge: b("c") }.into(),
        ConnectionSecureOk { response: b("r") }.into(),
        ConnectionTune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        }
        .into(),
        ConnectionTuneOk {
            channel_max: 1,
            frame_max: 4096,
            heartbeat: 5,
        }
        .into(),
        ConnectionOpen {
            virtual_host: s("/"),
            capabilities: s("c"),
            insist: true,
        }
        .into(),
        ConnectionOpenOk { known_hosts: s("h") }.into(),
        ConnectionClose {
            reply_code: 320,
            reply_text: s("CONNECTION_FORCED"),
            class_id: 50,
            method_id: 10,
        }
        .into(),
        ConnectionBlocked {
            reason: s("low memory"),
        }
        .into(),
        ConnectionUpdateSecret {
            new_secret: b("token"),
            reason: s("refresh"),
        }
        .into(),
        ChannelOpen { out_of_band: s("o") }.into(),
        ChannelOpenOk { channel_id: b("id") }.into(),
        ChannelFlow { active: true }.into(),
        ChannelFlowOk { active: true }.into(),
        ChannelClose {
            reply_code: 404,
            reply_text: s("NOT_FOUND"),
            class_id: 60,
            method_id: 20,
        }
        .into(),
        ExchangeDeclare {
            ticket: 1,
            exchange: s("e"),
            kind: s("topic"),
            passive: true,
            durable: true,
            auto_delete: true,
            internal: true,
            nowait: true,
            arguments: table.clone(),
        }
        .into(),
        ExchangeDelete {
            ticket: 1,
            exchange: s("e"),
            if_unused: true,
            nowait: true,
        }
        .into(),
        ExchangeBind {
            ticket: 1,
            destination: s("d"),
            source: s("s"),
            routing_key: s("k"),
            nowait: true,
            arguments: table.clone(),
        }
        .into(),
        ExchangeUnbind {
            ticket: 1,
            destination: s("d"),
            source: s("s"),
            routing_key: s("k"),
            nowait: true,
            arguments: table.clone(),
        }
        .into(),
        QueueDeclare {
            ticket: 1,
            queue: s("q"),
            passive: true,
            durable: true,
            exclusive: true,
            auto_delete: true,
            nowait: true,
            arguments: table.clone(),
        }
        .into(),
        QueueDeclareOk {
            queue: s("q"),
            message_count: 7,
            consumer_count: 8,
        }
        .into(),
        QueueBind {
            ticket: 1,
            queue: s("q"),
            exchange: s("e"),
            routing_key: s("k"),
            nowait: true,
            arguments: table.clone(),
        }
        .into(),
        QueuePurge {
            ticket: 1,
            queue: s("q"),
            nowait: true,
        }
        .into(),
        QueuePurgeOk { message_count: 9 }.into(),
        QueueDelete {
            ticket: 1,
            queue: s("q"),
            if_unused: true,
            if_empty: true,
            nowait: true,
        }
        .into(),
        QueueDeleteOk { message_count: 10 }.into(),
        QueueUnbind {
            ticket: 1,
            queue: s("q"),
            exchange: s("e"),
            routing_key: s("k"),
            arguments: table.clone(),
        }
        .into(),
        BasicQos {
            prefetch_size: 1,
            prefetch_count: 100,
            global: true,
        }
        .into(),
        BasicConsume {
            ticket: 1,
            queue: s("q"),
            consumer_tag: s("t"),
            no_local: true,
            no_ack: true,
            exclusive: true,
            nowait: true,
            arguments: table.clone(),
        }
        .into(),
        BasicConsumeOk { consumer_tag: s("t") }.into(),
        BasicCancel {
            consumer_tag: s("t"),
            nowait: true,
        }
        .into(),
        BasicCancelOk { consumer_tag: s("t") }.into(),
        BasicPublish {
            ticket: 1,
            exchange: s("e"),
            routing_key: s("k"),
            mandatory: true,
            immediate: true,
        }
        .into(),
        BasicReturn {
            reply_code: 312,
            reply_text: s("NO_ROUTE"),
            exchange: s("e"),
            routing_key: s("k"),
        }
        .into(),
        BasicDeliver {
            consumer_tag: s("t"),
            delivery_tag: u64::MAX,
            redelivered: true,
            exchange: s("e"),
            routing_key: s("k"),
        }
        .into(),
        BasicGet {
            ticket: 1,
            queue: s("q"),
            no_ack: true,
        }
        .into(),
        BasicGetOk {
            delivery_tag: 1 << 40,
            redelivered: true,
            exchange: s("e"),
            routing_key: s("k"),
            message_count: 3,
        }
        .into(),
        BasicGetEmpty { cluster_id: s("c") }.into(),
        BasicAck {
            delivery_tag: 5,
            multiple: true,
        }
        .into(),
        BasicReject {
            delivery_tag: 6,
            requeue: true,
        }
        .into(),
        BasicRecoverAsync { requeue: true }.into(),
        BasicRecover { requeue: true }.into(),
        BasicNack {
            delivery_tag: 7,
            multiple: true,
            requeue: true,
        }
        .into(),
        ConfirmSelect { nowait: true }.into(),
    ];
    for method in &methods {
        check_method(9, method);
    }
    // Every method with arguments is in the list above.
    let with_args = Method::all_defaults()
        .into_iter()
        .filter(|m| {
            let mut buf = BytesMut::new();
            m.encode(&mut buf);
            buf.len() > 4
        })
        .count();
    assert_eq!(methods.len(), with_args);
}

#[test]
fn content_header_with_all_14_properties() {
    let mut headers = FieldTable::new();
    headers.insert("x-death", FieldValue::Array(vec![FieldValue::Table(FieldTable::new())]));
    let properties = BasicProperties {
        content_type: Some("application/json".into()),
        content_encoding: Some("gzip".into()),
        headers: Some(headers),
        delivery_mode: Some(2),
        priority: Some(9),
        correlation_id: Some("corr".into()),
        reply_to: Some("amq.rabbitmq.reply-to".into()),
        expiration: Some("60000".into()),
        message_id: Some("id-1".into()),
        timestamp: Some(1_700_000_000),
        kind: Some("order.created".into()),
        user_id: Some("guest".into()),
        app_id: Some("shop".into()),
        cluster_id: Some("c1".into()),
    };
    check_header(4, 12_345, &properties);
    check_header(4, 0, &BasicProperties::default());
}

#[test]
fn body_and_heartbeat_frames() {
    let body = Frame::Body(5, Bytes::from_static(b"hello"));
    assert_eq!(amq_parse(&ours_encode(&body)), AMQPFrame::Body(5, b"hello".to_vec()));
    assert_eq!(ours_decode(&amq_encode(&AMQPFrame::Body(5, b"hello".to_vec()))), body);
    let empty = Frame::Body(5, Bytes::new());
    assert_eq!(amq_parse(&ours_encode(&empty)), AMQPFrame::Body(5, Vec::new()));

    let mut buf = BytesMut::new();
    encode_heartbeat(&mut buf);
    assert_eq!(amq_parse(&buf), AMQPFrame::Heartbeat);
    assert_eq!(ours_decode(&amq_encode(&AMQPFrame::Heartbeat)), Frame::Heartbeat(0));
    // A heartbeat on another channel is kept as such on both sides.
    assert_eq!(
        amq_parse(&ours_encode(&Frame::Heartbeat(3))),
        AMQPFrame::InvalidHeartbeat(3)
    );
    assert_eq!(
        ours_decode(&amq_encode(&AMQPFrame::InvalidHeartbeat(3))),
        Frame::Heartbeat(3)
    );
}

#[test]
fn the_access_class_is_not_ours() {
    let request = AMQPFrame::Method(
        1,
        AMQPClass::Access(access::AMQPMethod::Request(access::Request {
            realm: "/data".into(),
            exclusive: false,
            passive: true,
            active: true,
            write: true,
            read: true,
        })),
    );
    let mut buf = BytesMut::from(&amq_encode(&request)[..]);
    let err = decode_frame(&mut buf, 0).unwrap_err();
    assert_eq!((err.code, err.class_id, err.method_id), (503, 30, 10));
}

// ---------------------------------------------------------------------------
// Field tables and their type letters.

fn amq_table_bytes(t: &AmqTable) -> Vec<u8> {
    gen_field_table(t)(WriteContext::from(Vec::new()))
        .expect("amq-protocol encodes the table")
        .write
}

fn amq_table_parse(bytes: &[u8]) -> AmqTable {
    let (rest, table) = parse_field_table(bytes).expect("amq-protocol parses our table");
    assert!(rest.is_empty());
    table
}

fn our_table_bytes(t: &FieldTable) -> Vec<u8> {
    let mut buf = BytesMut::new();
    t.encode(&mut buf);
    buf.to_vec()
}

fn our_table_parse(bytes: &[u8]) -> FieldTable {
    let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, bytes.len());
    FieldTable::decode(&Bytes::copy_from_slice(&bytes[4..]), 0).expect("we parse amq-protocol's table")
}

fn one(value: FieldValue) -> FieldTable {
    [(ShortStr::from("k"), value)].into_iter().collect()
}

#[test]
fn type_letters_of_every_value_type() {
    use FieldValue as V;
    // (our value, its letter, what amq-protocol reads, the letter it writes back)
    let cases: Vec<(FieldValue, u8, AMQPValue, u8)> = vec![
        (V::Bool(true), b't', AMQPValue::Boolean(true), b't'),
        (V::I8(-5), b'b', AMQPValue::ShortShortInt(-5), b'b'),
        (V::U8(250), b'B', AMQPValue::ShortShortUInt(250), b'B'),
        (V::I16(-300), b's', AMQPValue::ShortInt(-300), b's'),
        (V::U16(65_000), b'u', AMQPValue::ShortUInt(65_000), b'u'),
        (V::I32(-70_000), b'I', AMQPValue::LongInt(-70_000), b'I'),
        (V::U32(4_000_000_000), b'i', AMQPValue::LongUInt(4_000_000_000), b'i'),
        (V::I64(-1 << 40), b'l', AMQPValue::LongLongInt(-1 << 40), b'l'),
        // The one difference: amq-protocol (and RabbitMQ's parser) read `L`
        // as signed, and amq-protocol writes it back as `l`.
        (V::U64(u64::MAX), b'L', AMQPValue::LongLongInt(-1), b'l'),
        (V::F32(1.5), b'f', AMQPValue::Float(1.5), b'f'),
        (V::F64(-2.25), b'd', AMQPValue::Double(-2.25), b'd'),
        (
            V::Decimal(2, 31_415),
            b'D',
            AMQPValue::DecimalValue(DecimalValue {
                scale: 2,
                value: 31_415,
            }),
            b'D',
        ),
        (V::from("text"), b'S', AMQPValue::LongString("text".into()), b'S'),
        (
            V::ByteArray(Bytes::from_static(&[0, 255])),
            b'x',
            AMQPValue::ByteArray(vec![0u8, 255].into()),
            b'x',
        ),
        (
            V::Array(vec![V::I32(1)]),
            b'A',
            AMQPValue::FieldArray(vec![AMQPValue::LongInt(1)].into()),
            b'A',
        ),
        (
            V::Timestamp(1_700_000_000),
            b'T',
            AMQPValue::Timestamp(1_700_000_000),
            b'T',
        ),
        (
            V::Table(FieldTable::new()),
            b'F',
            AMQPValue::FieldTable(AmqTable::default()),
            b'F',
        ),
        (V::Void, b'V', AMQPValue::Void, b'V'),
    ];
    let letter_at = 4 + 1 + 1; // table length, key length, key "k"
    for (ours, letter, theirs, their_letter) in cases {
        let bytes = our_table_bytes(&one(ours.clone()));
        assert_eq!(bytes[letter_at], letter, "{ours:?}");
        let parsed = amq_table_parse(&bytes);
        assert_eq!(parsed.inner().get("k"), Some(&theirs), "amq-protocol read {ours:?}");
        let mut theirs_table = AmqTable::default();
        theirs_table.insert("k".into(), theirs.clone());
        let their_bytes = amq_table_bytes(&theirs_table);
        assert_eq!(their_bytes[letter_at], their_letter, "{theirs:?}");
        assert_eq!(
            our_table_parse(&their_bytes),
            one(value_from_amq(&theirs)),
            "we read {theirs:?}"
        );
    }
}

#[test]
fn letters_only_amq_protocol_accepts() {
    // `U`: the 0-9-1 spec's int16, read by amq-protocol, rejected by
    // RabbitMQ's parser and by us.
    let with_u = [0, 0, 0, 5, 1, b'k', b'U', 0xff, 0xfe];
    assert_eq!(
        amq_table_parse(&with_u).inner().get("k"),
        Some(&AMQPValue::ShortInt(-2))
    );
    assert_eq!(
        FieldTable::decode(&Bytes::copy_from_slice(&with_u[4..]), 0)
            .unwrap_err()
            .code,
        502
    );
    // amq-protocol's ShortString value is written with the letter `_`.
    let mut table = AmqTable::default();
    table.insert("k".into(), AMQPValue::ShortString("s".into()));
    let bytes = amq_table_bytes(&table);
    assert_eq!(bytes[6], b'_');
    assert_eq!(
        FieldTable::decode(&Bytes::copy_from_slice(&bytes[4..]), 0)
            .unwrap_err()
            .code,
        502
    );
}

#[test]
fn key_order_and_repeated_keys() {
    let table: FieldTable = [
        (ShortStr::from("b"), FieldValue::I32(1)),
        (ShortStr::from("a"), FieldValue::I32(2)),
        (ShortStr::from("b"), FieldValue::I32(3)),
    ]
    .into_iter()
    .collect();
    // We keep all three in order; amq-protocol sorts and keeps the last "b".
    let parsed = amq_table_parse(&our_table_bytes(&table));
    assert_eq!(
        parsed.inner().iter().collect::<Vec<_>>(),
        vec![
            (&ShortString::from("a"), &AMQPValue::LongInt(2)),
            (&ShortString::from("b"), &AMQPValue::LongInt(3)),
        ]
    );
    assert_eq!(our_table_parse(&our_table_bytes(&table)), table);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn any_method(method in Method::arbitrary(), channel in any::<u16>()) {
        check_method(channel, &method);
    }

    #[test]
    fn any_content_header(properties in BasicProperties::strategy(), size in any::<u64>(), channel in any::<u16>()) {
        check_header(channel, size, &properties);
    }

    #[test]
    fn any_headers_table(headers in any_table()) {
        // Any table as a message's headers: every value type, nested, keys
        // in any order and possibly repeated, `L` values included.
        let properties = BasicProperties { headers: Some(headers), ..Default::default() };
        check_header(1, 1, &properties);
    }

    #[test]
    fn any_field_table(table in any_table()) {
        // Ours -> amq-protocol.
        prop_assert_eq!(amq_table_parse(&our_table_bytes(&table)), table_to_amq(&table));
        // amq-protocol -> ours.
        let expected = via_amq(&table);
        let their_bytes = amq_table_bytes(&table_to_amq(&table));
        prop_assert_eq!(our_table_parse(&their_bytes), expected.clone());
        prop_assert_eq!(our_table_bytes(&expected), their_bytes);
    }

    #[test]
    fn any_body_frame(body in proptest::collection::vec(any::<u8>(), 0..2000), channel in any::<u16>()) {
        let frame = Frame::Body(channel, Bytes::from(body.clone()));
        prop_assert_eq!(amq_parse(&ours_encode(&frame)), AMQPFrame::Body(channel, body.clone()));
        prop_assert_eq!(ours_decode(&amq_encode(&AMQPFrame::Body(channel, body))), frame);
    }
}
