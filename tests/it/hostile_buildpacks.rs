//! Buildpacks that attack the host through what dropship (root, in CI) does outside the
//! sandbox with their output: symlinks planted as `deps/<idx>`, `cache/<key>`, `Procfile`,
//! `deps/<idx>/env/NAME`, `launch.yml`, `config.yml`, pointing at a root-only host file and at
//! a root-owned host directory. Whatever the build does (fail, or ignore the link), the file's
//! content appears nowhere (output, image config, layers, droplet, manifests) and the
//! directory keeps its owner; the same on a second build restoring the cache. With bwrap and
//! with `--sandbox none`.

use crate::support::staging::Fixture;
use crate::support::*;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

const DETECT_OK: (&str, &str) = ("detect", "echo hostile");
const RELEASE_OK: (&str, &str) = (
    "release",
    "printf -- '---\\ndefault_process_types:\\n  web: sleep 1\\n'",
);

/// A root-only host file with unique content, and a host directory with a file in it.
struct Host {
    fixture: Fixture,
    secret: PathBuf,
    content: String,
    victim: PathBuf,
}

impl Host {
    fn new() -> Host {
        let fixture = Fixture::new();
        let secret = fixture.path("host/secret");
        std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
        let content = format!("HOST-SECRET-{}", std::process::id() ^ 0x5eed);
        std::fs::write(&secret, format!("web: echo {content}\n")).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let victim = fixture.path("host/victim");
        std::fs::create_dir_all(victim.join("inner")).unwrap();
        std::fs::write(victim.join("inner/file"), "mine").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
        Host {
            fixture,
            secret,
            content,
            victim,
        }
    }

    fn env(&self) -> Vec<String> {
        vec![
            "--env".into(),
            format!("HOST_SECRET={}", self.secret.display()),
            "--env".into(),
            format!("HOST_DIR={}", self.victim.display()),
        ]
    }

    fn build(&self, sandbox: &str, extra: &[&str]) -> Output {
        let mut args: Vec<String> = self.env();
        args.extend(["--sandbox".into(), sandbox.into()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        self.fixture
            .build(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// The host file's content is nowhere, the host directory is still its owner's.
    fn assert_untouched(&self, o: &Output) {
        let me = std::fs::metadata(self.fixture.path("host")).unwrap();
        for p in [
            &self.victim,
            &self.victim.join("inner"),
            &self.victim.join("inner/file"),
        ] {
            let m = std::fs::symlink_metadata(p).unwrap();
            assert_eq!(
                (m.uid(), m.gid()),
                (me.uid(), me.gid()),
                "{} changed owner\n{}",
                p.display(),
                text(o)
            );
        }
        assert_eq!(
            std::fs::read_to_string(self.victim.join("inner/file")).unwrap(),
            "mine"
        );
        let all = text(o);
        assert!(!all.contains(&self.content), "host secret leaked:\n{all}");
        for dir in ["out", "cache", "manifests", "droplet.tgz"] {
            assert_nowhere(&self.fixture.path(dir), &self.content);
        }
    }
}

/// Fails if `needle` is in any file under `path` (gzip members are searched decompressed).
fn assert_nowhere(path: &Path, needle: &str) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            assert_nowhere(&e.path(), needle);
        }
        return;
    }
    if !meta.is_file() {
        return;
    }
    let raw = std::fs::read(path).unwrap();
    let mut plain = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let _ = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut plain);
    }
    let found = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        !found(&raw) && !found(&plain),
        "the host secret is in {}",
        path.display()
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SANDBOXES: [&str; 2] = ["bwrap", "none"];

#[test]
fn links_as_metadata_files_are_refused_and_never_read() {
    for sandbox in SANDBOXES {
        for (what, plant) in [
            ("app/Procfile", "ln -sf \"$HOST_SECRET\" \"$1/Procfile\""),
            ("launch.yml", "ln -sf \"$HOST_SECRET\" \"$3/$4/launch.yml\""),
            ("config.yml", "ln -sf \"$HOST_SECRET\" \"$3/$4/config.yml\""),
            // A relative link climbing out of the droplet.
            (
                "launch.yml",
                "ln -sf ../../../../../host/secret \"$3/$4/launch.yml\"",
            ),
        ] {
            let h = Host::new();
            h.fixture
                .buildpack("planter", &[DETECT_OK, ("finalize", plant), RELEASE_OK]);
            let o = h.build(sandbox, &[]);
            assert_eq!(o.status.code(), Some(1), "{sandbox} {what}: {}", text(&o));
            let err = stderr(&o);
            assert!(
                err.contains("symbolic link") && err.contains(what),
                "{sandbox} {what}: {err}"
            );
            h.assert_untouched(&o);
        }
    }
}

#[test]
fn links_as_env_files_are_ignored() {
    for sandbox in SANDBOXES {
        let h = Host::new();
        // The supply buildpack leaves env files that are links to the host file and to a
        // host directory, and a deps subdirectory that is a link to a host directory.
        let supply = "mkdir -p \"$3/$4/env\"; ln -s \"$HOST_SECRET\" \"$3/$4/env/STOLEN\"\n\
                      ln -s \"$HOST_DIR\" \"$3/$4/env/DIR\"; ln -s \"$HOST_DIR\" \"$3/$4/bin\"; echo planted";
        h.fixture.buildpack("supplier", &[("supply", supply)]);
        let finalize = "echo \"STOLEN=[$STOLEN] PATH=[$PATH]\"; exit 0";
        h.fixture
            .buildpack("final", &[DETECT_OK, ("finalize", finalize), RELEASE_OK]);
        let o = h.build(
            sandbox,
            &["--buildpack", "supplier", "--buildpack", "final"],
        );
        let err = stderr(&o);
        assert!(err.contains("planted"), "{sandbox}: {}", text(&o));
        assert!(o.status.success(), "{sandbox}: {}", text(&o));
        assert!(err.contains("STOLEN=[]"), "{sandbox}: {}", text(&o));
        assert!(
            !err.contains("/0/bin"),
            "a linked bin dir is not put on PATH: {err}"
        );
        h.assert_untouched(&o);
    }
}

#[test]
fn a_cache_key_planted_as_a_link_is_not_followed_now_or_on_the_next_build() {
    for sandbox in SANDBOXES {
        let h = Host::new();
        let cache = h.fixture.path("cache");
        let plant = "rm -rf \"$2\"; ln -s \"$HOST_DIR\" \"$2\"; \
                     ln -s \"$HOST_SECRET\" \"$(dirname \"$2\")/leak\"; echo planted; exit 0";
        h.fixture
            .buildpack("planter", &[DETECT_OK, ("finalize", plant), RELEASE_OK]);
        let cache_arg = cache.display().to_string();
        let o = h.build(sandbox, &["--cache-dir", &cache_arg]);
        assert!(o.status.success(), "{sandbox}: {}", text(&o));
        assert!(
            stderr(&o).contains("points outside the cache"),
            "{}",
            text(&o)
        );
        h.assert_untouched(&o);
        // The saved cache holds no link out of it...
        for e in walkdir::WalkDir::new(&cache).follow_links(false) {
            let e = e.unwrap();
            if e.file_type().is_symlink() {
                let t = std::fs::read_link(e.path()).unwrap();
                assert!(t.is_relative(), "{} -> {}", e.path().display(), t.display());
            }
        }
        // ...and a harmless buildpack building again with it changes nothing on the host.
        h.fixture.buildpack(
            "planter",
            &[DETECT_OK, ("finalize", "ls -la \"$2\"; exit 0"), RELEASE_OK],
        );
        let o = h.build(sandbox, &["--cache-dir", &cache_arg]);
        assert!(o.status.success(), "{sandbox}: {}", text(&o));
        h.assert_untouched(&o);
    }
}

#[test]
fn a_planted_deps_dir_of_a_later_buildpack_is_refused() {
    for sandbox in SANDBOXES {
        let h = Host::new();
        // A supply buildpack replaces a later buildpack's deps dir (made before staging) with a
        // link to a host directory: the later scripts write through it as the staging user,
        // which the host directory refuses; dropship never chowns through it.
        let supply = "rm -rf \"$3/1\"; ln -s \"$HOST_DIR\" \"$3/1\"; echo planted";
        h.fixture.buildpack("supplier", &[("supply", supply)]);
        let finalize = "touch \"$3/$4/owned\" 2>/dev/null && echo WROTE-HOST-DIR; \
                        printf 'processes:\\n- type: web\\n  command: x\\n' > \"$3/$4/launch.yml\" 2>/dev/null; exit 0";
        h.fixture
            .buildpack("final", &[DETECT_OK, ("finalize", finalize), RELEASE_OK]);
        let o = h.build(
            sandbox,
            &["--buildpack", "supplier", "--buildpack", "final"],
        );
        assert!(!stderr(&o).contains("WROTE-HOST-DIR"), "{}", text(&o));
        assert!(!h.victim.join("owned").exists());
        h.assert_untouched(&o);
    }
}
