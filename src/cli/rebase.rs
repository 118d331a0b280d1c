//! `dropship rebase IMAGE --stack NEWSTACK [--image TARGET]`: flags into
//! [`RebaseOptions`], the rebase run, its outcome printed (text or `--json`). Exit codes: 3 for
//! a stack of another name, OS or architecture (without `--force`), 4 for an image that does
//! not record its stack's layers, 1 for anything else.

use super::workdir::work_dir;
use super::{registry_options, report, stack_cache, RebaseArgs};
use anyhow::{bail, Context, Result};
use dropship::pipeline::rebase::{rebase as run, RebaseOptions};
use dropship::refs::ImageRef;
use dropship::units::format_size;
use std::sync::Arc;

fn options(a: &RebaseArgs) -> Result<RebaseOptions> {
    let image: ImageRef = a.from.parse().context("IMAGE")?;
    let stack: ImageRef = a.stack.parse().context("--stack")?;
    let target: ImageRef = match &a.target {
        Some(t) => t.parse().context("--image")?,
        None => image.clone(),
    };
    if let ImageRef::Registry(r) = &target {
        if r.digest.is_some() && r.tag.is_none() {
            bail!("the rebased image needs a tag: IMAGE is named by digest, pass --image TARGET");
        }
    }
    let stack_creds = Some((&stack, a.stack_creds.as_deref()));
    let registry = registry_options(&a.registry, &target, stack_creds)?;
    let work_dir = work_dir(&a.registry, None, 0);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    Ok(RebaseOptions {
        image,
        stack,
        target: match target {
            // Pushed by tag: a digest in the reference only named what to read.
            ImageRef::Registry(r) => {
                ImageRef::Registry(dropship::refs::RegistryRef { digest: None, ..r })
            }
            other => other,
        },
        force: a.force,
        registry,
        stack_cache: stack_cache(&a.registry),
        work_dir,
    })
}

/// `dropship rebase`; returns the process exit code.
pub async fn rebase(a: RebaseArgs) -> Result<i32> {
    let opts = options(&a)?;
    let reporter = Arc::new(report::CliReporter::new());
    match run(&opts, reporter).await {
        Ok(out) => {
            if a.registry.json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                report::progress!(
                    "==> rebased onto {} in {:.2}s: {} app layers kept, {} sent",
                    out.stack.name,
                    out.seconds,
                    out.app_layers.len(),
                    format_size(out.bytes_moved)
                );
                println!("{}", out.image);
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("dropship: rebase failed: {e}");
            if a.registry.json {
                let error = serde_json::json!({"error": {
                    "code": e.exit_code(), "kind": e.kind(), "message": e.to_string(),
                }});
                println!("{error}");
            }
            Ok(e.exit_code())
        }
    }
}
