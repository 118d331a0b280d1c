//! The `dropship` binary: where it is, running it, its output.

use super::*;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dropship"))
}

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics with how to install `tool` when it is missing.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: apt-get install -y {package} (or run bash .ci/run)"
    );
}

/// Stack blobs and unpacked stacks, shared by all tests (unpacking is atomic per digest).
pub fn stack_cache() -> PathBuf {
    std::env::temp_dir().join("dropship-test-stack-cache")
}

/// Runs `dropship ARGS` with the shared stack cache; returns its output.
pub fn dropship(args: &[&str]) -> Output {
    dropship_env(args, &[])
}

pub fn dropship_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args).env("DROPSHIP_STACK_CACHE", stack_cache());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run dropship")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs dropship and requires success; returns stdout.
pub fn dropship_ok(args: &[&str]) -> String {
    let o = dropship(args);
    assert!(
        o.status.success(),
        "dropship {args:?} failed:\n{}",
        text(&o)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `dropship build ... --json`, parsed.
pub fn build_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = dropship_ok(&all);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}
