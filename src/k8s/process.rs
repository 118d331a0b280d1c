//! What one process type is told beyond the app's settings (CF's per-process `command`,
//! `health_check`, scale): [`ProcessSettings`] in [`AppSpec::overrides`], applied per type
//! when the objects are built. Without overrides every type runs with the app's instances,
//! memory and disk, `web` with the app's health check and the others with `process`.

use super::{invalid, AppSpec, HealthCheck, K8sError, PROCESS_TYPE_WEB};

/// One process type's settings; `None`: the app's (or the type's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSettings {
    /// In place of the droplet's command (for `web`, of the image's Cmd).
    pub command: Option<String>,
    pub instances: Option<u32>,
    pub memory_mb: Option<u64>,
    pub disk_mb: Option<u64>,
    pub health_check: Option<HealthCheck>,
    /// How long an instance may take to start, in seconds (the startup probe's budget).
    pub timeout_s: Option<u32>,
    /// How long one probe may take, in seconds (the probes' `timeoutSeconds`).
    pub invocation_timeout_s: Option<u32>,
}

impl AppSpec {
    /// The spec process type `kind` runs with: the app's, under the type's overrides.
    pub fn for_process(&self, kind: &str) -> AppSpec {
        let mut spec = self.clone();
        if let Some(o) = self.overrides.get(kind) {
            spec.instances = o.instances.unwrap_or(spec.instances);
            spec.memory_mb = o.memory_mb.unwrap_or(spec.memory_mb);
            spec.disk_mb = o.disk_mb.unwrap_or(spec.disk_mb);
            spec.startup_timeout_s = o.timeout_s.unwrap_or(spec.startup_timeout_s);
        }
        spec
    }

    /// The health check of process type `kind`.
    pub fn check_of(&self, kind: &str) -> HealthCheck {
        match self
            .overrides
            .get(kind)
            .and_then(|o| o.health_check.clone())
        {
            Some(h) => h,
            None if kind == PROCESS_TYPE_WEB => self.health_check.clone(),
            None => HealthCheck::Process,
        }
    }

    /// The command process type `kind` runs: its override, else the droplet's for types other
    /// than `web` (whose droplet command is the image's Cmd: `None`).
    pub fn command_of(&self, kind: &str) -> Option<String> {
        let o = self.overrides.get(kind).and_then(|o| o.command.clone());
        match o {
            Some(c) => Some(c),
            None if kind == PROCESS_TYPE_WEB => None,
            None => self.processes.get(kind).cloned(),
        }
    }

    /// The overrides, checked as the app's settings are.
    pub(super) fn validate_overrides(&self) -> Result<(), K8sError> {
        for (kind, o) in &self.overrides {
            let spec = self.for_process(kind);
            if i32::try_from(spec.instances).is_err() || spec.memory_mb == 0 || spec.disk_mb == 0 {
                return Err(invalid(
                    "process scale",
                    format!("{kind:?} is out of range"),
                ));
            }
            if !(1..=3600).contains(&spec.startup_timeout_s)
                || o.invocation_timeout_s
                    .is_some_and(|t| !(1..=3600).contains(&t))
            {
                return Err(invalid(
                    "health check timeout",
                    format!("{kind:?}: expected 1 to 3600 s"),
                ));
            }
            if let Some(HealthCheck::Http { endpoint }) = &o.health_check {
                if !crate::app::valid_endpoint(endpoint) {
                    return Err(invalid(
                        "health check endpoint",
                        format!("{endpoint:?} must start with '/' and contain no whitespace"),
                    ));
                }
            }
            if o.command.as_ref().is_some_and(|c| c.trim().is_empty()) {
                return Err(invalid("process command", format!("{kind:?}: empty")));
            }
        }
        Ok(())
    }
}
