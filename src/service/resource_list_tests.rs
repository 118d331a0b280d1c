use super::*;
use serde_json::json;

fn list(text: &str, max: usize) -> Result<Vec<Descriptor>, ListError> {
    let mut all = Vec::new();
    let mut sink = |batch: Vec<Descriptor>| {
        all.extend(batch);
        Ok(())
    };
    parse_list(text.as_bytes(), max, &mut sink)?;
    Ok(all)
}

fn one(v: serde_json::Value) -> Result<Descriptor, ListError> {
    list(&json!([v]).to_string(), 10).map(|mut l| l.remove(0))
}

fn shape(why: &str) -> Result<Descriptor, ListError> {
    Err(ListError::Shape(format!("Resource 0 {why}")))
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn both_shapes_and_their_mistakes() {
    let v3 = json!({"checksum": {"value": SHA.to_uppercase(), "algorithm": "sha1"},
                    "size_in_bytes": 5, "path": "a/b", "mode": "755", "extra": [1, {"a": 2}]});
    let d = one(v3).unwrap();
    assert_eq!(
        (
            d.sha1_hex(),
            d.size,
            d.path.as_deref(),
            d.mode.map(Mode::bits),
            d.v2
        ),
        (SHA.to_string(), 5, Some("a/b"), Some(0o755), false)
    );
    let d = one(json!({"sha1": SHA, "size": 7, "fn": "x", "mode": "0644"})).unwrap();
    assert_eq!(
        (d.size, d.path.as_deref(), d.mode.map(Mode::bits), d.v2),
        (7, Some("x"), Some(0o644), true)
    );
    let go_setuid = json!({"sha1": SHA, "size": 1, "mode": "40000755"});
    assert_eq!(one(go_setuid).unwrap().mode.map(Mode::bits), Some(0o755));
    for (bad, why) in [
        (json!([]), "is not an object"),
        (json!({"size_in_bytes": 1}), "has no checksum"),
        (
            json!({"checksum": "x", "size_in_bytes": 1}),
            "has a non-object checksum",
        ),
        (
            json!({"checksum": {"value": 1}, "size_in_bytes": 1}),
            "has a non-string checksum value",
        ),
        (
            json!({"checksum": {"value": "abc"}, "size_in_bytes": 1}),
            "has a non-SHA1 checksum value",
        ),
        (json!({"checksum": {"value": SHA}}), "has no size_in_bytes"),
        (
            json!({"checksum": {"value": SHA}, "size_in_bytes": -1}),
            "has a non-integer or negative size_in_bytes",
        ),
        (
            json!({"checksum": {"value": SHA}, "size_in_bytes": 1.5}),
            "has a non-integer or negative size_in_bytes",
        ),
        (
            json!({"checksum": {"value": SHA}, "size_in_bytes": 1, "path": 3}),
            "has a non-string path",
        ),
        (
            json!({"checksum": {"value": SHA}, "size_in_bytes": 1, "mode": 644}),
            "has a non-string mode",
        ),
        (
            json!({"checksum": {"value": SHA}, "size_in_bytes": 1, "mode": "rwx"}),
            "has an incorrect mode",
        ),
        (
            json!({"checksum": {"value": SHA}, "size_in_bytes": 1, "mode": "+644"}),
            "has an incorrect mode",
        ),
    ] {
        assert_eq!(one(bad.clone()), shape(why), "{bad}");
    }
}

#[test]
fn answers_echo_the_shape_given() {
    let v3 = json!({"checksum": {"value": SHA}, "size_in_bytes": 5, "path": "a", "mode": "0644"});
    let v2 = json!({"sha1": SHA, "size": 7, "fn": "x", "mode": "755"});
    let got = list(&json!([v3, v2]).to_string(), 2).unwrap();
    assert_eq!(serde_json::to_value(&got).unwrap(), json!([v3, v2]));
}

/// Entries of a request, counted through a sink that also sees the batches' sizes.
fn request(text: &str, max: usize) -> Result<usize, ListError> {
    let mut n = 0;
    let mut sink = |batch: Vec<Descriptor>| {
        assert!(!batch.is_empty() && batch.len() <= BATCH);
        n += batch.len();
        Ok(())
    };
    parse_request(text.as_bytes(), max, &mut sink).map(|()| n)
}

#[test]
fn requests_and_their_limits() {
    let entry = json!({"checksum": {"value": SHA}, "size_in_bytes": 5});
    let body = |n: usize| json!({ "resources": vec![entry.clone(); n] }).to_string();
    assert_eq!(request(&body(3), 3).unwrap(), 3);
    assert_eq!(
        request(&body(4), 3),
        Err(ListError::Shape(
            "Resources array can have at most 3 resources".into()
        ))
    );
    for (text, detail) in [
        (r#"{"resources": {}}"#, "Resources must be an array"),
        (r#"{"resources": "x"}"#, "Resources must be an array"),
        (r#"{}"#, "Resources must be an array"),
        (r#"{"other": 1}"#, "Unknown field(s): 'other'"),
        (r#"[1]"#, "the request body must be a JSON object"),
    ] {
        assert_eq!(
            request(text, 3),
            Err(ListError::Shape(detail.into())),
            "{text}"
        );
    }
    for text in [r#"{"resources": ["#, r#"{"resources": []} x"#, ""] {
        assert!(
            matches!(request(text, 3), Err(ListError::Syntax(_))),
            "{text}"
        );
    }
    assert_eq!(
        list(r#"{"not": "a list"}"#, 3),
        Err(ListError::Shape(
            "The resources field is not a JSON array".into()
        ))
    );
}

#[test]
fn batches_reach_the_sink_in_order_and_its_errors_stop_the_parse() {
    let entry = |i: usize| json!({"checksum": {"value": SHA}, "size_in_bytes": i});
    let text = json!({ "resources": (0..2500).map(entry).collect::<Vec<_>>() }).to_string();
    assert_eq!(request(&text, 5000), Ok(2500));
    let mut sizes = Vec::new();
    let mut sink = |batch: Vec<Descriptor>| {
        sizes.extend(batch.iter().map(|d| d.size));
        Err("the store is gone".to_string())
    };
    assert_eq!(
        parse_request(text.as_bytes(), 5000, &mut sink),
        Err(ListError::Sink("the store is gone".into()))
    );
    assert_eq!(sizes, (0..1000).collect::<Vec<u64>>());
}
