//! Proptest strategies for the wire types (feature `arbitrary`), used by the
//! round-trip tests and available to fuzzers.

use bytes::Bytes;
use proptest::prelude::*;

use crate::field_table::{FieldTable, FieldValue};
use crate::properties::BasicProperties;
use crate::types::ShortStr;

/// A type with a strategy covering its wire values.
pub trait Arbitrary: Sized {
    fn strategy() -> BoxedStrategy<Self>;
}

macro_rules! any_of {
    ($($t:ty),*) => {$(
        impl Arbitrary for $t {
            fn strategy() -> BoxedStrategy<Self> {
                any::<$t>().boxed()
            }
        }
    )*};
}
any_of!(u8, u16, u32, u64, bool);

impl Arbitrary for ShortStr {
    fn strategy() -> BoxedStrategy<Self> {
        "[a-zA-Z0-9._# *-]{0,40}|\\PC{0,20}"
            .prop_map(|s: String| ShortStr::from(s))
            .boxed()
    }
}

impl Arbitrary for Bytes {
    fn strategy() -> BoxedStrategy<Self> {
        proptest::collection::vec(any::<u8>(), 0..64)
            .prop_map(Bytes::from)
            .boxed()
    }
}

fn scalar() -> BoxedStrategy<FieldValue> {
    prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<u64>().prop_map(FieldValue::U64),
        // Finite floats: NaN is never equal to itself.
        (-1e30f32..1e30).prop_map(FieldValue::F32),
        (-1e300f64..1e300).prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>()).prop_map(|(s, v)| FieldValue::Decimal(s, v)),
        Bytes::strategy().prop_map(FieldValue::LongStr),
        Bytes::strategy().prop_map(FieldValue::ByteArray),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ]
    .boxed()
}

/// Any field value, tables and arrays nested a few levels deep.
pub fn field_value() -> BoxedStrategy<FieldValue> {
    scalar()
        .prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(FieldValue::Array),
                proptest::collection::vec((ShortStr::strategy(), inner), 0..6)
                    .prop_map(|entries| FieldValue::Table(FieldTable(entries))),
            ]
        })
        .boxed()
}

/// Tables as any encoder writes them canonically: unique keys in sorted
/// order (amq-protocol keeps tables in a BTreeMap), and no `L` values
/// (amq-protocol reads `L` as signed and writes it back as `l`). Used for
/// method arguments, so method encodings can be compared byte for byte.
impl Arbitrary for FieldTable {
    fn strategy() -> BoxedStrategy<Self> {
        proptest::collection::btree_map("[a-z-]{1,12}", field_value(), 0..8)
            .prop_map(|entries| {
                FieldTable(
                    entries
                        .into_iter()
                        .filter(|(_, v)| !contains_u64(v))
                        .map(|(k, v)| (ShortStr::from(k), canonical(v)))
                        .collect(),
                )
            })
            .boxed()
    }
}

/// Any table: duplicate-free but in any order, every value type included.
pub fn any_table() -> BoxedStrategy<FieldTable> {
    proptest::collection::vec((ShortStr::strategy(), field_value()), 0..8)
        .prop_map(FieldTable)
        .boxed()
}

fn contains_u64(value: &FieldValue) -> bool {
    match value {
        FieldValue::U64(_) => true,
        FieldValue::Array(values) => values.iter().any(contains_u64),
        FieldValue::Table(t) => t.iter().any(|(_, v)| contains_u64(v)),
        _ => false,
    }
}

/// Sorts and de-duplicates the keys of nested tables.
fn canonical(value: FieldValue) -> FieldValue {
    match value {
        FieldValue::Array(values) => FieldValue::Array(values.into_iter().map(canonical).collect()),
        FieldValue::Table(t) => {
            let sorted: std::collections::BTreeMap<ShortStr, FieldValue> =
                t.0.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            FieldValue::Table(FieldTable(sorted.into_iter().collect()))
        }
        other => other,
    }
}

impl Arbitrary for BasicProperties {
    fn strategy() -> BoxedStrategy<Self> {
        let short = || proptest::option::of(ShortStr::strategy());
        (
            (
                short(),
                short(),
                proptest::option::of(FieldTable::strategy()),
                any::<Option<u8>>(),
                any::<Option<u8>>(),
            ),
            (short(), short(), short(), short(), any::<Option<u64>>()),
            (short(), short(), short(), short()),
        )
            .prop_map(
                |((ct, ce, headers, dm, pr), (corr, reply, exp, mid, ts), (kind, uid, app, cluster))| BasicProperties {
                    content_type: ct,
                    content_encoding: ce,
                    headers,
                    delivery_mode: dm,
                    priority: pr,
                    correlation_id: corr,
                    reply_to: reply,
                    expiration: exp,
                    message_id: mid,
                    timestamp: ts,
                    kind,
                    user_id: uid,
                    app_id: app,
                    cluster_id: cluster,
                },
            )
            .boxed()
    }
}
