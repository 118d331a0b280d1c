//! Canonical JSON bytes: object keys sorted at every level, no insignificant whitespace.
//! oci-spec keeps labels and annotations in HashMaps, whose iteration order changes from run
//! to run; digests must not.

use serde::Serialize;
use serde_json::{Map, Value};

fn sort(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sort(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
        other => other,
    }
}

/// Serializes `value` to canonical JSON bytes.
pub fn to_vec<T: Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&sort(serde_json::to_value(value)?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sorted_at_every_level() {
        let mut m = std::collections::HashMap::new();
        for k in ["zeta", "alpha", "mid", "beta", "omega"] {
            m.insert(
                k.to_string(),
                serde_json::json!({"y": 1, "x": [ {"b": 1, "a": 2} ]}),
            );
        }
        let bytes = super::to_vec(&m).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"alpha":{"x":[{"a":2,"b":1}],"y":1},"beta":{"x":[{"a":2,"b":1}],"y":1},"mid":{"x":[{"a":2,"b":1}],"y":1},"omega":{"x":[{"a":2,"b":1}],"y":1},"zeta":{"x":[{"a":2,"b":1}],"y":1}}"#
        );
    }
}
