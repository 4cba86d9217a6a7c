//! The byte scan that bounds a body's nesting, against a real parser: for any text serde_json
//! reads, the scan's depth is the parsed value's.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn nesting(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        serde_json::Value::Object(fields) => 1 + fields.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|body: &[u8]| {
    let scanned = gb_gateway::json_limits::depth(body);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        assert_eq!(scanned, nesting(&value));
    }
});
