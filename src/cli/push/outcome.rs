//! The end of a push. The build is read as types: its state, and for a failed build the
//! failure's kind (the build JSON's `failure.kind`, a dropship extension), which alone decides
//! the exit code through `FailureKind::exit_code`. CF's `error` text is only printed: a
//! reworded message changes no exit code. (The CF error name before " - " would not do: CF
//! names supply, finalize and limit failures all `StagingError`.)

use super::api::Api;
use super::str_field;
use anyhow::{Context, Result};
use dropship::failure::FailureKind;
use dropship::store::BuildState;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
pub(super) struct BuildView {
    pub(super) state: BuildState,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    failure: Option<FailureView>,
    #[serde(default)]
    droplet: Option<GuidRef>,
}

#[derive(Debug, Deserialize)]
struct FailureView {
    /// Kept as JSON: a kind this client does not know (a newer server) is reported, not fatal.
    kind: Value,
}

#[derive(Debug, Deserialize)]
struct GuidRef {
    guid: String,
}

impl BuildView {
    pub(super) fn parse(v: Value) -> Result<BuildView> {
        let text = v.to_string();
        serde_json::from_value(v)
            .with_context(|| format!("the API's build is not one: {text:.300}"))
    }

    /// A failed build's kind; None when the server sent none (an older server) or one this
    /// client does not know.
    pub(super) fn failure_kind(&self) -> Option<FailureKind> {
        let kind = &self.failure.as_ref()?.kind;
        match serde_json::from_value(kind.clone()) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!("the build's failure: {e} (a newer server?): exit code 1");
                None
            }
        }
    }

    /// The process exit code for this build: 0 unless FAILED, then its kind's.
    pub(super) fn exit_code(&self) -> i32 {
        match self.state {
            BuildState::Failed => self.failure_kind().map_or(1, FailureKind::exit_code),
            _ => 0,
        }
    }
}

/// The guids a push made, for `--json`.
pub(super) struct Made {
    pub(super) app: String,
    pub(super) package: String,
    pub(super) build: String,
}

/// Prints the failure (stderr) or the image (stdout, or every guid with `--json`); returns the
/// exit code.
pub(super) async fn report(api: &Api, build: &BuildView, made: Made, as_json: bool) -> Result<i32> {
    if build.state == BuildState::Failed {
        let error = build.error.as_deref().unwrap_or("staging failed");
        eprintln!("dropship: staging failed: {error}");
        return Ok(build.exit_code());
    }
    let droplet = &build
        .droplet
        .as_ref()
        .context("the build is STAGED but names no droplet")?
        .guid;
    let d = api.get(&format!("/v3/droplets/{droplet}")).await?;
    let image = str_field(&d, "image")?;
    // As cf push: the new droplet becomes the app's current one, and the app is started.
    let current = format!("/v3/apps/{}/relationships/current_droplet", made.app);
    let body = json!({"data": {"guid": droplet}});
    api.send_json(reqwest::Method::PATCH, &current, body)
        .await?;
    api.post(&format!("/v3/apps/{}/actions/start", made.app), json!({}))
        .await?;
    if as_json {
        let out = json!({
            "app": made.app, "package": made.package, "build": made.build,
            "droplet": droplet, "image": image,
        });
        println!("{out}");
    } else {
        super::super::report::progress!("==> image {image}");
        println!("{image}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(failure: Value) -> BuildView {
        BuildView::parse(json!({
            "state": "FAILED", "error": "Whatever - reworded at will", "failure": failure,
        }))
        .unwrap()
    }

    #[test]
    fn the_exit_code_comes_from_the_kind_never_the_text() {
        let cases = [
            ("no_app_detected", 222),
            ("compile_failed", 223),
            ("release_failed", 224),
            ("supply_failed", 225),
            ("finalize_failed", 226),
            ("limit_exceeded:compile", 223),
            ("time_expired", 124),
            ("registry", 1),
        ];
        for (kind, code) in cases {
            let b = failed(json!({"kind": kind, "exit_code": 7}));
            assert_eq!(b.exit_code(), code, "{kind}");
        }
    }

    #[test]
    fn no_kind_or_an_unknown_one_exits_1_and_a_staged_build_0() {
        assert_eq!(failed(Value::Null).exit_code(), 1);
        assert_eq!(failed(json!({"kind": "from_the_future"})).exit_code(), 1);
        let staged = json!({"state": "STAGED", "error": null, "droplet": {"guid": "d"}});
        assert_eq!(BuildView::parse(staged).unwrap().exit_code(), 0);
        assert!(BuildView::parse(json!({"state": "HALF_DONE"})).is_err());
    }
}
