//! The end of a push. The build is read as `cfapi::Build`: its state, and for a failed build
//! the failure's kind (the build JSON's `failure.kind`, a dropship extension), which alone
//! decides the exit code through `FailureKind::exit_code`. CF's `error` text is only printed:
//! a reworded message changes no exit code. (The CF error name before " - " would not do: CF
//! names supply, finalize and limit failures all `StagingError`.)

use super::api::Api;
use anyhow::{Context, Result};
use dropship::cfapi::{self as cf, BuildState, GuidRef, OptionalRelationship};
use dropship::failure::FailureKind;
use serde_json::json;

/// The process exit code for a build: 0 unless FAILED, then its failure kind's; 1 when the
/// server sent no kind (an older server) or one this client does not know (a newer one).
pub(super) fn exit_code(build: &cf::Build) -> i32 {
    if build.state != BuildState::Failed {
        return 0;
    }
    match build.failure.as_ref().and_then(|f| f.kind) {
        Some(kind) => FailureKind::exit_code(kind),
        None => {
            tracing::warn!("the build failed with no failure kind known here: exit code 1");
            1
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
pub(super) async fn report(api: &Api, build: &cf::Build, made: Made, as_json: bool) -> Result<i32> {
    if build.state == BuildState::Failed {
        let error = build.error.as_deref().unwrap_or("staging failed");
        eprintln!("dropship: staging failed: {error}");
        return Ok(exit_code(build));
    }
    let droplet = &build
        .droplet
        .as_ref()
        .context("the build is STAGED but names no droplet")?
        .guid;
    let d: cf::Droplet = api.get(&format!("/v3/droplets/{droplet}")).await?;
    let image = d.image.context("the droplet names no image")?;
    // As cf push: the new droplet becomes the app's current one, and the app is started.
    let current = format!("/v3/apps/{}/relationships/current_droplet", made.app);
    let body = OptionalRelationship {
        data: Some(GuidRef::new(droplet)),
    };
    let _: cf::CurrentDroplet = api
        .send_json(reqwest::Method::PATCH, &current, &body)
        .await?;
    let start = format!("/v3/apps/{}/actions/start", made.app);
    let _: cf::App = api.post(&start, &json!({})).await?;
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
    use serde_json::Value;

    /// A build as the server writes it, in `state` with `failure`.
    fn build(state: &str, failure: Value) -> cf::Build {
        let link = json!({"href": "http://h/x"});
        serde_json::from_value(json!({
            "guid": "b", "created_at": "t", "updated_at": "t", "state": state,
            "error": "Whatever - reworded at will", "failure": failure,
            "lifecycle": {"type": "buildpack", "data": {}}, "package": {"guid": "p"},
            "droplet": null, "relationships": {"app": {"data": {"guid": "a"}}},
            "metadata": {"labels": {}, "annotations": {}},
            "links": {"self": link, "app": link},
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
            let b = build("FAILED", json!({"kind": kind, "exit_code": 7}));
            assert_eq!(exit_code(&b), code, "{kind}");
            let read = b.failure.and_then(|f| f.kind).map(|k| k.to_string());
            assert_eq!(read.as_deref(), Some(kind));
        }
    }

    #[test]
    fn no_kind_or_an_unknown_one_exits_1_and_a_staged_build_0() {
        assert_eq!(exit_code(&build("FAILED", Value::Null)), 1);
        assert_eq!(
            exit_code(&build("FAILED", json!({"kind": "from_the_future"}))),
            1
        );
        assert_eq!(exit_code(&build("STAGED", Value::Null)), 0);
        let half = serde_json::to_value(build("STAGED", Value::Null)).unwrap();
        let mut half = half.as_object().unwrap().clone();
        half.insert("state".into(), json!("HALF_DONE"));
        assert!(serde_json::from_value::<cf::Build>(Value::Object(half)).is_err());
    }
}
