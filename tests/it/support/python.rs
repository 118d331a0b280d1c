//! Python tools from PyPI, pinned by a requirements file, each in its own virtualenv (made
//! once, kept under /var/tmp/dropship-test, made again when its requirements change).

use super::*;

/// The virtualenv for `requirements` (a path in the project): `$ENV_VAR` when set (scripts/test
/// sets them), else `/var/tmp/dropship-test/NAME`; made here when missing or stale.
pub fn venv(requirements: &str, env_var: &str, name: &str) -> PathBuf {
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/dropship-test").join(name));
    let wanted = std::fs::read_to_string(project_dir().join(requirements)).unwrap();
    let stamp = dir.join("requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return dir;
    }
    progress(format!("making the virtualenv {}", dir.display()));
    let _ = std::fs::remove_dir_all(&dir);
    run_ok(Command::new("python3").args(["-m", "venv"]).arg(&dir));
    run_ok(
        Command::new(dir.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(project_dir().join(requirements)),
    );
    std::fs::write(&stamp, wanted).unwrap();
    dir
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run a setup command");
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
}
