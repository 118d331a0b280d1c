//! The `counted` buildpack of the replica tests (support/replicas.rs): it stages apps that have
//! a `COUNTED` file, appends that file's text to a shared file per run, sleeps as many seconds
//! as a `SLEEP` file says, and makes a droplet whose `web` process is busybox httpd serving the
//! app's files on $PORT.

use super::*;
use std::os::unix::fs::PermissionsExt;

/// Files of an app the `counted` buildpack stages: `index.html`, `COUNTED` (the run's name)
/// and, when `seconds` > 0, `SLEEP`.
pub fn counted_app(name: &str, seconds: u32) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        ("index.html".to_string(), format!("{name}\n").into_bytes()),
        ("COUNTED".to_string(), name.as_bytes().to_vec()),
    ];
    if seconds > 0 {
        files.push(("SLEEP".to_string(), seconds.to_string().into_bytes()));
    }
    files
}

/// `buildpacks/counted` and the file its runs are appended to (`runs/runs.log`, writable by
/// the staging user).
pub(super) fn counted_buildpack(buildpacks: &Path, runs: &Path) {
    std::fs::create_dir_all(runs).unwrap();
    std::fs::set_permissions(runs, std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = runs.join("runs.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let finalize = format!(
        "name=$(cat \"$1/COUNTED\")\n\
         echo \"counted: staging $name\"\n\
         echo \"$name\" >> {log}\n\
         sleep \"$(cat \"$1/SLEEP\" 2>/dev/null || echo 0)\"\n\
         echo \"counted: staged $name\"",
        log = log.display()
    );
    let release =
        "printf -- '---\\ndefault_process_types:\\n  web: httpd -f -p $PORT -h /home/vcap/app\\n'";
    let bin = buildpacks.join("counted/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (script, body) in [
        ("detect", "[ -f \"$1/COUNTED\" ] && echo counted"),
        ("finalize", finalize.as_str()),
        ("release", release),
    ] {
        let p = bin.join(script);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
