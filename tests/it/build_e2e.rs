//! `dropship build` end to end, through the binary: real registry, real stacks, images read by
//! skopeo and run by podman, manifests checked by kubernetes-validate.

use crate::support::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn static_site(dir: &Path) -> String {
    write(&dir.join("index.html"), "<h1>hello from dropship</h1>\n");
    write(&dir.join("about/index.html"), "about page\n");
    // Incompressible bytes between text files: the layer's gzip switches level on the way (it
    // stores such stretches), and podman must still unpack it.
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    random_file(&dir.join("assets/noise.bin"), 3 << 20);
    write(&dir.join("zz/index.html"), "after the noise\n");
    dir.to_str().unwrap().to_string()
}

/// An app started from its Procfile, with a .profile.d script that the launcher must source.
fn procfile_app(dir: &Path, web: &str) -> String {
    write(&dir.join("Procfile"), &format!("web: {web}\n"));
    write(&dir.join("public/index.html"), "procfile app\n");
    write(
        &dir.join(".profile.d/page.sh"),
        "echo \"profile ran as $(id -u) in $PWD\" > \"$HOME/public/profile.html\"\n",
    );
    dir.to_str().unwrap().to_string()
}

fn kubernetes_validate(file: &Path) {
    require(
        "kubernetes-validate",
        "python3-pip && pip install kubernetes-validate",
    );
    let o = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.33.0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubernetes-validate rejected {}:\n{}",
        file.display(),
        text(&o)
    );
}

/// Checks what skopeo reads from the registry against what dropship reported.
fn check_pushed(reference: &str, build: &serde_json::Value) {
    let inspect = skopeo_inspect(reference, false);
    assert_eq!(inspect["Digest"], build["digest"], "{inspect}");
    assert_eq!(
        (inspect["Os"].as_str(), inspect["Architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    let mut c = Command::new("skopeo");
    let o = c
        .args(["inspect", "--config", "--tls-verify=false", reference])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let config: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &config["config"];
    assert_eq!(c["User"], "2000:2000");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/lifecycle/launch"]));
    assert_eq!(c["WorkingDir"], "/home/vcap/app");
    assert_eq!(c["Cmd"][0], build["start_command"]);
}

/// Builds the static site and the Procfile app on `stack`, pushes, runs both under podman.
fn build_and_run_both(reg: &Registry, stack: &str, tag: &str, web: &str, tmp: &Path) {
    let podman = Podman::new();
    let out_dir = tmp.join(format!("manifests-{tag}"));
    let site = static_site(&tmp.join(format!("site-{tag}")));
    let target = format!("docker://{}/apps/site:{tag}", reg.host());
    let b = build_json(&[
        &site,
        "--stack",
        stack,
        "--image",
        &target,
        "--manifests",
        out_dir.to_str().unwrap(),
        "--instances",
        "2",
    ]);
    assert_eq!(b["detected_buildpack"], "staticfile");
    let image = b["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!("{}/apps/site@sha256:", reg.host())),
        "{image}"
    );
    check_pushed(&target, &b);

    let port = free_port();
    let c = podman.run(&target.replace("docker://", ""), port);
    let page = wait_for_page(port, "/", Duration::from_secs(30));
    assert!(
        page.as_deref()
            .unwrap_or("")
            .contains("hello from dropship"),
        "{page:?}\n{}",
        c.logs()
    );
    let about = wait_for_page(port, "/about/", Duration::from_secs(5)).unwrap_or_default();
    assert!(about.contains("about page"), "{about}");
    let after = wait_for_page(port, "/zz/", Duration::from_secs(5)).unwrap_or_default();
    assert!(after.contains("after the noise"), "{after}");
    drop(c);

    // Manifests: valid, and naming the image by digest.
    let name = Path::new(&site)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let yaml_path = out_dir.join(format!("{name}.yaml"));
    let yaml = std::fs::read_to_string(&yaml_path).unwrap();
    assert!(yaml.contains(&format!("image: {image}")), "{yaml}");
    for kind in [
        "kind: StatefulSet",
        "kind: PodDisruptionBudget",
        "kind: Service",
    ] {
        assert!(yaml.contains(kind), "{kind} missing");
    }
    kubernetes_validate(&yaml_path);

    let app = procfile_app(&tmp.join(format!("proc-{tag}")), web);
    let target = format!("docker://{}/apps/proc:{tag}", reg.host());
    let b = build_json(&[
        &app,
        "--stack",
        stack,
        "--image",
        &target,
        "--buildpack",
        "binary",
    ]);
    assert_eq!(b["start_command"], web);
    assert_eq!(b["buildpacks"][0]["name"], "binary");
    check_pushed(&target, &b);
    let port = free_port();
    let c = podman.run(&target.replace("docker://", ""), port);
    let page = wait_for_page(port, "/index.html", Duration::from_secs(30));
    assert_eq!(page.as_deref(), Some("procfile app\n"), "{}", c.logs());
    let profile = wait_for_page(port, "/profile.html", Duration::from_secs(5)).unwrap_or_default();
    assert!(
        profile.contains("profile ran as 2000 in /home/vcap/app"),
        "{profile:?}\n{}",
        c.logs()
    );
}

#[test]
fn busybox_stack_static_site_and_procfile_app_run() {
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    build_and_run_both(
        &reg,
        &stack,
        "busybox",
        "httpd -f -p $PORT -h public",
        tmp.path(),
    );
}

#[test]
fn debian_stack_static_site_and_procfile_app_run() {
    let reg = Registry::start();
    let tmp = tempdir();
    let rootfs = debian_rootfs();
    let stack = format!("docker://{}/stacks/debian:bookworm", reg.host());
    progress(format_args!("importing the Debian stack to {stack}"));
    let out = dropship_ok(&[
        "stack",
        "import",
        rootfs.to_str().unwrap(),
        "--image",
        &stack,
        "--name",
        "debian-bookworm",
    ]);
    assert!(out.contains("/stacks/debian@sha256:"), "{out}");
    build_and_run_both(
        &reg,
        &stack,
        "debian",
        "cd public && exec python3 -m http.server $PORT",
        tmp.path(),
    );
}

#[test]
fn same_source_same_digest_and_oci_layout_readable() {
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("oci:{}:busybox", tmp.path().join("stack").display()),
    );
    let site = static_site(&tmp.path().join("site"));
    let mut digests = Vec::new();
    for i in 0..2 {
        let target = format!("oci:{}:app", tmp.path().join(format!("out{i}")).display());
        let work = tmp.path().join(format!("work{i}"));
        let b = build_json(&[
            &site,
            "--stack",
            &stack,
            "--image",
            &target,
            "--work-dir",
            work.to_str().unwrap(),
            "--name",
            "site",
        ]);
        let inspect = skopeo_inspect(&target, false);
        assert_eq!(inspect["Digest"], b["digest"]);
        digests.push((b["digest"].clone(), b["droplet_digest"].clone()));
        // The work directory is gone after the build.
        assert_eq!(
            std::fs::read_dir(&work).unwrap().count(),
            0,
            "work dir left behind"
        );
    }
    assert_eq!(
        digests[0], digests[1],
        "two builds of the same source differ"
    );
    // A changed file changes the digest.
    write(&tmp.path().join("site/index.html"), "changed\n");
    let target = format!("oci:{}:app", tmp.path().join("out2").display());
    let b = build_json(&[
        &site, "--stack", &stack, "--image", &target, "--name", "site",
    ]);
    assert_ne!(b["digest"], digests[0].0);
}

fn peak_rss_kib(args: &[&str]) -> (u64, serde_json::Value) {
    let mut c = Command::new(bin());
    c.args(args)
        .arg("--json")
        .env("DROPSHIP_STACK_CACHE", stack_cache());
    let (status, rss, out) = run_with_peak_rss(c);
    assert!(status.success(), "dropship {args:?} failed:\n{out}");
    let json = out.lines().find(|l| l.starts_with('{')).expect("JSON line");
    (rss, serde_json::from_str(json).unwrap())
}

#[test]
fn rebuild_uploads_no_layer_and_memory_stays_flat() {
    let reg = Registry::start();
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("docker://{}/stacks/busybox:latest", reg.host()),
    );
    let small = static_site(&tmp.path().join("small"));
    let big = static_site(&tmp.path().join("big"));
    random_file(&tmp.path().join("big/data.bin"), 200 << 20);

    let target_small = format!("docker://{}/apps/small:1", reg.host());
    let (rss_small, _) =
        peak_rss_kib(&["build", &small, "--stack", &stack, "--image", &target_small]);
    let target = format!("docker://{}/apps/big:1", reg.host());
    let (rss_big, first) = peak_rss_kib(&["build", &big, "--stack", &stack, "--image", &target]);
    eprintln!(
        "peak RSS: small app {} MiB, 200 MB app {} MiB",
        rss_small / 1024,
        rss_big / 1024
    );
    assert!(
        first["push"]["bytes_uploaded"].as_u64().unwrap() > 200 << 20,
        "{}",
        first["push"]
    );
    assert!(
        rss_big < rss_small + 48 * 1024 && rss_big < 160 * 1024,
        "memory grew with the app: {rss_small} KiB for a small app, {rss_big} KiB with a 200 MB file"
    );

    let uploads_before = reg.blob_uploads("apps/big");
    let (_, second) = peak_rss_kib(&["build", &big, "--stack", &stack, "--image", &target]);
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(
        second["push"]["uploaded"],
        serde_json::json!([]),
        "{}",
        second["push"]
    );
    assert_eq!(second["push"]["bytes_uploaded"], 0);
    assert_eq!(
        reg.blob_uploads("apps/big"),
        uploads_before,
        "the registry saw blob uploads"
    );
    // The stack layer was mounted from stacks/busybox, not uploaded, the first time.
    assert_eq!(
        first["push"]["mounted"].as_array().unwrap().len(),
        1,
        "{}",
        first["push"]
    );
}

/// Bytes of the layer blobs kept in the layer cache of stack cache `sc`.
fn layer_cache_bytes(sc: &Path) -> u64 {
    let Ok(dir) = std::fs::read_dir(sc.join("layers")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// A layer cache smaller than the droplet (`DROPSHIP_LAYER_CACHE_SIZE`, then
/// `--layer-cache-size`): it never holds more than its limit, builds still give the same image,
/// and a later build takes what it kept and packs the rest again.
#[test]
fn a_small_layer_cache_evicts_and_builds_still_work() {
    let tmp = tempdir();
    let stack = busybox_stack(
        tmp.path(),
        &format!("oci:{}:busybox", tmp.path().join("stack").display()),
    );
    let site = static_site(&tmp.path().join("site"));
    let modules = tmp.path().join("site/node_modules");
    std::fs::create_dir_all(&modules).unwrap();
    // Eight files of 600 KiB that do not compress: each a layer of its own.
    for i in 0..8 {
        random_file(&modules.join(format!("m{i}.bin")), 600 << 10);
    }
    let sc = tmp.path().join("stack-cache");
    let build = |i: usize, extra: &[&str], env: &[(&str, &str)]| {
        let target = format!("oci:{}:app", tmp.path().join(format!("out{i}")).display());
        let mut args = vec!["build", &site, "--stack", &stack, "--image", &target];
        args.extend(["--stack-cache", sc.to_str().unwrap(), "--json"]);
        args.extend(extra);
        let o = dropship_env(&args, env);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let reused = |b: &serde_json::Value| {
        let layers = b["layers"].as_array().unwrap();
        let holds = layers.iter().filter(|l| l.get("holds").is_some()).count();
        (layers.iter().filter(|l| l["reused"] == true).count(), holds)
    };
    let first = build(0, &[], &[("DROPSHIP_LAYER_CACHE_SIZE", "2M")]);
    assert!(reused(&first).1 >= 9, "{first:#}");
    let held = layer_cache_bytes(&sc);
    assert!(
        held > 0 && held <= 2 << 20,
        "{held} bytes held for a 2M limit: {:?}\n{first:#}",
        std::fs::read_dir(&sc).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );

    let second = build(1, &["--layer-cache-size", "2M"], &[]);
    assert_eq!(second["digest"], first["digest"]);
    assert!(layer_cache_bytes(&sc) <= 2 << 20);

    // A larger limit: what the small cache held is taken, the rest packed and now all kept.
    let third = build(2, &["--layer-cache-size", "1G"], &[]);
    assert_eq!(third["digest"], first["digest"]);
    let (kept, layers) = reused(&third);
    assert!(kept >= 1 && kept < layers, "{kept} of {layers} reused");
    let all = build(3, &["--layer-cache-size", "1G"], &[]);
    assert_eq!(all["digest"], first["digest"]);
    let (kept, layers) = reused(&all);
    assert_eq!(kept, layers, "{all:#}");
}
