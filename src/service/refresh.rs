//! A stack's refresh (run as a job by `refresh_jobs`: on request, at start, periodically). The
//! stack's reference is resolved again; every app whose current droplet is on that stack is
//! rebased onto it (`pipeline::rebase`: manifest and config only). A changed image becomes a new
//! droplet (the old one is kept) and the app's current droplet; an unchanged one (the stack did
//! not move) leaves everything as it was. The report says, app by app, what happened.

use super::builds::{image_name, targets};
use super::Shared;
use crate::pipeline::rebase::{self, RebaseFailure, RebaseOptions};
use crate::refs::{ImageRef, LayoutRef};
use crate::registry::Registry;
use crate::report::Silent;
use crate::stack::{Stack, StackCache};
use crate::store::{self, App, Droplet};
use serde::Serialize;
use std::sync::Arc;

/// What a refresh did to one app.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum AppRebase {
    /// A new droplet with the rebased image is the app's current one.
    Rebased {
        app_guid: String,
        name: String,
        previous_droplet_guid: String,
        droplet_guid: String,
        image: String,
    },
    /// The image is already on the stack as it resolves now.
    Unchanged {
        app_guid: String,
        name: String,
        droplet_guid: String,
    },
    /// Nothing changed for the app: why.
    Failed {
        app_guid: String,
        name: String,
        droplet_guid: String,
        kind: &'static str,
        reason: String,
    },
}

/// The refresh of one stack.
#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    pub stack: String,
    pub reference: String,
    pub digest: String,
    pub apps: Vec<AppRebase>,
}

/// The digest stack `name`'s reference resolves to now.
pub(crate) async fn current_digest(state: &Shared, name: &str) -> Result<String, String> {
    let reference = state.config.stacks.get(name).ok_or("no such stack")?;
    let stack_ref: ImageRef = reference
        .parse()
        .map_err(|e: crate::refs::RefError| e.to_string())?;
    stack_digest(state, &stack_ref).await
}

/// Resolves stack `name` and rebases every app whose current droplet is on it.
/// One at a time per stack: the caller holds the stack's claim (`refresh_jobs`).
pub(crate) async fn refresh_stack(state: &Shared, name: &str) -> Result<Refresh, String> {
    let reference = state.config.stacks.get(name).ok_or("no such stack")?;
    let stack_ref: ImageRef = reference
        .parse()
        .map_err(|e: crate::refs::RefError| e.to_string())?;
    let digest = stack_digest(state, &stack_ref).await?;
    let wanted = name.to_string();
    let apps = state
        .db
        .call(move |c| {
            let mut out = Vec::new();
            for app in store::list_apps(c, None)? {
                let Some(guid) = &app.current_droplet else {
                    continue;
                };
                match store::get_droplet(c, guid)? {
                    Some(d) if d.stack == wanted => out.push((app, d)),
                    _ => {}
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for (app, droplet) in apps {
        results.push(rebase_app(state, &app, &droplet, &stack_ref).await);
    }
    Ok(Refresh {
        stack: name.to_string(),
        reference: reference.clone(),
        digest,
        apps: results,
    })
}

fn stack_cache(state: &Shared) -> StackCache {
    StackCache {
        dir: state.paths.stack_cache(),
    }
}

/// The digest the stack's reference resolves to now.
async fn stack_digest(state: &Shared, stack: &ImageRef) -> Result<String, String> {
    let opts = state.registry_options(stack)?;
    let in_use: Vec<_> = match stack {
        ImageRef::Registry(r) => vec![r],
        ImageRef::Layout(_) => vec![],
    };
    let registry = Registry::new(opts, &in_use, Arc::new(Silent)).map_err(|e| e.to_string())?;
    let stack = Stack::open(stack, &registry, &stack_cache(state))
        .await
        .map_err(|e| format!("stack {stack}: {e}"))?;
    Ok(stack.digest().to_string())
}

async fn rebase_app(state: &Shared, app: &App, old: &Droplet, stack: &ImageRef) -> AppRebase {
    let (app_guid, name) = (app.guid.clone(), app.name.clone());
    match rebase_droplet(state, app, old, stack).await {
        Ok(Some(d)) => AppRebase::Rebased {
            app_guid,
            name,
            previous_droplet_guid: old.guid.clone(),
            droplet_guid: d.guid,
            image: d.image,
        },
        Ok(None) => AppRebase::Unchanged {
            app_guid,
            name,
            droplet_guid: old.guid.clone(),
        },
        Err(e) => AppRebase::Failed {
            app_guid,
            name,
            droplet_guid: old.guid.clone(),
            kind: e.kind(),
            reason: e.to_string(),
        },
    }
}

/// The droplet's image (read from the embedded registry) rebased and pushed where a build
/// of the app pushes; the new droplet recorded and made current. `None`: unchanged.
async fn rebase_droplet(
    state: &Shared,
    app: &App,
    old: &Droplet,
    stack: &ImageRef,
) -> Result<Option<Droplet>, RebaseFailure> {
    let guid = store::new_guid();
    let targets = targets(state, &app.name, &guid).map_err(RebaseFailure::Other)?;
    let ImageRef::Layout(local) = targets.all().last().cloned().expect("a target") else {
        return Err(RebaseFailure::Other("no embedded repository".into()));
    };
    let repo = super::builds::repository(&app.name);
    super::build_blobs::localize_image(state, &repo, &old.guid)
        .await
        .map_err(RebaseFailure::Other)?;
    let image = ImageRef::Layout(LayoutRef {
        dir: local.dir.clone(),
        tag: Some(old.guid.clone()),
    });
    let opts = RebaseOptions {
        image,
        stack: stack.clone(),
        target: targets.target.clone(),
        force: false,
        registry: state
            .registry_options(stack)
            .map_err(RebaseFailure::Other)?,
        stack_cache: stack_cache(state),
        work_dir: state.paths.work(),
    };
    let prepared = rebase::prepare(&opts, Arc::new(Silent)).await?;
    if prepared.unchanged() {
        return Ok(None);
    }
    let mut pushed = Vec::new();
    for target in targets.all() {
        pushed.push(rebase::push_to(&prepared, target, &opts, Arc::new(Silent)).await?);
    }
    let out = &pushed[0];
    let t = store::now();
    let droplet = Droplet {
        guid: guid.clone(),
        image: image_name(state, &app.name, &out.image, &out.digest),
        created_at: t.clone(),
        updated_at: t,
        ..old.clone()
    };
    // The droplet's tgz is the same: a link, not a copy (the download serves it).
    let (from, to) = (state.paths.droplet(&old.guid), state.paths.droplet(&guid));
    if let Ok(key) = crate::blob::Key::droplet(&old.guid) {
        let _ = state.blobs.localize(&key).await; // staged on another replica
    }
    if let Err(e) = tokio::fs::hard_link(&from, &to).await {
        tracing::debug!(
            "linking droplet {} to {}: {e}",
            from.display(),
            to.display()
        );
    }
    super::build_blobs::publish(state, &guid, &super::builds::repository(&app.name))
        .await
        .map_err(|e| RebaseFailure::Other(e.message))?;
    let (d, app_guid) = (droplet.clone(), app.guid.clone());
    state
        .db
        .call(move |c| {
            store::insert_droplet(c, &d)?;
            store::set_current_droplet(c, &app_guid, &d.guid)
        })
        .await
        .map_err(|e| RebaseFailure::Other(format!("recording the droplet: {e}")))?;
    Ok(Some(droplet))
}
