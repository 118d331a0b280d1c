//! Stacks for tests: busybox-static, Debian from mmdebstrap.

use super::*;

/// A busybox-static root filesystem: /bin/busybox, its applets, /etc/passwd with root only
/// (stack import adds vcap, /tmp and /home/vcap).
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    require("busybox", "busybox-static");
    let root = dir.join("busybox-rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    root
}

/// Imports a busybox stack to `target` (e.g. `docker://HOST/stacks/busybox:latest`).
pub fn busybox_stack(dir: &Path, target: &str) -> String {
    let root = busybox_rootfs(dir);
    progress(format_args!("importing a busybox stack to {target}"));
    dropship_ok(&[
        "stack",
        "import",
        root.to_str().unwrap(),
        "--image",
        target,
        "--name",
        "busybox",
    ]);
    target.to_string()
}

/// The Debian rootfs tarball (mmdebstrap: busybox, nodejs, python3, ca-certificates), made
/// once and cached at $DROPSHIP_TEST_DEBIAN_ROOTFS or /var/tmp/dropship-test/debian-bookworm-v2.tar.
pub fn debian_rootfs() -> PathBuf {
    let path = std::env::var_os("DROPSHIP_TEST_DEBIAN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/dropship-test/debian-bookworm-v2.tar"));
    if path.is_file() {
        return path;
    }
    require("mmdebstrap", "mmdebstrap");
    progress(format_args!(
        "making the Debian stack rootfs with mmdebstrap (about 35 s, once): {}",
        path.display()
    ));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("partial");
    let status = Command::new("mmdebstrap")
        .args([
            // The format is guessed from the file name otherwise, and `.partial` means a directory.
            "--format=tar",
            "--variant=minbase",
            "--include=busybox,nodejs,python3,python3-pip,ca-certificates",
            "bookworm",
        ])
        .arg(&tmp)
        .status()
        .expect("run mmdebstrap");
    assert!(status.success(), "mmdebstrap failed");
    std::fs::rename(&tmp, &path).unwrap();
    path
}
