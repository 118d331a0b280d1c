//! Step 2 as the cf CLI does it: the app's settings as a one-application cf manifest,
//! `POST /v3/spaces/:guid/actions/apply_manifest` (the app's space when it exists, else the
//! default one), the `space.apply_manifest` job waited for, then the app found by name. The
//! server makes or updates the app: env (the manifest's variables set, the others kept),
//! buildpacks and stack, the web process's scale, command and health check, and `processes`.

use super::api::{Api, REQUEST_TIMEOUT};
use super::{Settings, POLL};
use anyhow::{bail, Context, Result};
use dropship::app::HealthCheck;
use dropship::cfapi::{self as cf, JobState};
use dropship::intake::manifest::ProcessManifest;
use reqwest::{header, Method};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// How long the server may take to apply a manifest.
const JOB_WAIT: Duration = Duration::from_secs(600);

fn check(hc: &HealthCheck, o: &mut Map<String, Value>) {
    let kind = match hc {
        HealthCheck::Port => "port",
        HealthCheck::Process => "process",
        HealthCheck::Http { endpoint } => {
            o.insert("health-check-http-endpoint".into(), json!(endpoint));
            "http"
        }
    };
    o.insert("health-check-type".into(), json!(kind));
}

fn process(p: &ProcessManifest) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!(p.kind));
    let set = |o: &mut Map<String, Value>, k: &str, v: Option<Value>| {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    };
    set(&mut o, "instances", p.instances.map(|i| json!(i)));
    set(
        &mut o,
        "memory",
        p.memory_mb.map(|m| json!(format!("{m}M"))),
    );
    set(
        &mut o,
        "disk_quota",
        p.disk_mb.map(|d| json!(format!("{d}M"))),
    );
    set(&mut o, "command", p.command.as_ref().map(|c| json!(c)));
    set(&mut o, "timeout", p.timeout_s.map(|t| json!(t)));
    let invocation = p.invocation_timeout_s.map(|t| json!(t));
    set(&mut o, "health-check-invocation-timeout", invocation);
    if let Some(hc) = &p.health_check {
        check(hc, &mut o);
    }
    Value::Object(o)
}

/// The manifest of the one app `s` describes.
pub(super) fn manifest_yaml(s: &Settings) -> Result<String> {
    let web = ProcessManifest {
        kind: String::new(),
        instances: s.scale.instances,
        memory_mb: s.scale.memory_mb,
        disk_mb: s.scale.disk_mb,
        command: s.command.clone(),
        health_check: s.health_check.clone(),
        timeout_s: s.timeout_s,
        invocation_timeout_s: None,
    };
    let Value::Object(mut app) = process(&web) else {
        unreachable!("an object")
    };
    app.remove("type");
    app.insert("name".into(), json!(s.name));
    if !s.env.is_empty() {
        let env: Map<String, Value> = s.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        app.insert("env".into(), Value::Object(env));
    }
    if !s.buildpacks.is_empty() {
        app.insert("buildpacks".into(), json!(s.buildpacks));
    }
    if let Some(stack) = &s.stack {
        app.insert("stack".into(), json!(stack));
    }
    if !s.processes.is_empty() {
        let procs = s.processes.iter().map(process).collect();
        app.insert("processes".into(), Value::Array(procs));
    }
    let doc = json!({"applications": [app]});
    serde_norway::to_string(&doc).context("writing the manifest")
}

impl Api {
    /// The app `s` names, made or updated by the server from its manifest.
    pub(super) async fn apply_manifest(&self, s: &Settings) -> Result<cf::App> {
        let existing = self.find_app(&s.name).await?;
        let space = (existing.as_ref())
            .map(|a| a.relationships.space.data.guid.clone())
            .unwrap_or_else(|| dropship::store::DEFAULT_SPACE_GUID.to_string());
        let yaml = manifest_yaml(s)?;
        let url = self.url(&format!("/v3/spaces/{space}/actions/apply_manifest"));
        let resp = self
            .send(Method::POST, &url, |r| {
                let r = r.timeout(REQUEST_TIMEOUT);
                r.header(header::CONTENT_TYPE, "application/x-yaml")
                    .body(yaml)
            })
            .await?;
        let location = (resp.headers().get(header::LOCATION))
            .and_then(|l| l.to_str().ok())
            .context("apply_manifest answered without a Location")?
            .to_string();
        self.wait_for_job(&location).await?;
        let made = if existing.is_some() { "" } else { " (created)" };
        super::super::report::progress!("==> app {}{made}", s.name);
        (self.find_app(&s.name).await?)
            .with_context(|| format!("the app {:?} is not there after apply_manifest", s.name))
    }

    /// Polls the job at `location` (its path is used: the server's public address may not be
    /// the one reached) until it ends; its warnings on stderr; FAILED is an error with the
    /// job's.
    async fn wait_for_job(&self, location: &str) -> Result<()> {
        let path = match reqwest::Url::parse(location) {
            Ok(u) => u.path().to_string(),
            Err(_) => location.to_string(),
        };
        let started = Instant::now();
        loop {
            let job: cf::Job = self.get(&path).await?;
            match job.state {
                JobState::Complete => {
                    for w in &job.warnings {
                        eprintln!("warning: {}", w.detail);
                    }
                    return Ok(());
                }
                JobState::Failed => {
                    let why = (job.errors.first())
                        .map(|e| e.detail.as_str())
                        .unwrap_or("no reason given");
                    bail!("applying the manifest failed: {why}");
                }
                _ if started.elapsed() > JOB_WAIT => {
                    bail!(
                        "the manifest was not applied within {}s",
                        JOB_WAIT.as_secs()
                    )
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}
