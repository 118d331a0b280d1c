//! The service's stack refresh: a job (202, Location, `result` per app) on request, at start
//! and every `[stacks] refresh_interval`.

use super::*;

/// `POST /v3/stacks/STACK/actions/refresh`: 202 and the job's Location, then the job polled
/// until it ends; the ended job.
async fn refresh_job(api: &crate::support::api::Api, stack: &str) -> serde_json::Value {
    use crate::support::api::*;
    let path = format!("/v3/stacks/{stack}/actions/refresh");
    let r = api.http.post(api.svc.url(&path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let job: serde_json::Value = r.json().await.unwrap();
    assert_eq!(job["operation"], "stack.refresh", "{job}");
    assert!(location.ends_with(&format!("/v3/jobs/{}", job["guid"].as_str().unwrap())));
    let job_path = location.trim_start_matches(&api.svc.base()).to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (s, j) = api.get(&job_path).await;
        assert_eq!(s, 200, "{j}");
        if j["state"] != "PROCESSING" {
            return j;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{j}\n{}",
            api.svc.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The service: the default stack's tag moves to a patched image; a refresh rebases the app's
/// current droplet into a new one (the old kept) whose Kubernetes objects name the new image.
#[tokio::test(flavor = "multi_thread")]
async fn a_stack_refresh_rebases_every_app_on_it() {
    use crate::support::api::*;
    let api = Api::start(&[]);
    let (app, pkg) = api
        .ready_package("refreshed", &[("index.html", b"<h1>hi</h1>\n", 0o644)])
        .await;
    let old = api.staged(&pkg).await;
    let (_, d) = api.get(&format!("/v3/droplets/{old}")).await;
    let old_image = d["image"].as_str().unwrap().to_string();
    api.set_current_droplet(&app, &old).await;

    // Nothing moved yet: nothing to do.
    let j = refresh_job(&api, "busybox").await;
    assert_eq!(j["state"], "COMPLETE", "{j}");
    let r = &j["result"];
    assert_eq!(r["apps"][0]["result"], "unchanged", "{r}");
    let (s, _) = api
        .post_json("/v3/stacks/nope/actions/refresh", &serde_json::json!({}))
        .await;
    assert_eq!(s, 404);

    // The stack's tag moves to a patched image.
    let tmp = tempdir();
    let stack_repo = api.svc.data_dir().join("registry/stacks/busybox");
    let target = format!("oci:{}:latest", stack_repo.display());
    import(&rootfs(tmp.path(), "patched"), &target, "busybox");
    let j = refresh_job(&api, "busybox").await;
    let r = &j["result"];
    assert_eq!(r["apps"].as_array().map(Vec::len), Some(1), "{j}");
    let one = &r["apps"][0];
    assert_eq!(one["result"], "rebased", "{r}");
    assert_eq!(
        (
            one["app_guid"].as_str(),
            one["previous_droplet_guid"].as_str()
        ),
        (Some(app.as_str()), Some(old.as_str()))
    );
    let new = one["droplet_guid"].as_str().unwrap().to_string();
    let new_image = one["image"].as_str().unwrap().to_string();
    assert_ne!(new_image, old_image);

    let (s, c) = api.get(&format!("/v3/apps/{app}/droplets/current")).await;
    assert_eq!((s, c["guid"].as_str()), (200, Some(new.as_str())), "{c}");
    let (s, d) = api.get(&format!("/v3/droplets/{new}")).await;
    assert_eq!(
        (s, d["image"].as_str()),
        (200, Some(new_image.as_str())),
        "{d}"
    );
    let (s, _) = api.get(&format!("/v3/droplets/{old}")).await;
    assert_eq!(s, 200, "the old droplet is kept");
    let (s, _, yaml) = api
        .text(&format!("/v3/droplets/{new}/kubernetes"), None)
        .await;
    assert_eq!(s, 200);
    assert!(yaml.contains(&format!("image: {new_image}")), "{yaml}");

    // The new image, read back from the embedded registry: the patched stack under the app.
    let before = skopeo_inspect(&format!("docker://{old_image}"), true);
    let after = skopeo_inspect(&format!("docker://{new_image}"), true);
    let (b, a) = (layer_digests(&before), layer_digests(&after));
    assert_ne!(b[0], a[0]);
    assert_eq!(b[1..], a[1..]);
}

/// The service pushing to a registry, its stack in that registry: the stack's tag moves, the
/// refresh pushes the manifest and config (the stack layer mounted, no app bytes), and the new
/// image runs under podman with the patched file.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_through_a_registry_runs_the_patched_stack() {
    use crate::support::api::*;
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = format!("docker://{}/stacks/busybox:latest", reg.host());
    import(&rootfs(&tmp.path().join("a"), "v1"), &stack, "busybox");
    let prefix = format!("{}/pushed", reg.host());
    let api = Api::start(&["--stack", &stack, "--registry", &prefix]);
    let page = b"the app\n";
    let procfile = b"web: cp /etc/patch-level public/patch.txt && httpd -f -p $PORT -h public\n";
    let files = [
        ("public/index.html", &page[..], 0o644),
        ("Procfile", &procfile[..], 0o644),
    ];
    let (app, pkg) = api.ready_package("patchy", &files).await;
    let binary = serde_json::json!({"type": "buildpack", "data": {"buildpacks": ["binary"]}});
    let (_, b) = api.build(&pkg, Some(binary)).await;
    let b = api
        .wait_build(b["guid"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(
        b.state,
        dropship::cfapi::BuildState::Staged,
        "{b:?}\n{}",
        api.svc.log()
    );
    let old = b.droplet.as_ref().unwrap().guid.clone();
    api.set_current_droplet(&app, &old).await;

    import(
        &rootfs(&tmp.path().join("b"), "v2-patched"),
        &stack,
        "busybox",
    );
    let uploads = reg.blob_uploads("pushed/patchy");
    let j = refresh_job(&api, "busybox").await;
    let r = &j["result"];
    assert_eq!(
        (j["state"].as_str(), r["apps"][0]["result"].as_str()),
        (Some("COMPLETE"), Some("rebased")),
        "{j}"
    );
    let image = r["apps"][0]["image"].as_str().unwrap().to_string();
    assert!(
        image.starts_with(&format!("{prefix}/patchy@sha256:")),
        "{image}"
    );
    assert_eq!(
        reg.blob_uploads("pushed/patchy") - uploads,
        1,
        "the config alone"
    );

    let podman = Podman::new();
    let port = free_port();
    let c = podman.run(&image, port);
    let patch = wait_for_page(port, "/patch.txt", Duration::from_secs(30));
    assert_eq!(patch.as_deref(), Some("v2-patched\n"), "{}", c.logs());
}

/// `[stacks] refresh_interval`: no request needed. The service checks at start and every
/// second; once the default stack's tag moves, the app's current droplet is rebased; a stack
/// that did not move since its last refresh starts none (two in all: at start, after the move).
#[tokio::test(flavor = "multi_thread")]
async fn a_periodic_check_rebases_once_the_stack_moved() {
    use crate::support::api::*;
    let tmp = tempdir();
    let config = tmp.path().join("dropship.toml");
    std::fs::write(&config, "[stacks]\nrefresh_interval = \"1s\"\n").unwrap();
    let api = Api::start(&["--config", config.to_str().unwrap()]);
    let (app, pkg) = api
        .ready_package("watched", &[("index.html", b"<h1>hi</h1>\n", 0o644)])
        .await;
    let old = api.staged(&pkg).await;
    api.set_current_droplet(&app, &old).await;
    // A few checks of an unmoved stack: the current droplet stays.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let current = format!("/v3/apps/{app}/droplets/current");
    let (_, c) = api.get(&current).await;
    assert_eq!(c["guid"].as_str(), Some(old.as_str()), "{c}");

    let stack_repo = api.svc.data_dir().join("registry/stacks/busybox");
    let target = format!("oci:{}:latest", stack_repo.display());
    import(&rootfs(tmp.path(), "patched"), &target, "busybox");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let new = loop {
        let (_, c) = api.get(&current).await;
        let guid = c["guid"].as_str().unwrap_or_default().to_string();
        if guid != old {
            break guid;
        }
        assert!(std::time::Instant::now() < deadline, "{}", api.svc.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (s, d) = api.get(&format!("/v3/droplets/{new}")).await;
    assert_eq!(s, 200, "{d}");
    let (s, _) = api.get(&format!("/v3/droplets/{old}")).await;
    assert_eq!(s, 200, "the old droplet is kept");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = api.svc.log().matches("stack check: refreshing").count();
    assert_eq!(started, 2, "{}", api.svc.log());
}

/// With an S3 blob store: a replica without the app's image and droplet (as when another
/// replica built them) fetches them from the bucket to rebase, and puts the new ones there.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_on_a_shared_blob_store_fetches_the_image_it_lacks() {
    use crate::support::api::*;
    let s3 = S3Server::start();
    let api = Api::start_env(&[], s3.service_env("r"));
    let (app, pkg) = api
        .ready_package("far-away", &[("index.html", b"<h1>hi</h1>\n", 0o644)])
        .await;
    let old = api.staged(&pkg).await;
    api.set_current_droplet(&app, &old).await;

    // This replica forgets the droplet, the tag and the image's own blobs.
    let data = api.svc.data_dir();
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &str| data.join(format!("registry-blobs/sha256/{}", &d[7..]));
    let digests = |index: &serde_json::Value| layout_digests(&data, index);
    let stack = digests(&read(data.join("registry/stacks/busybox/index.json")));
    let index_path = data.join("registry/apps/far-away/index.json");
    let mut index = read(index_path.clone());
    let own: Vec<String> = (digests(&index).into_iter())
        .filter(|d| !stack.contains(d))
        .collect();
    assert!(own.len() >= 2, "a manifest and a config at least: {own:?}");
    for d in &own {
        std::fs::remove_file(blob(d)).unwrap();
    }
    index["manifests"] = serde_json::json!([]);
    std::fs::write(&index_path, index.to_string()).unwrap();
    let tgz = data.join(format!("droplets/{old}.tgz"));
    let bits = std::fs::read(&tgz).unwrap();
    std::fs::remove_file(&tgz).unwrap();

    // The stack moves; the refresh rebases from what the bucket has.
    let tmp = tempdir();
    let target = format!(
        "oci:{}:latest",
        data.join("registry/stacks/busybox").display()
    );
    import(&rootfs(tmp.path(), "patched"), &target, "busybox");
    let j = refresh_job(&api, "busybox").await;
    let one = &j["result"]["apps"][0];
    assert_eq!(one["result"], "rebased", "{j}\n{}", api.svc.log());
    let new = one["droplet_guid"].as_str().unwrap().to_string();
    let r = api
        .http
        .get(api.svc.url(&format!("/v3/droplets/{new}/download")));
    let got = r.send().await.unwrap().bytes().await.unwrap();
    assert!(got.as_ref() == bits.as_slice(), "the same droplet bits");
    let keys: Vec<String> = s3.objects().into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&format!("r/droplets/{new}.tgz")), "{keys:?}");
    let path = format!("/v2/apps/far-away/manifests/{new}");
    let r = api.http.get(api.svc.url(&path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "the new image is served");
}
