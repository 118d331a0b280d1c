//! Staging: the build is created, its log copied to stderr as it is written, and the build
//! polled until its state is final.

use super::api::{causes, Api};
use super::{Settings, POLL};
use anyhow::Result;
use dropship::cfapi::{self as cf, GuidRef, Lifecycle, LifecycleData};
use reqwest::Method;
use std::io::Write;
use std::time::{Duration, Instant};

/// How long a followed log may still stream once its build has ended.
const LOG_GRACE: Duration = Duration::from_secs(10);

impl Api {
    /// `POST /v3/builds` of the package, with the buildpacks and stack asked for; its guid.
    pub(super) async fn create_build(&self, package_guid: &str, s: &Settings) -> Result<String> {
        let asked = !s.buildpacks.is_empty() || s.stack.is_some();
        let body = cf::CreateBuild {
            package: GuidRef::new(package_guid),
            lifecycle: asked.then(|| {
                Lifecycle::buildpack(LifecycleData {
                    buildpacks: Some(s.buildpacks.clone()),
                    stack: s.stack.clone(),
                })
            }),
        };
        let build: cf::Build = self.post("/v3/builds", &body).await?;
        Ok(build.guid)
    }

    /// Copies the staging log to stderr as it is written, until the build ends. The end is the
    /// build's state, polled beside the stream (never a line of the log, which buildpacks
    /// write): once the build is STAGED or FAILED, the server's stream gets a few seconds to
    /// deliver what is left. A broken stream is reported, not fatal.
    pub(super) async fn follow_log(&self, build: &str) {
        if super::super::report::quiet() {
            return;
        }
        let url = self.url(&format!("/v3/builds/{build}/logs?follow=true"));
        let mut resp = match self.send_again(Method::GET, &url, |r| r).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("no staging log: {e:#}");
                return;
            }
        };
        let mut err = std::io::stderr();
        let mut poll = tokio::time::interval(POLL);
        let mut deadline: Option<Instant> = None;
        loop {
            let grace = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                chunk = resp.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        let _ = err.write_all(&bytes);
                        let _ = err.flush();
                    }
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!("the staging log broke off: {}", causes(&e));
                        return;
                    }
                },
                _ = poll.tick(), if deadline.is_none() => {
                    if self.build_ended(build).await {
                        deadline = Some(Instant::now() + LOG_GRACE);
                    }
                }
                () = grace => return,
            }
        }
    }

    /// Whether the build is STAGED or FAILED (a failed poll says no).
    async fn build_ended(&self, guid: &str) -> bool {
        match self.build(guid).await {
            Ok(b) => b.state.is_final(),
            Err(_) => false,
        }
    }

    pub(super) async fn wait_for_build(&self, guid: &str) -> Result<cf::Build> {
        loop {
            let b = self.build(guid).await?;
            if b.state.is_final() {
                return Ok(b);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn build(&self, guid: &str) -> Result<cf::Build> {
        self.get(&format!("/v3/builds/{guid}")).await
    }
}
