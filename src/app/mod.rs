//! The app: its settings (what `cf push` and the manifest say of it) and its identity, shared
//! by staging (the environment buildpacks see) and Kubernetes (names, labels, the spec). Pure.
//!
//! Layout: this file holds the settings ([`App`]); `identity.rs` the GUID, version, space and
//! org derived from the name ([`AppIdentity`]); `health.rs` the health check ([`HealthCheck`]).

mod health;
mod identity;

pub(crate) use health::valid_endpoint;
pub use health::{HealthCheck, HealthCheckError};
pub use identity::{app_guid, name_uuid, version, AppIdentity, DEFAULT_SPACE_ORG};

/// What the app asks of the platform, from flags and the manifest (CLI) or the app's record
/// (service). The same settings bound its staging and shape its Kubernetes objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    /// The Kubernetes namespace; part of the app's identity.
    pub namespace: Option<String>,
    pub instances: u32,
    /// Memory of each instance and of staging.
    pub memory_mb: u64,
    /// Disk of each instance and of staging (app, deps, cache, /tmp).
    pub disk_mb: u64,
    pub health_check: HealthCheck,
    /// Variables for staging and running, in the order given.
    pub env: Vec<(String, String)>,
    /// The web process's start command in place of the buildpack's (the manifest's
    /// `command`): the image's Cmd.
    pub command: Option<String>,
    /// How long an instance may take to start, in seconds (the manifest's `timeout`); `None`:
    /// Cloud Foundry's 60.
    pub health_check_timeout: Option<u32>,
}

impl App {
    /// Cloud Foundry's defaults for an app named `name`.
    pub fn named(name: impl Into<String>) -> App {
        App {
            name: name.into(),
            namespace: None,
            instances: 1,
            memory_mb: 1024,
            disk_mb: 1024,
            health_check: HealthCheck::Port,
            env: Vec::new(),
            command: None,
            health_check_timeout: None,
        }
    }

    pub fn identity(&self) -> AppIdentity {
        AppIdentity::new(self.namespace.as_deref(), &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_follows_name_and_namespace() {
        let mut app = App::named("shop");
        let id = app.identity();
        app.memory_mb = 4096;
        app.env.push(("A".into(), "B".into()));
        assert_eq!(app.identity(), id, "settings are not identity");
        app.namespace = Some("prod".into());
        assert_ne!(app.identity().guid, id.guid);
    }
}
