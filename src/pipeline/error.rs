//! How a build fails: the stage that failed, then what it says (file, blob, registry answer).

use crate::image::ImageError;
use crate::intake::IntakeError;
use crate::k8s::K8sError;
use crate::registry::RegistryError;
use crate::stack::StackError;
use crate::staging::buildpacks::BuildpackError;
use crate::staging::StagingError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("intake: {0}")]
    Intake(#[from] IntakeError),
    #[error("staging: {0}")]
    Staging(#[from] StagingError),
    #[error("stack: {0}")]
    Stack(#[from] StackError),
    #[error("push: {0}")]
    Registry(#[from] RegistryError),
    #[error("kubernetes manifests: {0}")]
    K8s(#[from] K8sError),
    #[error("image: {0}")]
    Image(#[from] ImageError),
    #[error("buildpacks: {0}")]
    Buildpacks(#[from] BuildpackError),
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    /// What failed, for machines: CF's error name for staging failures, else the stage.
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::Staging(e) => e.cf_name(),
            BuildError::Intake(_) => "intake",
            BuildError::Stack(_) => "stack",
            BuildError::Registry(_) => "registry",
            BuildError::K8s(_) => "kubernetes",
            BuildError::Image(_) => "image",
            BuildError::Buildpacks(_) => "buildpacks",
            BuildError::Other(_) => "build",
        }
    }

    /// Cloud Foundry's builder exit codes for staging failures; 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::Staging(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// An IO error of dropship's own work, named by what it was doing.
pub(crate) fn other(what: &str) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |e| BuildError::Other(format!("{what}: {e}"))
}

/// Runs blocking work (file system walks, copies, tar, scripts) off the runtime's workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BuildError::Other(format!("internal: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_exit_codes() {
        let e = BuildError::from(StagingError::NoAppDetected { tried: vec![] });
        assert_eq!(e.exit_code(), 222);
        assert_eq!(e.kind(), "NoAppDetectedError");
        let e = BuildError::Other("x".into());
        assert_eq!((e.exit_code(), e.kind()), (1, "build"));
    }

    #[tokio::test]
    async fn blocking_passes_results_and_errors() {
        assert_eq!(blocking(|| Ok(2)).await.unwrap(), 2);
        let err = blocking::<()>(|| Err(other("writing x")(std::io::Error::other("full"))));
        assert_eq!(err.await.unwrap_err().to_string(), "writing x: full");
    }
}
