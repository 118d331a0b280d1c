//! Real npm and PyPI packages for the language apps, fetched once.

use super::*;

/// Real packages for the language buildpacks' tests, fetched once from the public registries
/// (npm, PyPI) and kept under /var/tmp/dropship-test/vendor: staging itself has no network,
/// so apps vendor their dependencies, as these fixtures do.
pub fn vendor_cache(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let dir = PathBuf::from("/var/tmp/dropship-test/vendor").join(name);
    if dir.join(".complete").is_file() {
        return dir;
    }
    progress(format_args!(
        "fetching {name} into {} (once)",
        dir.display()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make(&dir);
    std::fs::write(dir.join(".complete"), "").unwrap();
    dir
}

/// `node_modules` of an app depending on express 4, as `npm install --omit=dev` makes it.
pub fn express_node_modules() -> PathBuf {
    let dir = vendor_cache("express-4", |dir| {
        require("npm", "npm (or the machine's Node.js)");
        std::fs::write(
            dir.join("package.json"),
            r#"{"name":"fixture","version":"1.0.0","private":true}"#,
        )
        .unwrap();
        let o = Command::new("npm")
            .args([
                "install",
                "express@4",
                "--omit=dev",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "npm install express failed:\n{}",
            text(&o)
        );
    });
    dir.join("node_modules")
}

/// Wheels for `flask==3.0.3` for the stack's CPython 3.11 on x86_64, as `pip download` makes them.
pub fn flask_wheels() -> PathBuf {
    vendor_cache("flask-3.0.3-cp311", |dir| {
        let o = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "flask==3.0.3",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
            ])
            .args([
                "--platform",
                "manylinux2014_x86_64",
                "--implementation",
                "cp",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pip download flask failed:\n{}",
            text(&o)
        );
    })
}
