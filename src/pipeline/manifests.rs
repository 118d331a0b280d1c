//! The Kubernetes manifests of the built image, written to `DIR/<app>.yaml`.

use super::error::{blocking, other, BuildError};
use crate::app::App;
use crate::k8s::{self, AppSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Writes the app's objects for `image` (by digest) and its process types; the YAML is made
/// here (pure), the directory and file off the runtime.
pub async fn write(
    app: &App,
    dir: &Path,
    image: &str,
    processes: &BTreeMap<String, String>,
) -> Result<PathBuf, BuildError> {
    let yaml = k8s::manifests(&AppSpec::for_app(app, image, processes))?.to_yaml()?;
    let file = k8s::sanitize_name(&app.name, "app");
    let (dir, path) = (dir.to_path_buf(), dir.join(format!("{file}.yaml")));
    blocking(move || {
        std::fs::create_dir_all(&dir).map_err(other("creating the manifests dir"))?;
        std::fs::write(&path, yaml).map_err(other("writing the manifests"))?;
        Ok(path)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str =
        "reg.example.com/shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn writes_one_file_named_after_the_app() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = App::named("My Shop");
        app.instances = 2;
        let processes = BTreeMap::from([("web".to_string(), "run".to_string())]);
        let path = write(&app, &dir.path().join("k8s"), IMAGE, &processes)
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("k8s/my-shop.yaml"));
        let yaml = std::fs::read_to_string(path).unwrap();
        assert!(yaml.contains("kind: StatefulSet") && yaml.contains("kind: PodDisruptionBudget"));
    }

    #[tokio::test]
    async fn an_image_by_tag_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = write(&App::named("a"), dir.path(), "reg/a:1", &BTreeMap::new()).await;
        assert_eq!(e.unwrap_err().kind(), "kubernetes");
    }
}
