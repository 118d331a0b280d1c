//! `POST /v3/resource_matches`: which of these files does the service already have? `cf push`
//! sends the SHA-1 and size of every non-empty file of the app, then uploads only the others
//! (the matched ones are named in the upload's `resources` field, see `upload.rs`).
//!
//! Body: `{"resources":[{"checksum":{"value":SHA1},"size_in_bytes":N,"path":..,"mode":..},..]}`
//! (the v2 shape `{"sha1":..,"size":..,"fn":..,"mode":..}` is accepted too). Answer: 201 with
//! `{"resources":[..]}`, the input objects the content store has, same SHA-1 and same size,
//! in the order given. One database transaction whatever the number of entries.

use super::content::{self, Store};
use super::error::{ApiError, ApiResult};
use super::Shared;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Most entries in one request (the cf CLI sends 1000 at a time; Cloud Controller takes 5000).
pub const MAX_RESOURCES: usize = 100_000;

/// Largest request body (100 000 entries with long paths fit).
pub const MAX_BODY: u64 = 64 << 20;

/// One file description, in either of Cloud Controller's shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Lowercase hex.
    pub sha1: String,
    pub size: u64,
    /// `path` (v3) or `fn` (v2), as given.
    pub path: Option<String>,
    /// Permission bits from the octal `mode` string, when given.
    pub mode: Option<u32>,
}

/// Parses one resource object; the error completes "resource N ...".
pub fn descriptor(v: &Value) -> Result<Descriptor, &'static str> {
    let o = v.as_object().ok_or("is not an object")?;
    let sha1 = match (o.get("checksum"), o.get("sha1")) {
        (Some(c), _) => c
            .as_object()
            .ok_or("has a non-object checksum")?
            .get("value")
            .and_then(Value::as_str)
            .ok_or("has a non-string checksum value")?,
        (None, Some(s)) => s.as_str().ok_or("has a non-string sha1")?,
        (None, None) => return Err("has no checksum"),
    };
    let sha1 = sha1.to_ascii_lowercase();
    if !content::is_sha1(&sha1) {
        return Err("has a non-SHA1 checksum value");
    }
    let size = o
        .get("size_in_bytes")
        .or_else(|| o.get("size"))
        .ok_or("has no size_in_bytes")?
        .as_u64()
        .ok_or("has a non-integer or negative size_in_bytes")?;
    let path = match o.get("path").or_else(|| o.get("fn")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("has a non-string path"),
    };
    let mode = match o.get("mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_mode(s).ok_or("has an incorrect mode")?),
        Some(_) => return Err("has a non-string mode"),
    };
    Ok(Descriptor {
        sha1,
        size,
        path,
        mode,
    })
}

/// Permission bits of an octal mode string ("644", "0755", or Go's `os.FileMode` in octal,
/// whose type and setuid bits live above 0o777 and are dropped).
fn parse_mode(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 11 {
        return None;
    }
    u32::from_str_radix(s, 8).ok().map(|m| m & 0o777)
}

/// A JSON list of resources (the upload's `resources` field, or `resources` of a match
/// request), checked: every entry parses, at most `max` of them.
pub fn descriptors(list: &[Value], max: usize) -> ApiResult<Vec<Descriptor>> {
    if list.len() > max {
        return Err(ApiError::unprocessable(format!(
            "Resources array can have at most {max} resources (got {})",
            list.len()
        )));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            descriptor(v).map_err(|why| ApiError::unprocessable(format!("Resource {i} {why}")))
        })
        .collect()
}

/// The request body, at most `cap` bytes (413 beyond, without reading further).
pub async fn read_body(headers: &HeaderMap, body: Body, cap: u64) -> ApiResult<Vec<u8>> {
    let too_large = || {
        ApiError::too_large(format!(
            "The request body is larger than the {cap} bytes allowed"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if (buf.len() + chunk.len()) as u64 > cap {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

pub async fn matches(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let bytes = read_body(&headers, body, MAX_BODY).await?;
    let mut req: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::unprocessable(format!("invalid request body: {e}")))?;
    drop(bytes);
    let obj = req
        .as_object_mut()
        .ok_or_else(|| ApiError::unprocessable("the request body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "resources") {
        return Err(ApiError::unprocessable(format!("Unknown field(s): '{k}'")));
    }
    let list = match obj.remove("resources") {
        Some(Value::Array(list)) => list,
        _ => return Err(ApiError::unprocessable("Resources must be an array")),
    };
    let wanted: Vec<(String, u64)> = descriptors(&list, MAX_RESOURCES)?
        .into_iter()
        .map(|d| (d.sha1, d.size))
        .collect();
    let found = Store::of(&state).known(wanted).await?;
    let matched: Vec<Value> = list
        .into_iter()
        .zip(found)
        .filter_map(|(v, hit)| hit.then_some(v))
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "resources": matched }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_and_their_mistakes() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let v3 = json!({"checksum": {"value": sha.to_uppercase()}, "size_in_bytes": 5,
                        "path": "a/b", "mode": "755"});
        assert_eq!(
            descriptor(&v3),
            Ok(Descriptor {
                sha1: sha.into(),
                size: 5,
                path: Some("a/b".into()),
                mode: Some(0o755)
            })
        );
        let v2 = json!({"sha1": sha, "size": 7, "fn": "x", "mode": "0644"});
        let d = descriptor(&v2).unwrap();
        assert_eq!(
            (d.size, d.path.as_deref(), d.mode),
            (7, Some("x"), Some(0o644))
        );
        let go_setuid = json!({"sha1": sha, "size": 1, "mode": "40000755"});
        assert_eq!(descriptor(&go_setuid).unwrap().mode, Some(0o755));
        for (bad, why) in [
            (json!([]), "is not an object"),
            (json!({"size_in_bytes": 1}), "has no checksum"),
            (
                json!({"checksum": "x", "size_in_bytes": 1}),
                "has a non-object checksum",
            ),
            (
                json!({"checksum": {"value": "abc"}, "size_in_bytes": 1}),
                "has a non-SHA1 checksum value",
            ),
            (json!({"checksum": {"value": sha}}), "has no size_in_bytes"),
            (
                json!({"checksum": {"value": sha}, "size_in_bytes": -1}),
                "has a non-integer or negative size_in_bytes",
            ),
            (
                json!({"checksum": {"value": sha}, "size_in_bytes": 1, "mode": 644}),
                "has a non-string mode",
            ),
            (
                json!({"checksum": {"value": sha}, "size_in_bytes": 1, "mode": "rwx"}),
                "has an incorrect mode",
            ),
        ] {
            assert_eq!(descriptor(&bad), Err(why), "{bad}");
        }
    }
}
