//! What a build is asked to do, in five parts: the request (source, stack, buildpacks), the
//! app's settings, the outputs, the buildpack cache policy and the runtime environment. The
//! CLI fills them from flags and the manifest, the service from its API and configuration.

use super::cache::CachePolicy;
use super::error::BuildError;
use crate::app::App;
use crate::intake::Limits;
pub use crate::layer::Codec;
use crate::refs::ImageRef;
use crate::registry::RegistryOptions;
use crate::stack::StackCache;
use crate::staging::sandbox::SandboxKind;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub request: BuildRequest,
    pub app: App,
    pub outputs: Outputs,
    pub cache: CachePolicy,
    pub runtime: Runtime,
}

/// What to build: the app's source, the stack it runs on, the buildpacks that stage it.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub source: PathBuf,
    pub stack: ImageRef,
    /// Explicit buildpacks (names or paths): no detection, last one is final.
    pub buildpacks: Vec<String>,
    pub buildpacks_dir: PathBuf,
    /// Budgets of the source's intake.
    pub limits: Limits,
}

/// Where the image goes.
#[derive(Debug, Clone)]
pub struct Targets {
    pub target: ImageRef,
    /// More places the same image goes (the service keeps a copy for its own registry endpoint).
    pub also: Vec<ImageRef>,
}

impl Targets {
    /// The target, then the others.
    pub fn all(&self) -> impl Iterator<Item = &ImageRef> {
        std::iter::once(&self.target).chain(&self.also)
    }
}

/// What the build leaves behind besides the image.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub targets: Targets,
    /// Kubernetes manifests written to `DIR/<app>.yaml`.
    pub manifests_dir: Option<PathBuf>,
    /// A copy of the droplet tgz.
    pub droplet: Option<PathBuf>,
    /// How the image's new layers are compressed (the droplet tgz is always gzip).
    pub compression: Codec,
}

/// Where and how the build runs on this host.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// Where the per-build temporary directory is made.
    pub work_dir: PathBuf,
    pub stack_cache: StackCache,
    pub registry: RegistryOptions,
    pub sandbox: SandboxKind,
    /// `--sandbox none` as root on a host without control groups: scripts could leave
    /// processes behind; run anyway (the host is a throw-away container).
    pub host_is_container: bool,
    pub staging_timeout: Duration,
    /// Processes (and threads) staging may run at once.
    pub staging_pids: u64,
    /// Set to stop this build's scripts (killed with what they started): the build fails as
    /// interrupted. The service's workers set it when the build is no longer theirs.
    pub stop: Arc<AtomicBool>,
}

impl BuildOptions {
    /// Refuses what cannot work before any work is done.
    pub fn check(&self) -> Result<(), BuildError> {
        let layout = matches!(self.outputs.targets.target, ImageRef::Layout(_));
        if self.outputs.manifests_dir.is_some() && layout {
            return Err(BuildError::Other(
                "--manifests needs a registry target: a Kubernetes cluster cannot pull from an oci: layout".into(),
            ));
        }
        Ok(())
    }

    /// The registries this build talks to: the stack's and the targets'.
    pub fn registries(&self) -> Vec<&crate::refs::RegistryRef> {
        std::iter::once(&self.request.stack)
            .chain(self.outputs.targets.all())
            .filter_map(|r| match r {
                ImageRef::Registry(r) => Some(r),
                ImageRef::Layout(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Options for a build of `source` into an OCI layout under `dir`, without a sandbox.
    pub(crate) fn options(dir: &std::path::Path) -> BuildOptions {
        BuildOptions {
            request: BuildRequest {
                source: dir.join("app"),
                stack: format!("oci:{}:tiny", dir.join("stack").display())
                    .parse()
                    .unwrap(),
                buildpacks: vec![],
                buildpacks_dir: dir.join("buildpacks"),
                limits: Limits::default(),
            },
            app: App::named("shop"),
            outputs: Outputs {
                targets: Targets {
                    target: format!("oci:{}:v1", dir.join("out").display())
                        .parse()
                        .unwrap(),
                    also: vec![],
                },
                manifests_dir: None,
                droplet: None,
                compression: Codec::Gzip,
            },
            cache: CachePolicy::default(),
            runtime: Runtime {
                work_dir: dir.join("work"),
                stack_cache: StackCache {
                    dir: dir.join("stacks"),
                },
                registry: RegistryOptions::default(),
                sandbox: SandboxKind::None,
                host_is_container: true,
                staging_timeout: Duration::from_secs(60),
                staging_pids: 64,
                stop: Arc::default(),
            },
        }
    }

    #[test]
    fn manifests_need_a_registry_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path());
        assert!(o.check().is_ok());
        o.outputs.manifests_dir = Some(dir.path().join("k8s"));
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("--manifests needs a registry target"), "{e}");
        o.outputs.targets.target = "docker://localhost:5000/shop:v1".parse().unwrap();
        assert!(o.check().is_ok());
        assert_eq!(o.registries().len(), 1, "the stack is a layout");
    }
}
