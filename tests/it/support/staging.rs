//! A fixture for staging tests: a temp dir with a busybox stack in an OCI layout, an app
//! (`index.html`) and a directory of buildpacks written as POSIX sh scripts.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

/// A temp dir with a busybox stack, an app (`index.html`) and a buildpacks dir.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub stack: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempdir();
        let stack = busybox_stack(
            tmp.path(),
            &format!("oci:{}:busybox", tmp.path().join("stack").display()),
        );
        std::fs::create_dir_all(tmp.path().join("app")).unwrap();
        std::fs::write(tmp.path().join("app/index.html"), "hi\n").unwrap();
        std::fs::create_dir_all(tmp.path().join("bps")).unwrap();
        Fixture { tmp, stack }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes buildpack `name` into the buildpacks dir: `(script, body)` become `bin/script`.
    pub fn buildpack(&self, name: &str, scripts: &[(&str, &str)]) {
        let bin = self.path("bps").join(name).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (script, body) in scripts {
            let p = bin.join(script);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    /// `dropship build app --stack ... --image oci:... --buildpacks-dir ... --work-dir ... EXTRA`.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec!["build".into(), self.path("app").display().to_string()];
        a.extend(["--stack".into(), self.stack.clone()]);
        a.extend([
            "--image".into(),
            format!("oci:{}:app", self.path("out").display()),
        ]);
        a.extend([
            "--buildpacks-dir".into(),
            self.path("bps").display().to_string(),
        ]);
        a.extend(["--work-dir".into(), self.path("work").display().to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    pub fn build_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let args = self.args(extra);
        dropship_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), env)
    }

    pub fn build(&self, extra: &[&str]) -> Output {
        self.build_env(extra, &[])
    }
}
