//! Names and identities: GUIDs derived from names, Eirini's StatefulSet names, DNS labels for
//! Services, label values. Pure and deterministic.

use super::{DNS_LABEL_MAX, NAME_PREFIX_MAX, NAME_SUFFIX_LEN};
use crate::app::name_uuid;
use sha2::{Digest, Sha256};

/// The GUID of a process type other than `web` (whose GUID is the app's), from
/// sha256("dropship-process:" + app_guid + "/" + type): stable across rebuilds, like the app's.
pub fn process_guid(app_guid: &str, process_type: &str) -> String {
    name_uuid(&format!("dropship-process:{app_guid}/{process_type}"))
}

/// Eirini's `GetStatefulsetName`: `<SanitizeName(app-space, guid)>-<10 hex of
/// sha256(guid-version)>`, at most 51 characters (40 + `-` + 10).
pub fn stateful_set_name(app: &str, space: &str, guid: &str, version: &str) -> String {
    let prefix = sanitize_name(&format!("{app}-{space}"), guid);
    let hash = hex::encode(Sha256::digest(format!("{guid}-{version}").as_bytes()));
    format!("{prefix}-{}", &hash[..NAME_SUFFIX_LEN])
}

/// Eirini's `SanitizeName` (lowercase, `_` -> `-`, at most 40 bytes), made to produce a
/// DNS-1123 *label*, improved in three ways:
/// - dots are not kept: the API server validates StatefulSet names as DNS labels
///   (kubernetes/kubernetes#114172; dotted names never worked, pod hostnames are derived from
///   them), so Eirini's subdomain regex would let through names that are now rejected;
/// - names that are still invalid ("My App", "app!") are sanitized harder (every character
///   outside `[a-z0-9-]` becomes `-`, runs of `-` collapse, `-` is trimmed at both ends)
///   before falling back to `fallback` (the app GUID), which happens only if nothing is left;
/// - after truncation trailing `-` are trimmed again.
pub fn sanitize_name(name: &str, fallback: &str) -> String {
    let name = label_chars(name);
    let name = if name.is_empty() { fallback } else { &name };
    truncate(name, NAME_PREFIX_MAX)
        .trim_end_matches('-')
        .to_string()
}

/// Lowercase, `_` -> `-`; kept as is if that is a DNS label apart from its length (as in
/// Eirini), else squashed to `[a-z0-9-]` without leading, trailing or repeated `-`. Empty if
/// nothing is left.
fn label_chars(name: &str) -> String {
    let name = name.to_lowercase().replace('_', "-");
    if has_dns_label_form(&name) {
        name
    } else {
        squash(&name, |c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }
}

/// A DNS-1035 label for the Service: the app name sanitized as in [`sanitize_name`], `app-`
/// in front if it starts with a digit, at most 63 characters; `app-<guid>` if nothing is
/// left. Deterministic and derived from the app name alone, so two apps whose names sanitize
/// alike ("My App", "my_app") in one namespace share a Service name and the later apply takes
/// the Service over: nothing is appended to avoid that, to keep the name predictable.
pub fn service_name(app: &str, guid: &str) -> String {
    let name = label_chars(app);
    let name = match name.chars().next() {
        None => format!("app-{guid}"),
        Some(c) if !c.is_ascii_lowercase() => format!("app-{name}"),
        Some(_) => name,
    };
    truncate(&name, DNS_LABEL_MAX)
        .trim_end_matches('-')
        .to_string()
}

/// A valid label value (at most 63 of `[-_.a-zA-Z0-9]`, alphanumeric at both ends, or
/// empty): other characters become `-`, runs of `-` collapse.
pub fn label_value(s: &str) -> String {
    let keep = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    let not_alnum = |c: char| !c.is_ascii_alphanumeric();
    let squashed = squash(s, keep);
    truncate(squashed.trim_matches(not_alnum), DNS_LABEL_MAX)
        .trim_end_matches(not_alnum)
        .to_string()
}

/// Replaces every character that is neither `keep` nor `-` with `-`, collapses runs of `-`
/// and trims `-` at both ends.
fn squash(s: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if keep(c) { c } else { '-' };
        if c != '-' || !(out.is_empty() || out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').to_string()
}

/// The first `max` bytes; callers only pass ASCII or a fallback GUID.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub(crate) fn is_dns_label(s: &str) -> bool {
    s.len() <= DNS_LABEL_MAX && has_dns_label_form(s)
}

/// [`is_dns_label`] without the length limit.
pub(crate) fn has_dns_label_form(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    matches!((b.first(), b.last()), (Some(f), Some(l)) if ok(f) && ok(l))
        && b.iter().all(|c| ok(c) || *c == b'-')
}
