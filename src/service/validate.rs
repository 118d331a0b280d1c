//! Checks of what clients name: environment variables (the staging rules of
//! `staging::env::check_user_var`) and app names, which must make an image repository.

use super::config::Config;
use super::error::{ApiError, ApiResult};
use serde_json::Value;
use std::collections::BTreeMap;

/// `environment_variables` as the app keeps them: strings (numbers and booleans as text), each
/// name and value as staging accepts them, else CF's 422 with the reason.
pub fn env_vars(given: BTreeMap<String, Value>) -> ApiResult<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for (k, v) in given {
        let value = match v {
            Value::String(s) => s,
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            _ => {
                return Err(ApiError::unprocessable(format!(
                    "environment variable {k}: only strings, numbers and booleans"
                )))
            }
        };
        crate::staging::env::check_user_var(&k, &value).map_err(ApiError::unprocessable)?;
        env.insert(k, value);
    }
    Ok(env)
}

/// Where the app's images go: `<prefix>/<repository>` with `[registry] prefix`, else the
/// embedded registry under `<public_address>/apps/<repository>`.
fn image_name(config: &Config, repo: &str) -> String {
    match &config.registry.prefix {
        Some(p) => format!("{}/{repo}", p.trim_end_matches('/')),
        None => format!("{}/apps/{repo}", config.public_address),
    }
}

/// The app's repository name (see `builds::repository`: lowercased, other characters as `-`),
/// or why the name cannot make one: the distribution spec wants path components of
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, and clients 255 characters at most for the whole name.
pub fn app_name(config: &Config, name: &str) -> ApiResult<()> {
    let repo = super::builds::repository(name);
    let repo = repo.trim_start_matches("apps/");
    let why = if !name.chars().any(|c| c.is_ascii_alphanumeric()) {
        Some("it has no ASCII letter or digit".to_string())
    } else if !valid_component(repo) {
        Some(format!(
            "its repository {repo:?} has separators (. _ -) that are repeated or mixed"
        ))
    } else {
        let full = image_name(config, repo);
        (full.len() > 255).then(|| format!("{full:?} would be longer than 255 characters"))
    };
    match why {
        None => Ok(()),
        Some(why) => Err(ApiError::unprocessable(format!(
            "App name {name:?} cannot name an image repository: {why}"
        ))),
    }
}

/// One path component of the distribution spec's repository grammar.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A manifest's scale against the server's `[limits]` (CF's wording).
pub fn settings_max(
    state: &super::Shared,
    instances: Option<u32>,
    memory_mb: Option<u64>,
    disk_mb: Option<u64>,
) -> ApiResult<()> {
    let max = state.config.app_max;
    let over = |v: Option<u64>, max: u32, what: &str| match v {
        Some(v) if v > u64::from(max) => Err(ApiError::unprocessable(format!(
            "{what} must be less than or equal to {max}"
        ))),
        _ => Ok(()),
    };
    over(instances.map(u64::from), max.instances, "Instances")?;
    over(memory_mb, max.memory_mb, "Memory in mb")?;
    over(disk_mb, max.disk_mb, "Disk in mb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_components() {
        for ok in ["a", "my-app", "a.b", "a__b", "a---b", "v1.2_x"] {
            assert!(valid_component(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a..b", "a___b", "a.-b", "a_-b", "A"] {
            assert!(!valid_component(bad), "{bad}");
        }
    }

    #[test]
    fn env_names_and_values() {
        let m = |k: &str, v: Value| BTreeMap::from([(k.to_string(), v)]);
        assert_eq!(
            env_vars(m("N", Value::from(3))).unwrap()["N"],
            "3".to_string()
        );
        for (k, v) in [
            ("A=B", Value::from("x")),
            ("1X", Value::from("x")),
            ("CF_X", Value::from("x")),
            ("PORT", Value::from("1")),
            ("X", Value::from("a\0b")),
            ("X", Value::Null),
        ] {
            let e = env_vars(m(k, v)).unwrap_err();
            assert_eq!((e.code, e.status.as_u16()), (10008, 422), "{k}");
        }
    }
}
