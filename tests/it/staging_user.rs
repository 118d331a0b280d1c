//! Who buildpacks run as on the host, and the buildpack cache between builds, through the
//! `dropship` binary. When dropship runs as root (as in CI), scripts run as host uid 2000: never
//! as host root, not even inside the sandbox's user namespace.

use crate::support::staging::Fixture;
use crate::support::*;
use std::os::unix::fs::PermissionsExt;

const DETECT_OK: (&str, &str) = ("detect", "echo custom");
const RELEASE_OK: (&str, &str) = (
    "release",
    "printf -- '---\\ndefault_process_types:\\n  web: sleep 1\\n'",
);

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn root_only_files_of_the_stack_stay_closed() {
    let mut f = Fixture::new();
    let root = busybox_rootfs(&f.path("custom"));
    std::fs::write(root.join("etc/secret"), "stack secret\n").unwrap();
    std::fs::set_permissions(
        root.join("etc/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let stack = format!("oci:{}:custom", f.path("custom-stack").display());
    dropship_ok(&[
        "stack",
        "import",
        root.to_str().unwrap(),
        "--image",
        &stack,
        "--name",
        "custom",
    ]);
    f.stack = stack;
    let probe =
        "cat /etc/secret 2>/dev/null && echo STACK-SECRET-READ || echo STACK-SECRET-DENIED\n\
                 touch /etc/new 2>/dev/null && echo ROOTFS-WRITABLE || echo ROOTFS-READONLY\n\
                 echo \"APP-OWNER=$(stat -c %u /tmp/app)\"";
    f.buildpack("probe", &[DETECT_OK, ("finalize", probe), RELEASE_OK]);
    let o = f.build(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ROOTFS-READONLY"), "{err}");
    assert!(err.contains("APP-OWNER=2000"), "{err}");
    if is_root() {
        // Were scripts host root, root-owned files would look like theirs inside the namespace.
        assert!(
            err.contains("STACK-SECRET-DENIED") && !err.contains("stack secret"),
            "{err}"
        );
    } else {
        assert!(err.contains("STACK-SECRET-DENIED"), "{err}");
    }
}

#[test]
fn a_work_dir_the_staging_user_cannot_reach_is_named() {
    let f = Fixture::new();
    f.buildpack("ok", &[DETECT_OK, ("finalize", "exit 0"), RELEASE_OK]);
    let closed = f.path("closed");
    std::fs::create_dir_all(closed.join("work")).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let work = closed.join("work");
    let mut args = f.args(&[]);
    let at = args.iter().position(|a| a == "--work-dir").unwrap();
    args[at + 1] = work.display().to_string();
    let o = dropship(&args.iter().map(String::as_str).collect::<Vec<_>>());
    if is_root() {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{} is closed to it", closed.display())),
            "{err}"
        );
        assert!(err.contains("--work-dir"), "{err}");
    } else {
        assert!(
            o.status.success(),
            "the owner can always reach its own dirs: {}",
            text(&o)
        );
    }
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "work dir left behind"
    );
}

#[test]
fn the_buildpack_cache_is_kept_only_after_successful_builds() {
    let f = Fixture::new();
    // Counts builds in the cache; fails on demand after touching the cache.
    let finalize =
        "c=$(cat \"$2/count\" 2>/dev/null || echo 0); c=$((c+1)); echo $c > \"$2/count\"\n\
                    echo \"BUILD NUMBER $c\"\n\
                    [ -f /tmp/app/fail ] && { echo failing on purpose; exit 9; }\n\
                    exit 0";
    f.buildpack("counter", &[DETECT_OK, ("finalize", finalize), RELEASE_OK]);
    let cache = f.path("cache");
    let cache_arg = cache.to_str().unwrap();
    for want in ["BUILD NUMBER 1", "BUILD NUMBER 2"] {
        let o = f.build(&["--cache-dir", cache_arg]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{}",
            text(&o)
        );
    }
    std::fs::write(f.path("app/fail"), "").unwrap();
    let o = f.build(&["--cache-dir", cache_arg]);
    assert_eq!(o.status.code(), Some(226), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("BUILD NUMBER 3"));
    std::fs::remove_file(f.path("app/fail")).unwrap();
    let o = f.build(&["--cache-dir", cache_arg]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("BUILD NUMBER 3"),
        "the failed build's cache was kept:\n{}",
        text(&o)
    );
    // The cache lives where it was asked to, in CF's layout (final buildpack: `final/`).
    assert_eq!(
        std::fs::read_to_string(cache.join("final/count"))
            .unwrap()
            .trim(),
        "3"
    );
}
