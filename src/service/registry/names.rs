//! The OCI distribution spec's grammar for repository names, tags and (sha256) digests,
//! checked before anything touches the store.

const MAX_NAME: usize = 255;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: one path component of a repository name.
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false; // empty, or starting or ending with a separator
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        if !valid_separator(&c[sep..i]) || (i == b.len() && sep < i) {
            return false;
        }
    }
    !b.is_empty()
}

fn valid_separator(s: &str) -> bool {
    matches!(s, "" | "." | "_" | "__") || s.bytes().all(|b| b == b'-')
}

/// A repository name: components as above joined by `/`, at most 255 characters.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME && name.split('/').all(valid_component)
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `sha256:` and 64 lowercase hex digits.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// `s` made into a valid name component: lowercase, other characters and separator runs the
/// grammar does not allow become `-`, separators trimmed from both ends (empty: `app`).
pub fn component(s: &str) -> String {
    let mut out = String::new();
    let mut sep = String::new();
    for c in s.to_ascii_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if !out.is_empty() && !sep.is_empty() {
                out.push_str(if valid_separator(&sep) { &sep } else { "-" });
            }
            sep.clear();
            out.push(c);
        } else {
            sep.push(if matches!(c, '.' | '_' | '-') { c } else { '-' });
        }
    }
    if out.is_empty() {
        out.push_str("app");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "apps/shop",
            "stacks/busybox",
            "a",
            "apps/my-app_2.0",
            "a__b",
            "a---b/c.d",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "apps/../etc",
            "/apps",
            "apps//x",
            "Apps/x",
            "apps/.hidden",
            "apps/x/",
            "a..b",
            "a___b",
            "a-",
            "a_-b",
            &"a".repeat(256),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(valid_tag("latest") && valid_tag("_x.1-2") && valid_tag(&"a".repeat(128)));
        for bad in ["", ".x", "-x", "a:b", "a/b", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
        let hex = "0123456789abcdef".repeat(4);
        assert!(valid_digest(&format!("sha256:{hex}")));
        for bad in [
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}", &hex[1..]),
            format!("sha512:{hex}"),
            "sha256:../../etc".into(),
        ] {
            assert!(!valid_digest(&bad), "{bad}");
        }
    }

    #[test]
    fn components_from_app_names() {
        for (app, want) in [
            ("My App", "my-app"),
            ("a..b", "a-b"),
            ("a__b", "a__b"),
            ("--x--", "x"),
            ("日本", "app"),
            ("v1.2_x", "v1.2_x"),
        ] {
            assert_eq!(component(app), want);
            assert!(valid_name(&component(app)), "{app}");
        }
    }
}
