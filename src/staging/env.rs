//! The environment lifecycle scripts see: Cloud Foundry's staging variables, the user's
//! `--env`, and what earlier (supply) buildpacks put in `deps/<idx>/` (bin, lib, env files),
//! as CF's multi-buildpack staging provides it.

use super::workspace::DepsEntry;

/// What the staging environment says about the app.
#[derive(Debug, Clone)]
pub struct AppInfo {
    pub name: String,
    pub app_guid: String,
    pub version: String,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub stack: String,
    pub space_name: String,
    pub org_name: String,
    /// `--env K=V`, in the order given.
    pub user_env: Vec<(String, String)>,
}

impl AppInfo {
    /// What staging tells of `app`, staged on the stack named `stack`.
    pub fn new(app: &crate::app::App, stack: &str) -> AppInfo {
        let id = app.identity();
        AppInfo {
            name: app.name.clone(),
            app_guid: id.guid,
            version: id.version,
            memory_mb: app.memory_mb,
            disk_mb: app.disk_mb,
            stack: stack.to_string(),
            space_name: id.space_name,
            org_name: id.org_name,
            user_env: app.env.clone(),
        }
    }
}

/// Why a user variable cannot be set at all (the API answers 422, the CLI refuses it): a name
/// outside `[A-Za-z_][A-Za-z0-9_]*`, a NUL in the value, or a name Cloud Foundry reserves
/// (`VCAP_*`, `VMC_*`, `CF_*`, `PORT`).
pub fn check_user_var(name: &str, value: &str) -> Result<(), String> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "environment variable name {name:?} is invalid: names match [A-Za-z_][A-Za-z0-9_]*"
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "environment variable {name}: the value contains a NUL byte"
        ));
    }
    if ["VCAP_", "VMC_", "CF_"].iter().any(|p| name.starts_with(p)) || name == "PORT" {
        return Err(format!(
            "environment variable {name} cannot be set: the platform owns it"
        ));
    }
    Ok(())
}

/// Variables the platform sets for lifecycle scripts, which user variables never replace in
/// staging (they still reach the app at run time): the tools buildpacks run, where they find
/// libraries, and what shells read at start-up.
pub fn platform_owned(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "PATH",
        "HOME",
        "TMPDIR",
        "USER",
        "LOGNAME",
        "SHELL",
        "PWD",
        "IFS",
        "ENV",
        "BASH_ENV",
        "CDPATH",
        "SHELLOPTS",
        "BASHOPTS",
        "GLOBIGNORE",
        "PS4",
        "MEMORY_LIMIT",
        "DEPS_DIR",
        "PORT",
    ];
    EXACT.contains(&name)
        || ["LD_", "CF_", "VCAP_", "VMC_", "BASH_FUNC_"]
            .iter()
            .any(|p| name.starts_with(p))
}

fn set(env: &mut Vec<(String, String)>, key: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = value,
        None => env.push((key.to_string(), value)),
    }
}

/// The base environment of every script: platform defaults, then the user's variables (but
/// none that [`platform_owned`] names, nor any [`check_user_var`] refuses), then the variables
/// the platform owns (CF_STACK, VCAP_APPLICATION, MEMORY_LIMIT) on top.
pub fn staging_env(app: &AppInfo, home: &str, tmp: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    set(&mut env, "PATH", "/usr/local/bin:/usr/bin:/bin".into());
    set(&mut env, "HOME", home.into());
    set(&mut env, "TMPDIR", tmp.into());
    set(&mut env, "USER", "vcap".into());
    set(&mut env, "LANG", "en_US.UTF-8".into());
    set(&mut env, "VCAP_SERVICES", "{}".into());
    for (k, v) in &app.user_env {
        if !platform_owned(k) && check_user_var(k, v).is_ok() {
            set(&mut env, k, v.clone());
        }
    }
    let vcap_application = serde_json::json!({
        "application_id": app.app_guid,
        "application_name": app.name,
        "application_uris": [],
        "application_version": app.version,
        "cf_api": "",
        "limits": {"fds": 16384, "mem": app.memory_mb, "disk": app.disk_mb},
        "name": app.name,
        "organization_name": app.org_name,
        "space_name": app.space_name,
        "uris": [],
        "users": null,
        "version": app.version,
    });
    set(&mut env, "CF_STACK", app.stack.clone());
    set(&mut env, "VCAP_APPLICATION", vcap_application.to_string());
    set(&mut env, "MEMORY_LIMIT", format!("{}m", app.memory_mb));
    env
}

fn prepend(env: &mut Vec<(String, String)>, key: &str, dir: &str) {
    let current = env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let value = match current {
        Some(v) if !v.is_empty() => format!("{dir}:{v}"),
        _ => dir.to_string(),
    };
    set(env, key, value);
}

/// `base` plus what `deps/*/` holds so far: `bin` on PATH, `lib` on LD_LIBRARY_PATH and
/// LIBRARY_PATH, `include` on CPATH, `pkgconfig` on PKG_CONFIG_PATH, and `env/NAME` files as
/// variables. `deps` is what the workspace read; `deps_inside` is the directory as scripts
/// see it.
pub fn with_deps(
    base: &[(String, String)],
    deps: &[DepsEntry],
    deps_inside: &str,
) -> Vec<(String, String)> {
    let mut env = base.to_vec();
    set(&mut env, "DEPS_DIR", deps_inside.to_string());
    for dep in deps {
        let inside = format!("{deps_inside}/{}", dep.idx);
        for (sub, vars) in [
            ("bin", &["PATH"][..]),
            ("lib", &["LD_LIBRARY_PATH", "LIBRARY_PATH"][..]),
            ("include", &["CPATH"][..]),
            ("pkgconfig", &["PKG_CONFIG_PATH"][..]),
        ] {
            if dep.subdirs.contains(&sub) {
                for var in vars {
                    prepend(&mut env, var, &format!("{inside}/{sub}"));
                }
            }
        }
        for (name, value) in &dep.env {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if valid && !value.contains('\0') {
                set(&mut env, name, value.trim_end_matches('\n').to_string());
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_info_is_the_apps_settings_and_identity() {
        let mut app = crate::app::App::named("shop");
        app.env = vec![("A".into(), "1".into())];
        let info = AppInfo::new(&app, "cflinuxfs4");
        let id = app.identity();
        assert_eq!((info.app_guid, info.version), (id.guid, id.version));
        assert_eq!(
            (info.memory_mb, info.disk_mb, info.stack.as_str()),
            (1024, 1024, "cflinuxfs4")
        );
        assert_eq!((info.space_name, info.user_env), (id.space_name, app.env));
    }

    fn app() -> AppInfo {
        AppInfo {
            name: "shop".into(),
            app_guid: "guid".into(),
            version: "v".into(),
            memory_mb: 512,
            disk_mb: 1024,
            stack: "cflinuxfs4".into(),
            space_name: "dev".into(),
            org_name: "org".into(),
            user_env: vec![
                ("CF_STACK".into(), "nope".into()),
                ("LANG".into(), "C.UTF-8".into()),
                ("A".into(), "1".into()),
                ("PATH".into(), "/tmp/app/evil".into()),
                ("LD_PRELOAD".into(), "/tmp/app/evil.so".into()),
                ("BASH_ENV".into(), "/tmp/app/evil.sh".into()),
            ],
        }
    }

    fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn platform_variables_win_over_user_ones() {
        let env = staging_env(&app(), "/home/vcap", "/tmp");
        assert_eq!(get(&env, "CF_STACK"), Some("cflinuxfs4"));
        assert_eq!(get(&env, "MEMORY_LIMIT"), Some("512m"));
        assert_eq!(get(&env, "LANG"), Some("C.UTF-8"));
        assert_eq!(get(&env, "A"), Some("1"));
        assert_eq!(get(&env, "VCAP_SERVICES"), Some("{}"));
        assert_eq!(get(&env, "PATH"), Some("/usr/local/bin:/usr/bin:/bin"));
        assert_eq!(get(&env, "LD_PRELOAD"), None);
        assert_eq!(get(&env, "BASH_ENV"), None);
        let va: serde_json::Value =
            serde_json::from_str(get(&env, "VCAP_APPLICATION").unwrap()).unwrap();
        assert_eq!(va["application_name"], "shop");
        assert_eq!(va["limits"]["mem"], 512);
    }

    #[test]
    fn user_variables_are_checked() {
        assert!(check_user_var("A_1", "x").is_ok());
        assert!(check_user_var("_x", "").is_ok());
        for bad in ["A=B", "", "1A", "A-B", "A B", "Ä"] {
            assert!(check_user_var(bad, "x").is_err(), "{bad:?}");
        }
        assert!(check_user_var("A", "x\0y").is_err());
        for reserved in ["VCAP_SERVICES", "CF_STACK", "PORT", "VMC_X"] {
            assert!(check_user_var(reserved, "x").is_err(), "{reserved}");
        }
        assert!(platform_owned("LD_AUDIT") && platform_owned("PATH") && !platform_owned("LANG"));
    }

    #[test]
    fn deps_contribute_paths_and_env_files() {
        let deps = [
            DepsEntry {
                idx: "0".into(),
                subdirs: vec!["bin"],
                env: vec![],
            },
            DepsEntry {
                idx: "1".into(),
                subdirs: vec!["lib"],
                env: vec![
                    ("PYTHONHOME".into(), "/tmp/deps/1/python\n".into()),
                    ("bad-name".into(), "x".into()),
                ],
            },
        ];
        let base = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
        let env = with_deps(&base, &deps, "/tmp/deps");
        assert_eq!(get(&env, "PATH"), Some("/tmp/deps/0/bin:/usr/bin:/bin"));
        assert_eq!(get(&env, "LD_LIBRARY_PATH"), Some("/tmp/deps/1/lib"));
        assert_eq!(get(&env, "PYTHONHOME"), Some("/tmp/deps/1/python"));
        assert_eq!(get(&env, "DEPS_DIR"), Some("/tmp/deps"));
        assert!(get(&env, "bad-name").is_none());
    }
}
