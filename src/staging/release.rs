//! The documents buildpacks and apps hand to the lifecycle: `bin/release` output,
//! `Procfile`, `deps/<idx>/launch.yml`, `deps/<idx>/config.yml`. Pure parsing.

use serde::Deserialize;
use std::collections::BTreeMap;

pub type ProcessTypes = BTreeMap<String, String>;

#[derive(Debug, Deserialize, Default)]
struct Release {
    #[serde(default)]
    default_process_types: Option<BTreeMap<String, serde_norway::Value>>,
}

fn scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `default_process_types` of `bin/release` output.
pub fn parse_release(yaml: &str) -> Result<ProcessTypes, String> {
    if yaml.trim().is_empty() || yaml.trim() == "---" {
        return Ok(ProcessTypes::new());
    }
    let r: Release = serde_norway::from_str(yaml)
        .map_err(|e| format!("buildpack's release output is not valid YAML: {e}"))?;
    Ok(r.default_process_types
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s)))
        .collect())
}

/// A Procfile: YAML `type: command` lines. Lines that YAML rejects (a command containing
/// `: `) are read as `type: rest of the line`, as Heroku-style tools do.
pub fn parse_procfile(text: &str) -> Result<ProcessTypes, String> {
    if let Ok(map) = serde_norway::from_str::<BTreeMap<String, serde_norway::Value>>(text) {
        return Ok(map
            .iter()
            .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s)))
            .collect());
    }
    let mut out = ProcessTypes::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() && !k.contains(' ') => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err(format!("Procfile line {}: expected `type: command`", n + 1)),
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
struct LaunchProcess {
    #[serde(rename = "type")]
    kind: String,
    command: String,
}

#[derive(Debug, Deserialize)]
struct Launch {
    #[serde(default)]
    processes: Vec<LaunchProcess>,
}

/// `processes` of a `launch.yml`.
pub fn parse_launch(yaml: &str) -> Result<ProcessTypes, String> {
    let l: Launch =
        serde_norway::from_str(yaml).map_err(|e| format!("launch.yml is not valid: {e}"))?;
    Ok(l.processes
        .into_iter()
        .map(|p| (p.kind, p.command))
        .collect())
}

/// What a buildpack says about itself in `deps/<idx>/config.yml`.
#[derive(Debug, Deserialize, Default, Clone, PartialEq, Eq)]
pub struct BuildpackConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

pub fn parse_config(yaml: &str) -> BuildpackConfig {
    serde_norway::from_str(yaml).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_output() {
        let p =
            parse_release("---\ndefault_process_types:\n  web: exec sh serve.sh\n  worker: 1\n")
                .unwrap();
        assert_eq!(p["web"], "exec sh serve.sh");
        assert_eq!(p["worker"], "1");
        assert!(parse_release("---\ndefault_process_types: {}\n")
            .unwrap()
            .is_empty());
        assert!(parse_release("").unwrap().is_empty());
        assert!(parse_release("default_process_types: [unclosed").is_err());
    }

    #[test]
    fn procfiles() {
        let p = parse_procfile("web: ./server --port $PORT\nworker: ./jobs\n").unwrap();
        assert_eq!(p["web"], "./server --port $PORT");
        let p = parse_procfile("web: echo a: b\n# comment\n").unwrap();
        assert_eq!(p["web"], "echo a: b");
        assert!(parse_procfile("just words\n").is_err());
    }

    #[test]
    fn launch_and_config() {
        let p = parse_launch("processes:\n- type: web\n  command: node server.js\n").unwrap();
        assert_eq!(p["web"], "node server.js");
        let c = parse_config("name: python\nversion: 1.2.3\nconfig: {}\n");
        assert_eq!(
            (c.name.as_deref(), c.version.as_deref()),
            (Some("python"), Some("1.2.3"))
        );
        assert_eq!(parse_config(": bad"), BuildpackConfig::default());
    }
}
