//! The platform's resources read from samples as Cloud Foundry's v3 documentation shows
//! them (organizations, spaces, stacks, buildpacks, jobs, lists, errors, the root and info),
//! checked field by field, then written and read back unchanged.

use super::tests::{link, round_trip};
use super::*;
use serde_json::json;

#[test]
fn an_org_and_a_space_as_cf_documents_them() {
    let o: Organization = round_trip(json!({
        "guid": "24637893-3b77-489d-bb79-8466f0d88b52", "name": "my-organization",
        "created_at": "2017-02-01T01:33:58Z", "updated_at": "2017-02-01T01:33:58Z",
        "suspended": false,
        "relationships": {"quota": {"data": {"guid": "b7887f5c"}}},
        "links": {"self": link("/v3/organizations/2"), "domains": link("/v3/organizations/2/domains"),
                  "quota": link("/v3/organization_quotas/b")},
        "metadata": {"labels": {}, "annotations": {}},
    }));
    assert_eq!((o.name.as_str(), o.suspended), ("my-organization", false));
    assert_eq!(o.relationships.quota.data.unwrap().guid, "b7887f5c");
    let s: Space = round_trip(json!({
        "guid": "885735b5-aea4-4cf5-8e44-961af0e41920", "name": "my-space",
        "created_at": "2017-02-01T01:33:58Z", "updated_at": "2017-02-01T01:33:58Z",
        "relationships": {"organization": {"data": {"guid": "e00705b9"}}, "quota": {"data": null}},
        "links": {"self": link("/v3/spaces/8"), "features": link("/v3/spaces/8/features"),
                  "organization": link("/v3/organizations/e"),
                  "apply_manifest": {"href": "https://api.example.org/v3/spaces/8/actions/apply_manifest", "method": "POST"}},
        "metadata": {"labels": {}, "annotations": {}},
    }));
    assert_eq!(s.relationships.organization.data.guid, "e00705b9");
    assert_eq!((s.relationships.quota.data, s.links.apps), (None, None));
    assert!(s.links.apply_manifest.is_some());
}

#[test]
fn a_job_a_list_and_an_error_as_cf_documents_them() {
    let j: Job = round_trip(json!({
        "guid": "b19ae525-cbd3-4155-b156-dc0c2a431b4c", "operation": "app.delete",
        "state": "FAILED",
        "errors": [{"code": 10008, "title": "CF-UnprocessableEntity", "detail": "something went wrong"}],
        "warnings": [{"detail": "warning! warning!"}],
        "created_at": "2016-10-19T20:25:04Z", "updated_at": "2016-11-08T16:41:26Z",
        "links": {"self": link("/v3/jobs/b")},
    }));
    assert_eq!((j.state, j.errors[0].code), (JobState::Failed, 10008));
    assert_eq!(j.warnings[0].detail, "warning! warning!");
    let l: Paginated<serde_json::Value> = round_trip(json!({
        "pagination": {"total_results": 3, "total_pages": 2,
                       "first": link("/v3/apps?page=1&per_page=2"),
                       "last": link("/v3/apps?page=2&per_page=2"),
                       "next": link("/v3/apps?page=2&per_page=2"), "previous": null},
        "resources": [{}, {}],
    }));
    assert_eq!((l.pagination.total_results, l.resources.len()), (3, 2));
    assert!(l
        .pagination
        .next
        .unwrap()
        .href
        .ends_with("page=2&per_page=2"));
    assert_eq!((l.pagination.previous, l.included), (None, None));
    let e: ErrorBody = round_trip(json!({"errors": [
        {"code": 10010, "title": "CF-ResourceNotFound", "detail": "App not found"}]}));
    assert_eq!(e.errors[0].title, "CF-ResourceNotFound");
}

#[test]
fn the_root_and_info_as_cf_documents_them() {
    let r: Root = round_trip(json!({"links": {
        "self": {"href": "https://api.example.com"},
        "bits_service": null,
        "cloud_controller_v2": {"href": "https://api.example.com/v2", "meta": {"version": "2.155.0"}},
        "cloud_controller_v3": {"href": "https://api.example.com/v3", "meta": {"version": "3.90.0"}},
        "network_policy_v0": {"href": "https://api.example.com/networking/v0/external"},
        "network_policy_v1": {"href": "https://api.example.com/networking/v1/external"},
        "login": {"href": "https://login.example.com"}, "uaa": {"href": "https://uaa.example.com"},
        "credhub": null, "routing": {"href": "https://api.example.com/routing"},
        "logging": {"href": "wss://doppler.example.com:443"},
        "log_cache": {"href": "https://log-cache.example.com"},
        "log_stream": {"href": "https://log-stream.example.com"},
        "app_ssh": {"href": "ssh.example.com:2222",
                    "meta": {"host_key_fingerprint": "Y411oivJwZCUQnXHq83mdM5SKCK4ftyoSXI31RRe4Zs",
                             "oauth_client": "ssh-proxy"}},
    }}));
    let v3 = r.links.cloud_controller_v3.unwrap();
    assert_eq!(v3.meta.unwrap().version.as_deref(), Some("3.90.0"));
    assert_eq!(r.links.uaa.unwrap().href, "https://uaa.example.com");
    assert_eq!(r.links.credhub, None);
    let ssh = r.links.app_ssh.unwrap().meta.unwrap();
    assert_eq!(ssh.oauth_client.as_deref(), Some("ssh-proxy"));
    let i: Info = round_trip(json!({
        "build": "afa73e3fd", "cli_version": {"minimum": "6.22.0", "recommended": "latest"},
        "custom": {"arbitrary": "stuff"}, "description": "Put your apps here!",
        "name": "Cloud Foundry", "version": 123, "osbapi_version": "2.15",
        "links": {"self": link("/v3/info"), "support": {"href": "https://support.example.com"}},
    }));
    assert_eq!(
        (i.version, i.cli_version.minimum.as_deref()),
        (123, Some("6.22.0"))
    );
    assert_eq!(i.custom["arbitrary"], "stuff");
}

#[test]
fn a_stack_and_a_buildpack_as_cf_documents_them() {
    let s: Stack = round_trip(json!({
        "guid": "11c916c9-c2f9-440e-8e73-102e79c4704d", "name": "my-stack",
        "description": "Here is my stack!", "build_rootfs_image": "my-stack",
        "run_rootfs_image": "my-stack", "default": true,
        "created_at": "2018-11-09T22:43:28Z", "updated_at": "2018-11-09T22:43:28Z",
        "metadata": {"labels": {}, "annotations": {}},
        "links": {"self": link("/v3/stacks/1")},
    }));
    assert_eq!((s.name.as_str(), s.default), ("my-stack", true));
    assert_eq!(s.run_rootfs_image.as_deref(), Some("my-stack"));
    let b: Buildpack = round_trip(json!({
        "guid": "fd35633f-5c5c-4e4e-a5a9-0722c970a9d2", "name": "ruby_buildpack",
        "state": "AWAITING_UPLOAD", "filename": null, "stack": "windows64", "position": 42,
        "lifecycle": "buildpack", "enabled": true, "locked": false,
        "created_at": "2016-03-18T23:26:46Z", "updated_at": "2016-10-17T20:00:42Z",
        "metadata": {"labels": {}, "annotations": {}},
        "links": {"self": link("/v3/buildpacks/f"),
                  "upload": {"href": "https://api.example.org/v3/buildpacks/f/upload", "method": "POST"}},
    }));
    assert_eq!(
        (b.position, b.stack.as_deref(), b.locked),
        (42, Some("windows64"), false)
    );
}
