//! `dropship stack import`, `dropship stack list` and `dropship stack inspect REF`.

use super::workdir::work_dir;
use super::{registry_options, report, stack_cache, ImportArgs, RegistryArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use dropship::refs::ImageRef;
use dropship::registry::source::Source;
use dropship::registry::Registry;
use dropship::units::format_size;
use std::sync::Arc;

#[derive(Args)]
pub struct ListArgs {
    /// Cache of stack blobs and unpacked stacks.
    #[arg(long, env = "DROPSHIP_STACK_CACHE", value_name = "DIR")]
    pub stack_cache: Option<std::path::PathBuf>,
    /// Print the stacks as one JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The stack image: docker://HOST/REPO[:TAG|@DIGEST] or oci:DIR[:TAG].
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `dropship stack list`: the stacks builds have used from this cache.
pub fn list(a: &ListArgs) -> Result<i32> {
    let cache = stack_cache(&RegistryArgs {
        stack_cache: a.stack_cache.clone(),
        ..RegistryArgs::default()
    });
    let stacks = cache
        .list()
        .with_context(|| format!("reading {}", cache.dir.display()))?;
    if a.json {
        println!("{}", serde_json::to_string(&stacks)?);
        return Ok(0);
    }
    println!(
        "{:<16} {:<20} {:>10} {:<9} REFERENCE",
        "NAME", "DIGEST", "SIZE", "UNPACKED"
    );
    for s in &stacks {
        let short = s.digest.trim_start_matches("sha256:");
        let unpacked = if s.unpacked { "yes" } else { "no" };
        println!(
            "{:<16} {:<20} {:>10} {:<9} {}",
            s.name,
            format!("sha256:{}", &short[..12.min(short.len())]),
            format_size(s.size),
            unpacked,
            s.reference
        );
    }
    Ok(0)
}

/// `dropship stack inspect REF`: the manifest and config, nothing unpacked.
pub async fn inspect(a: &InspectArgs) -> Result<i32> {
    let r: ImageRef = a.reference.parse().context("REF")?;
    let in_use: Vec<_> = match &r {
        ImageRef::Registry(reg) => vec![reg],
        ImageRef::Layout(_) => vec![],
    };
    let reporter = Arc::new(super::report::CliReporter::new());
    let registry = Registry::new(registry_options(&a.registry, &r, None)?, &in_use, reporter)?;
    let cache = stack_cache(&a.registry);
    let resolved = Source::new(&r, &registry)?.resolve(&cache.blobs()).await?;
    let base = &resolved.base;
    let labels = base
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default();
    let labels: std::collections::BTreeMap<_, _> = labels.into_iter().collect();
    let layers: Vec<_> = base
        .manifest
        .layers()
        .iter()
        .map(|l| serde_json::json!({"digest": l.digest().to_string(), "size": l.size(), "media_type": l.media_type().to_string()}))
        .collect();
    let name = labels.get(dropship::image::stack::STACK_LABEL).cloned();
    if a.registry.json {
        let out = serde_json::json!({
            "reference": r.to_string(), "name": name, "digest": resolved.manifest.digest,
            "platform": base.platform(), "layers": layers, "labels": labels,
        });
        println!("{out}");
        return Ok(0);
    }
    println!("reference: {r}");
    println!(
        "name:      {}",
        name.as_deref().unwrap_or("(no stack label)")
    );
    println!("digest:    {}", resolved.manifest.digest);
    println!("platform:  {}", base.platform());
    println!("layers:");
    for l in base.manifest.layers() {
        println!("  {}  {}", l.digest(), format_size(l.size()));
    }
    println!("labels:");
    for (k, v) in &labels {
        println!("  {k}={v}");
    }
    Ok(0)
}

/// `dropship stack import`.
pub async fn import(a: ImportArgs) -> Result<i32> {
    let target: ImageRef = a.image.parse().context("--image")?;
    if !a.rootfs.exists() {
        bail!("{}: no such file or directory", a.rootfs.display());
    }
    let in_use: Vec<_> = match &target {
        ImageRef::Registry(r) => vec![r],
        ImageRef::Layout(_) => vec![],
    };
    let reporter = Arc::new(report::CliReporter::new());
    let opts = registry_options(&a.registry, &target, None)?;
    let registry = Registry::new(opts, &in_use, reporter.clone())?;
    let base = work_dir(&a.registry, None, 0);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let work = tempfile::Builder::new()
        .prefix("dropship-stack-")
        .tempdir_in(&base)?;
    let r = dropship::stack::import(
        &a.rootfs,
        &target,
        a.name.as_deref(),
        &registry,
        work.path(),
        reporter,
    )
    .await?;
    for fix in &r.fixes {
        report::progress!("==> stack: {fix}");
    }
    let image = match &target {
        ImageRef::Registry(t) => format!("{}@{}", t.repo_name(), r.digest),
        ImageRef::Layout(l) => format!("oci:{}@{}", l.dir.display(), r.digest),
    };
    if a.registry.json {
        let out = serde_json::json!({
            "image": image, "digest": r.digest, "layer": {"digest": r.layer_digest, "size": r.layer_size},
            "fixes": r.fixes, "push": r.push,
        });
        println!("{out}");
    } else {
        report::progress!("==> stack image {image}");
        println!("{image}");
    }
    Ok(0)
}
