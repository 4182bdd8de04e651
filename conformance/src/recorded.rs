//! Outputs recorded from RabbitMQ 3.10: a differential test runs a client
//! script that prints its scenarios' outcomes, and Warren must print
//! exactly what the same script printed against RabbitMQ.

use std::path::Path;

/// Panics, listing the differing lines, unless `actual` is line for line
/// what `expected` (a file recorded from RabbitMQ) holds.
pub fn assert_matches(name: &str, expected: &Path, actual: &str) {
    let expected = std::fs::read_to_string(expected)
        .unwrap_or_else(|e| panic!("reading {} (recorded from RabbitMQ): {e}", expected.display()));
    let mismatches: Vec<String> = expected
        .lines()
        .zip(actual.lines())
        .filter(|(e, a)| e != a)
        .map(|(e, a)| format!("  RabbitMQ: {e}\n  Warren:   {a}"))
        .collect();
    assert!(
        mismatches.is_empty() && expected.lines().count() == actual.lines().count(),
        "{name}: Warren differs from RabbitMQ:\n{}\n(full output:\n{actual})",
        mismatches.join("\n")
    );
}
