//! The store's rows as Cloud Foundry v3 resources (`crate::cfapi`): apps, packages, builds
//! and droplets, with links to the routes the service has.

use crate::cfapi::app::{AppLinks, AppRelationships, SpaceRelationships};
use crate::cfapi::build::BuildLinks;
use crate::cfapi::droplet::DropletLinks;
use crate::cfapi::package::{PackageData, PackageLinks};
use crate::cfapi::{self as cf, GuidRef, Lifecycle, LifecycleData, Link, Metadata, Relationship};
use crate::store::{App, Build, Droplet, Package};

fn of_app(guid: &str) -> AppRelationships {
    AppRelationships {
        app: Relationship::to(guid),
    }
}

pub fn app(a: &App, base: &str, stack: &str) -> cf::App {
    let to = |path: &str| Link::to(base, &format!("/v3/apps/{}{path}", a.guid));
    cf::App {
        guid: a.guid.clone(),
        name: a.name.clone(),
        state: a.state,
        created_at: a.created_at.clone(),
        updated_at: a.updated_at.clone(),
        lifecycle: Lifecycle::buildpack(LifecycleData {
            buildpacks: Some(a.buildpacks.clone()),
            stack: Some(a.stack.as_deref().unwrap_or(stack).to_string()),
        }),
        relationships: SpaceRelationships {
            space: Relationship::to(&a.space_guid),
        },
        metadata: Metadata::default(),
        links: AppLinks {
            this: to(""),
            space: Link::to(base, &format!("/v3/spaces/{}", a.space_guid)),
            processes: to("/processes"),
            packages: to("/packages"),
            droplets: to("/droplets"),
            builds: Some(to("/builds")),
            environment_variables: to("/environment_variables"),
            // Only when there is one: every link a resource gives resolves.
            current_droplet: a.current_droplet.as_ref().map(|_| to("/droplets/current")),
            start: Some(Link::with_method(
                base,
                &format!("/v3/apps/{}/actions/start", a.guid),
                "POST",
            )),
            stop: Some(Link::with_method(
                base,
                &format!("/v3/apps/{}/actions/stop", a.guid),
                "POST",
            )),
        },
    }
}

pub fn package(p: &Package, base: &str) -> cf::Package {
    let path = format!("/v3/packages/{}", p.guid);
    cf::Package {
        guid: p.guid.clone(),
        kind: "bits".into(),
        data: PackageData {
            checksum: cf::Checksum {
                kind: "sha256".into(),
                value: p.checksum.clone(),
            },
            error: p.error.clone(),
        },
        state: p.state,
        created_at: p.created_at.clone(),
        updated_at: p.updated_at.clone(),
        relationships: of_app(&p.app_guid),
        metadata: Metadata::default(),
        links: PackageLinks {
            this: Link::to(base, &path),
            upload: Link::with_method(base, &format!("{path}/upload"), "POST"),
            app: Link::to(base, &format!("/v3/apps/{}", p.app_guid)),
        },
    }
}

/// A build as CF's v3 resource, plus `failure` (a dropship extension, null unless FAILED):
/// `{"kind": "compile_failed", "name": "BuildpackCompileFailed", "exit_code": 223}`. Clients
/// read the kind, never `error`'s text.
pub fn build(b: &Build, base: &str) -> cf::Build {
    let path = format!("/v3/builds/{}", b.guid);
    cf::Build {
        guid: b.guid.clone(),
        created_at: b.created_at.clone(),
        updated_at: b.updated_at.clone(),
        state: b.state,
        error: b.failure.as_ref().map(|f| f.cf_error()),
        failure: b.failure.as_ref().map(|f| cf::Failure::of(f.kind)),
        lifecycle: Lifecycle::buildpack(LifecycleData {
            buildpacks: Some(b.buildpacks.clone()),
            stack: Some(b.stack.clone()),
        }),
        package: GuidRef::new(&b.package_guid),
        droplet: b.droplet_guid.as_ref().map(GuidRef::new),
        relationships: of_app(&b.app_guid),
        metadata: Metadata::default(),
        links: BuildLinks {
            this: Link::to(base, &path),
            app: Link::to(base, &format!("/v3/apps/{}", b.app_guid)),
            logs: Some(Link::to(base, &format!("{path}/logs"))),
            droplet: (b.droplet_guid.as_ref())
                .map(|d| Link::to(base, &format!("/v3/droplets/{d}"))),
        },
    }
}

/// The droplet's buildpacks as the pipeline recorded them (`key`, `name`, `version`).
fn droplet_buildpacks(d: &Droplet) -> Vec<cf::DropletBuildpack> {
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|s| s.as_str()).map(String::from);
    let recorded = d.buildpacks.as_array().into_iter().flatten();
    recorded
        .map(|b| {
            let name = text(b, "name");
            let detected = name.as_deref() == Some(d.detected_buildpack.as_str());
            cf::DropletBuildpack {
                name: text(b, "key").unwrap_or_default(),
                detect_output: detected.then(|| d.detected_buildpack.clone()),
                buildpack_name: name,
                version: text(b, "version"),
            }
        })
        .collect()
}

pub fn droplet(d: &Droplet, base: &str) -> cf::Droplet {
    let path = format!("/v3/droplets/{}", d.guid);
    let app = format!("/v3/apps/{}", d.app_guid);
    cf::Droplet {
        guid: d.guid.clone(),
        state: cf::DropletState::Staged,
        error: None,
        lifecycle: Lifecycle::buildpack(LifecycleData::default()),
        execution_metadata: String::new(),
        process_types: d.process_types.clone(),
        checksum: cf::Checksum {
            kind: "sha256".into(),
            value: Some(d.checksum.trim_start_matches("sha256:").to_string()),
        },
        buildpacks: droplet_buildpacks(d),
        stack: Some(d.stack.clone()),
        image: Some(d.image.clone()),
        created_at: d.created_at.clone(),
        updated_at: d.updated_at.clone(),
        relationships: of_app(&d.app_guid),
        metadata: Metadata::default(),
        links: DropletLinks {
            this: Link::to(base, &path),
            package: Link::to(base, &format!("/v3/packages/{}", d.package_guid)),
            app: Link::to(base, &app),
            assign_current_droplet: Link::with_method(
                base,
                &format!("{app}/relationships/current_droplet"),
                "PATCH",
            ),
            download: Some(Link::to(base, &format!("{path}/download"))),
            kubernetes: Some(Link::to(base, &format!("{path}/kubernetes"))),
        },
    }
}
