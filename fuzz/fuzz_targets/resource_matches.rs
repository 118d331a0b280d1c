//! Arbitrary bytes as the body of `POST /v3/resource_matches`: the parsing steps of
//! `dropship::service::resources::matches`, up to the content store. Never panics.
#![no_main]

use dropship::service::resources::{descriptor, descriptors, MAX_RESOURCES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Some(Value::Array(list)) = body.remove("resources") else {
        return;
    };
    let parsed = descriptors(&list, MAX_RESOURCES);
    assert_eq!(parsed.is_ok(), list.iter().all(|v| descriptor(v).is_ok()));
    for d in parsed.into_iter().flatten() {
        assert!(dropship::service::content::is_sha1(&d.sha1), "{:?}", d.sha1);
        assert!(d.mode.is_none_or(|m| m <= 0o777), "{:?}", d.mode);
    }
});
