//! The zero-configuration stack: with no stack configured, the service makes one from the
//! host's statically linked busybox (if there is one) and keeps it in its own registry as
//! `stacks/busybox`, so that a fresh `dropship serve` can build static sites and Procfile apps.

use super::config::Config;
use crate::refs::{ImageRef, LayoutRef};
use crate::registry::{Registry, RegistryOptions};
use crate::report::Silent;
use crate::store::Paths;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Is the ELF file at `path` free of a program interpreter (statically linked)?
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return false; // only 64-bit little-endian is checked
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at =
        |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes")) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        at + 4 <= bytes.len()
            && u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) != 3
    })
}

fn static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| is_static_elf(p))
}

/// A busybox root filesystem in `dir`: the binary, its applets, root in /etc/passwd.
fn busybox_rootfs(busybox: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::create_dir_all(dir.join("etc"))?;
    std::fs::copy(busybox, dir.join("bin/busybox"))?;
    let list = std::process::Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') {
            std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet))?;
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
}

/// Fills in the default stack when none is configured (or says why it cannot).
pub async fn ensure_default(config: &mut Config, paths: &Paths) {
    if !config.stacks.is_empty() {
        return;
    }
    let repo = paths.repository("stacks/busybox");
    let reference = format!("oci:{}:latest", repo.display());
    let made = repo.join("index.json").is_file() && {
        let index = std::fs::read_to_string(repo.join("index.json")).unwrap_or_default();
        index.contains("\"latest\"")
    };
    if !made {
        let Some(busybox) = static_busybox() else {
            tracing::warn!(
                "no stack configured and no static busybox to make one: builds will fail \
                 until a stack is set (--stack, or [stacks] in the config file)"
            );
            return;
        };
        let result = async {
            super::registry::ensure_repository(paths, "stacks/busybox")?;
            let work = tempfile::Builder::new()
                .prefix("stack-")
                .tempdir_in(paths.work())?;
            let root = work.path().join("rootfs");
            busybox_rootfs(&busybox, &root)?;
            let registry = Registry::new(RegistryOptions::default(), &[], Arc::new(Silent))
                .map_err(std::io::Error::other)?;
            let target = ImageRef::Layout(LayoutRef {
                dir: repo.clone(),
                tag: Some("latest".into()),
            });
            crate::stack::import(
                &root,
                &target,
                Some("busybox"),
                &registry,
                work.path(),
                Arc::new(Silent),
            )
            .await
            .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(())
        }
        .await;
        if let Err(e) = result {
            tracing::error!("could not make the default busybox stack: {e}");
            return;
        }
        tracing::info!(
            "made the default stack 'busybox' from {}",
            busybox.display()
        );
    }
    config.stacks.insert("busybox".into(), reference);
    config.default_stack = Some("busybox".into());
}

#[cfg(test)]
mod tests {
    #[test]
    fn tells_static_from_dynamic() {
        // /bin/sh is dynamically linked on Debian; a non-ELF file is not static either.
        assert!(!super::is_static_elf(std::path::Path::new("/bin/sh")));
        assert!(!super::is_static_elf(std::path::Path::new("/etc/passwd")));
        if let Some(b) = super::static_busybox() {
            assert!(super::is_static_elf(&b));
        }
    }
}
