//! A build's blobs: whichever replica stages it fetches the package from the blob store when it
//! is not in its data dir, and puts the droplet and the image (its registry blobs and index)
//! back, so that any replica serves them. Nothing to do with the data dir as the store.

use super::Shared;
use crate::blob::Key;
use crate::failure::{BuildFailure, FailureKind};

fn other(e: impl std::fmt::Display) -> BuildFailure {
    BuildFailure::new(FailureKind::Other, e.to_string())
}

/// Package `guid`'s zip in the data dir (fetched, temp file and rename, when missing).
pub async fn fetch_package(state: &Shared, guid: &str) -> Result<(), BuildFailure> {
    let key = Key::package(guid).map_err(other)?;
    match state.blobs.localize(&key).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(other(format!(
            "the bits of package {guid} are not in the blob store: upload them again"
        ))),
        Err(e) => Err(other(format!("fetching package {guid}: {e}"))),
    }
}

/// Droplet `guid`'s tgz and repository `repo`'s new blobs and index, into the store.
pub async fn publish(state: &Shared, droplet: &str, repo: &str) -> Result<(), BuildFailure> {
    let key = Key::droplet(droplet).map_err(other)?;
    if let Err(e) = state.blobs.publish(&key).await {
        return Err(other(format!("storing droplet {droplet}: {e}")));
    }
    publish_image(state, repo).await
}

/// Repository `repo`'s new blobs and index, into the store. The index is read, merged and
/// written back under the repository's lock: two replicas publishing builds of one app at once
/// keep both tags.
pub async fn publish_image(state: &Shared, repo: &str) -> Result<(), BuildFailure> {
    if !state.blobs.is_shared() {
        return Ok(());
    }
    let layout = state.paths.repository(repo);
    let name = format!("registry-index:{repo}");
    super::locks::hold(state, &name, async {
        super::registry::publish(&state.blobs, &layout, repo).await
    })
    .await
    .and_then(|r| r)
    .map_err(|e| other(format!("storing the image of {repo}: {e}")))
}

/// The image tagged `tag` of repository `repo` in the local layout (a rebase reads it there),
/// fetched from the store when another replica built it.
pub async fn localize_image(state: &Shared, repo: &str, tag: &str) -> Result<(), String> {
    let layout = state.paths.repository(repo);
    super::registry::localize(&state.blobs, &layout, repo, tag)
        .await
        .map_err(|e| format!("fetching the image {repo}:{tag}: {e}"))
}
