//! Listings as rabbitmqctl prints them: a table (tab-separated, a header
//! row of column names), JSON (an array of objects) or CSV.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Formatter {
    Table,
    Json,
    Csv,
}

/// A cell: strings bare, everything else as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Prints rows (each a map of column to value) in the given columns.
pub(crate) fn print(rows: &[Map<String, Value>], columns: &[String], formatter: Formatter) -> String {
    let mut out = String::new();
    match formatter {
        Formatter::Json => {
            let items: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = columns
                        .iter()
                        .map(|c| (c.clone(), row.get(c).cloned().unwrap_or(Value::Null)))
                        .collect();
                    Value::Object(object)
                })
                .collect();
            out.push_str(&Value::Array(items).to_string());
            out.push('\n');
        }
        Formatter::Table | Formatter::Csv => {
            let (separator, quote): (&str, fn(&str) -> String) = match formatter {
                Formatter::Csv => (",", csv_cell),
                _ => ("\t", str::to_string),
            };
            out.push_str(&columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(separator));
            out.push('\n');
            for row in rows {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| quote(&row.get(c).map(cell).unwrap_or_default()))
                    .collect();
                out.push_str(&cells.join(separator));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_print_as_table_json_and_csv() {
        let rows = vec![json!({"name": "q,1", "messages": 3}).as_object().cloned().unwrap()];
        let columns = vec!["name".to_string(), "messages".to_string()];
        assert_eq!(print(&rows, &columns, Formatter::Table), "name\tmessages\nq,1\t3\n");
        assert_eq!(print(&rows, &columns, Formatter::Csv), "name,messages\n\"q,1\",3\n");
        assert_eq!(
            print(&rows, &columns, Formatter::Json),
            "[{\"name\":\"q,1\",\"messages\":3}]\n"
        );
    }
}
