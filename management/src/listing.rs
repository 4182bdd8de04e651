//! What every list endpoint takes, as RabbitMQ's: `name` (a substring,
//! or a regular expression with `use_regex=true`), `sort` (a field, dotted
//! for nested ones) and `sort_reverse`, `columns` (the fields to keep),
//! and `page`/`page_size`, which turn the answer into a page object. One
//! object's endpoint takes `columns` too.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 500;

/// The query string, as given.
pub(crate) type Query = HashMap<String, String>;

fn field<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |v, key| v.get(key))
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// The fields `columns` asks for, if it does.
fn columns(query: &Query) -> Option<Vec<&str>> {
    let columns = query.get("columns").filter(|c| !c.is_empty())?;
    Some(columns.split(',').map(str::trim).collect())
}

/// One object's answer, with only the fields `columns` asks for.
pub(crate) fn one(item: Value, query: &Query) -> Value {
    match columns(query) {
        Some(columns) => project(&item, &columns),
        None => item,
    }
}

/// Keeps only the named fields (dotted paths keep nested ones).
fn project(item: &Value, columns: &[&str]) -> Value {
    let mut out = Map::new();
    for column in columns {
        let Some(value) = field(item, column) else {
            continue;
        };
        let mut parts = column.split('.').peekable();
        let mut target = &mut out;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                target.insert(part.to_string(), value.clone());
                break;
            }
            let entry = target
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else {
                break;
            };
            target = next;
        }
    }
    Value::Object(out)
}

fn number(query: &Query, key: &str) -> ApiResult<Option<usize>> {
    query
        .get(key)
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("{key} must be a positive integer")))
        })
        .transpose()
}

/// Applies the query to a list of items.
pub(crate) fn respond(mut items: Vec<Value>, query: &Query) -> ApiResult<Value> {
    let total = items.len();
    if let Some(name) = query.get("name").filter(|n| !n.is_empty()) {
        let use_regex = query.get("use_regex").is_some_and(|v| v == "true");
        if use_regex {
            let regex = regex::Regex::new(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
            items.retain(|i| {
                field(i, "name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| regex.is_match(n))
            });
        } else {
            items.retain(|i| {
                field(i, "name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.contains(name.as_str()))
            });
        }
    }
    if let Some(sort) = query.get("sort").filter(|s| !s.is_empty()) {
        items.sort_by(|a, b| compare(field(a, sort), field(b, sort)));
    }
    if query.get("sort_reverse").is_some_and(|v| v == "true") {
        items.reverse();
    }
    if let Some(columns) = columns(query) {
        items = items.iter().map(|i| project(i, &columns)).collect();
    }
    let Some(page) = number(query, "page")? else {
        return Ok(Value::Array(items));
    };
    let page_size = number(query, "page_size")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if page == 0 || page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!(
            "page must be at least 1 and page_size between 1 and {MAX_PAGE_SIZE}"
        )));
    }
    let filtered = items.len();
    let page_count = filtered.div_ceil(page_size).max(1);
    if page > page_count {
        return Err(ApiError::bad_request(format!(
            "page {page} is beyond the last page ({page_count})"
        )));
    }
    let page_items: Vec<Value> = items.into_iter().skip((page - 1) * page_size).take(page_size).collect();
    Ok(json!({
        "filtered_count": filtered,
        "item_count": page_items.len(),
        "items": page_items,
        "page": page,
        "page_count": page_count,
        "page_size": page_size,
        "total_count": total,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn filters_sorts_pages_and_projects() {
        let items: Vec<Value> = (1..=7)
            .map(|i| json!({"name": format!("q{i}"), "messages": 10 - i, "x": {"y": i}}))
            .collect();
        let out = respond(items.clone(), &query(&[("sort", "messages")])).unwrap();
        assert_eq!(out[0]["name"], "q7");
        let out = respond(items.clone(), &query(&[("page", "2"), ("page_size", "3")])).unwrap();
        assert_eq!(out["page_count"], 3);
        assert_eq!(out["items"][0]["name"], "q4");
        let out = respond(items.clone(), &query(&[("name", "^q[12]$"), ("use_regex", "true")])).unwrap();
        assert_eq!(out.as_array().unwrap().len(), 2);
        let out = respond(items.clone(), &query(&[("columns", "name,x.y")])).unwrap();
        assert_eq!(out[0], json!({"name": "q1", "x": {"y": 1}}));
        assert!(respond(items, &query(&[("page", "9")])).is_err());
    }
}
