//! AMQP field tables as JSON and back, as RabbitMQ's management plugin
//! and definitions files write them: integers become signed 64-bit
//! (`l`), other numbers doubles, strings long strings, lists arrays,
//! objects tables, null void.

use bytes::Bytes;
use serde_json::{Map, Number, Value};
use warren_protocol::{FieldTable, FieldValue, ShortStr};

/// A field table as a JSON object.
pub(crate) fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table.iter().map(|(k, v)| (k.to_string(), value_to_json(v))).collect()
}

fn value_to_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I8(n) => (*n).into(),
        FieldValue::U8(n) => (*n).into(),
        FieldValue::I16(n) => (*n).into(),
        FieldValue::U16(n) => (*n).into(),
        FieldValue::I32(n) => (*n).into(),
        FieldValue::U32(n) => (*n).into(),
        FieldValue::I64(n) => (*n).into(),
        FieldValue::U64(n) => (*n).into(),
        FieldValue::Timestamp(n) => (*n).into(),
        FieldValue::F32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        FieldValue::F64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        FieldValue::Decimal(scale, unscaled) => {
            Number::from_f64(f64::from(*unscaled) / 10f64.powi(i32::from(*scale))).map_or(Value::Null, Value::Number)
        }
        FieldValue::LongStr(b) | FieldValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        FieldValue::Array(items) => Value::Array(items.iter().map(value_to_json).collect()),
        FieldValue::Table(t) => Value::Object(table_to_json(t)),
        FieldValue::Void => Value::Null,
    }
}

/// A JSON object as a field table; keys longer than a short string are
/// refused.
pub(crate) fn json_to_table(object: &Map<String, Value>) -> Result<FieldTable, String> {
    let mut table = FieldTable::new();
    for (key, value) in object {
        if key.len() > 255 {
            return Err(format!("argument name too long: {key}"));
        }
        table.insert(ShortStr::from(key.as_str()), json_to_value(value)?);
    }
    Ok(table)
}

fn json_to_value(value: &Value) -> Result<FieldValue, String> {
    Ok(match value {
        Value::Null => FieldValue::Void,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => FieldValue::I64(i),
            (None, Some(f)) => FieldValue::F64(f),
            (None, None) => return Err(format!("number out of range: {n}")),
        },
        Value::String(s) => FieldValue::LongStr(Bytes::copy_from_slice(s.as_bytes())),
        Value::Array(items) => FieldValue::Array(items.iter().map(json_to_value).collect::<Result<_, _>>()?),
        Value::Object(map) => FieldValue::Table(json_to_table(map)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_through_json() {
        let json: Value = serde_json::json!({
            "x-max-length": 10, "x-queue-type": "quorum", "flag": true,
            "ratio": 0.5, "list": [1, "a"], "nested": {"k": null}
        });
        let table = json_to_table(json.as_object().unwrap()).unwrap();
        assert_eq!(table.get("x-max-length"), Some(&FieldValue::I64(10)));
        assert_eq!(table.get("x-queue-type").and_then(|v| v.as_str()), Some("quorum"));
        assert_eq!(Value::Object(table_to_json(&table)), json);
    }
}
