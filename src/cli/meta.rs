//! `dropship version` and `dropship completion SHELL`.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// `0.1.0 (commit abc1234, built 2026-11-30)`: the version, the git commit and the build date
/// embedded by build.rs; also what `--version` prints.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DROPSHIP_GIT_COMMIT"),
    ", built ",
    env!("DROPSHIP_BUILD_DATE"),
    ")"
);

#[derive(Args)]
pub struct VersionArgs {
    /// Print {version, commit, build_date} as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CompletionArgs {
    /// The shell to write a completion script for.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// `dropship version`.
pub fn version(a: &VersionArgs) -> i32 {
    if a.json {
        let v = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "commit": env!("DROPSHIP_GIT_COMMIT"),
            "build_date": env!("DROPSHIP_BUILD_DATE"),
        });
        println!("{v}");
    } else {
        println!("dropship {VERSION}");
    }
    0
}

/// `dropship completion SHELL`: the script on stdout (a closed pipe, as with `| head`, is
/// not an error).
pub fn completion(a: &CompletionArgs) -> std::io::Result<i32> {
    use std::io::Write;
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "dropship", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(0),
    }
}
