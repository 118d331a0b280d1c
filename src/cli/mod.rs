//! Command-line definitions (clap) and their translation into library calls: the flags in
//! `args.rs`, one file per command (`build.rs`, `serve.rs`, `stacks.rs`, `push/`, `rebase.rs`), and here
//! what they share (sizes, paths, registry options, defaults).

mod args;
mod build;
pub mod config_file;
pub mod examples;
pub mod logging;
pub mod login;
pub mod manifest;
pub mod meta;
pub mod push;
pub mod rebase;
pub mod report;
mod serve;
pub mod stacks;
mod workdir;

pub use args::*;
pub use build::build;
pub use serve::serve;

use anyhow::{Context, Result};
use dropship::refs::ImageRef;
use dropship::registry::auth::CredentialSources;
use dropship::registry::RegistryOptions;
use dropship::stack::StackCache;
use std::path::{Path, PathBuf};

/// Bytes from `512M`, `1G`, `1Gi`, `1.5GB` (powers of 1024) or a bare number of bytes: the
/// grammar of `dropship::units`, the same as the service's configuration.
pub fn parse_size(s: &str) -> Result<u64> {
    dropship::units::parse_size(s).map_err(anyhow::Error::msg)
}

/// Registry options; `--creds` go to the target's registry, `--stack-creds` to the stack's.
fn registry_options(
    args: &RegistryArgs,
    target: &ImageRef,
    stack: Option<(&ImageRef, Option<&str>)>,
) -> Result<RegistryOptions> {
    let mut credentials = CredentialSources::default();
    credentials
        .bind_image(
            target,
            ("--creds", args.creds.as_deref()),
            ("DROPSHIP_REGISTRY_USER", "DROPSHIP_REGISTRY_PASSWORD"),
        )
        .map_err(anyhow::Error::msg)?;
    if let Some((stack, flag)) = stack {
        credentials
            .bind_image(
                stack,
                ("--stack-creds", flag),
                (
                    "DROPSHIP_STACK_REGISTRY_USER",
                    "DROPSHIP_STACK_REGISTRY_PASSWORD",
                ),
            )
            .map_err(anyhow::Error::msg)?;
    }
    Ok(RegistryOptions {
        insecure: args.insecure.clone(),
        credentials,
        retry: Default::default(),
        read_timeout_secs: RegistryOptions::timeout_from_env(),
    })
}

fn stack_cache(args: &RegistryArgs) -> StackCache {
    StackCache {
        dir: args
            .stack_cache
            .clone()
            .unwrap_or_else(StackCache::default_dir),
    }
}

/// The shipped buildpacks: next to an installed binary, else in the source tree it was built from.
fn default_buildpacks_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().ok();
    let installed = exe
        .as_ref()
        .and_then(|e| e.parent())
        .map(|d| d.join("../share/dropship/buildpacks"));
    let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("buildpacks");
    [installed, Some(source_tree)]
        .into_iter()
        .flatten()
        .find(|p| p.is_dir())
        .context(
            "no buildpacks directory found: pass --buildpacks-dir or set DROPSHIP_BUILDPACKS_DIR",
        )
}

fn app_name(source: &Path) -> Result<String> {
    let abs = std::fs::canonicalize(source).with_context(|| format!("{}", source.display()))?;
    let name = if abs.is_dir() {
        abs.file_name()
    } else {
        abs.file_stem()
    };
    name.map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .context("cannot derive an app name from the source: pass --name")
}

/// Paths handed to buildpacks must not depend on the directory scripts run in.
fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{}", p.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(super::parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(super::parse_size("256MB").unwrap(), 256 << 20);
        assert_eq!(super::parse_size("1Gi").unwrap(), 1 << 30);
        assert_eq!(
            super::parse_size("100").unwrap(),
            100,
            "bytes, as in the TOML file"
        );
        assert!(super::parse_size("lots").is_err());
    }
}
