//! A build that needs nothing from outside: a one-file stack imported into an OCI layout, a
//! hand-written buildpack, a static app, an OCI layout as target, no sandbox (scripts run on
//! the host, as the staging user when root).

use super::options::{tests::options, BuildOptions};
use crate::registry::{Registry, RegistryOptions};
use crate::report::Silent;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub opts: BuildOptions,
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `detect` on index.html, `compile` leaving a file in the cache, `release` with a web command.
fn buildpack(dir: &Path) {
    let bin = dir.join("static/bin");
    write(
        &bin.join("detect"),
        "#!/bin/sh\n[ -f \"$1/index.html\" ] && echo static\n",
        0o755,
    );
    let compile = "#!/bin/sh\necho compiling\necho kept > \"$2/seen\"\n";
    write(&bin.join("compile"), compile, 0o755);
    let release = "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: httpd -f\\n'\n";
    write(&bin.join("release"), release, 0o755);
}

/// The fixture, its stack imported (once per fixture) into `DIR/stack`.
pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // The staging user must pass through every directory above the workspace.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let opts = options(dir.path());
    write(
        &opts.request.source.join("index.html"),
        "<h1>hi</h1>\n",
        0o644,
    );
    buildpack(&opts.request.buildpacks_dir);
    let rootfs = dir.path().join("rootfs");
    write(&rootfs.join("etc/os-release"), "ID=tiny\n", 0o644);
    let registry = Registry::new(RegistryOptions::default(), &[], Arc::new(Silent)).unwrap();
    let work = dir.path().join("import");
    std::fs::create_dir_all(&work).unwrap();
    let stack = &opts.request.stack;
    crate::stack::import(
        &rootfs,
        stack,
        Some("tiny"),
        &registry,
        &work,
        Arc::new(Silent),
    )
    .await
    .unwrap();
    Fixture { dir, opts }
}

/// The fixture's stack resolved and its app staged (in a workspace of its own).
pub(crate) async fn staged(f: &Fixture) -> (super::stack::ResolvedStack, super::stage::Staged) {
    let (o, reporter) = (&f.opts, Arc::new(Silent));
    let ws = super::workspace::prepare(&o.runtime, o.app.disk_mb << 20, &Silent)
        .await
        .unwrap();
    super::intake::intake(&o.request, ws.clone()).await.unwrap();
    let registry = Registry::new(RegistryOptions::default(), &[], reporter.clone()).unwrap();
    let stack = super::stack::resolve(&o.request, &o.runtime, &registry)
        .await
        .unwrap();
    let input = super::stage::StagingInput {
        app: &o.app,
        request: &o.request,
        runtime: &o.runtime,
        cache: &o.cache,
        stack: &stack,
        ws,
    };
    let staged = super::stage::stage(input, reporter).await.unwrap();
    (stack, staged)
}
