//! Staging failures and the staging sandbox, through the `dropship` binary: buildpacks written
//! here as POSIX sh scripts run on an OCI-layout busybox stack. Checks Cloud Foundry's exit codes
//! (222-226, 124), that buildpack output reaches the user, that a timeout kills everything the
//! buildpack started, what a buildpack can see from inside bubblewrap, and the CF environment.

use crate::support::staging::Fixture;
use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DETECT_OK: (&str, &str) = ("detect", "echo custom; exit 0");
const RELEASE_OK: (&str, &str) = (
    "release",
    "printf -- '---\\ndefault_process_types:\\n  web: httpd -f -p $PORT\\n'",
);

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code and that stderr contains every needle.
fn expect(o: &Output, code: i32, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    for n in needles {
        assert!(stderr(o).contains(n), "stderr lacks {n:?}:\n{}", text(o));
    }
}

#[test]
fn no_buildpack_detects_exits_222_with_detect_output() {
    let f = Fixture::new();
    f.buildpack(
        "a-first",
        &[("detect", "echo 'a-first: no Gemfile here' >&2; exit 1")],
    );
    f.buildpack(
        "b-second",
        &[("detect", "echo 'b-second: no package.json' >&2; exit 1")],
    );
    let o = f.build(&[]);
    expect(
        &o,
        222,
        &[
            "None of the buildpacks detected",
            "tried: a-first, b-second",
        ],
    );
    expect(
        &o,
        222,
        &["a-first: no Gemfile here", "b-second: no package.json"],
    );
    assert!(!f.path("out").exists(), "nothing pushed on failure");
}

#[test]
fn v2_compile_failure_exits_223() {
    let f = Fixture::new();
    f.buildpack(
        "v2",
        &[
            DETECT_OK,
            ("compile", "echo 'compile broke here'; exit 1"),
            RELEASE_OK,
        ],
    );
    let o = f.build(&[]);
    expect(
        &o,
        223,
        &[
            "compile broke here",
            "Failed to compile droplet",
            "buildpack v2",
            "status 1",
        ],
    );
}

#[test]
fn release_failure_or_bad_yaml_exits_224() {
    let f = Fixture::new();
    f.buildpack(
        "rel",
        &[
            DETECT_OK,
            ("finalize", "exit 0"),
            ("release", "echo 'release broke' >&2; exit 1"),
        ],
    );
    let o = f.build(&[]);
    expect(
        &o,
        224,
        &[
            "release broke",
            "Failed to build droplet release",
            "bin/release exited with status 1",
        ],
    );

    f.buildpack(
        "rel",
        &[("release", "echo 'default_process_types: [unclosed'")],
    );
    let o = f.build(&[]);
    expect(
        &o,
        224,
        &["Failed to build droplet release", "not valid YAML"],
    );
}

#[test]
fn supply_failures_exit_225() {
    let f = Fixture::new();
    f.buildpack("a", &[("supply", "echo 'supply broke'; exit 1")]);
    f.buildpack(
        "b",
        &[("finalize", "echo 'b finalize must not run'"), RELEASE_OK],
    );
    let o = f.build(&["--buildpack", "a", "--buildpack", "b"]);
    expect(
        &o,
        225,
        &[
            "supply broke",
            "Failed to run all supply scripts",
            "buildpack a",
        ],
    );
    assert!(!stderr(&o).contains("must not run"), "{}", text(&o));

    // A non-final buildpack that cannot supply.
    f.buildpack("nosupply", &[DETECT_OK, ("compile", "exit 0"), RELEASE_OK]);
    let o = f.build(&["--buildpack", "nosupply", "--buildpack", "b"]);
    expect(
        &o,
        225,
        &["buildpack nosupply", "no bin/supply", "cannot supply"],
    );
}

#[test]
fn finalize_failure_exits_226() {
    let f = Fixture::new();
    f.buildpack(
        "fin",
        &[
            DETECT_OK,
            ("finalize", "echo 'finalize broke'; exit 7"),
            RELEASE_OK,
        ],
    );
    let o = f.build(&[]);
    expect(
        &o,
        226,
        &[
            "finalize broke",
            "Failed to run finalize script",
            "bin/finalize exited with status 7",
        ],
    );
}

/// Processes whose command line mentions `needle`.
#[test]
fn timeout_exits_124_and_kills_every_process() {
    let f = Fixture::new();
    f.buildpack(
        "slow",
        &[
            DETECT_OK,
            ("finalize", "sleep 3141 &\necho started; sleep 3142"),
            RELEASE_OK,
        ],
    );
    let start = Instant::now();
    let o = f.build(&["--staging-timeout", "2s"]);
    let took = start.elapsed();
    expect(
        &o,
        124,
        &[
            "started",
            "Staging time expired",
            "bin/finalize",
            "--staging-timeout",
        ],
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with("sleep 314");
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "survived the timeout: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const PROBE: &str = r#"
if cat "$SECRET_PATH"; then echo SECRET-LEAKED; else echo SECRET-DENIED; fi
if nc -w 2 127.0.0.1 "$NET_PORT" </dev/null; then echo NET-OPEN; else echo NET-BLOCKED; fi
echo "UID=$(id -u) GID=$(id -g)"
if [ -e "$PROJECT" ]; then echo PROJECT-VISIBLE; else echo PROJECT-HIDDEN; fi
if [ -e /work ]; then echo WORK-VISIBLE; else echo WORK-HIDDEN; fi
if ls -A /root >/dev/null 2>&1; then echo "ROOT: $(ls -A /root | tr '\n' ' ')"; else echo ROOT-ABSENT; fi
echo "SEES: $(ls / | tr '\n' ' ')"
"#;

#[test]
fn sandbox_hides_host_files_network_and_root() {
    let f = Fixture::new();
    let secret = f.path("host-only/secret.txt");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, "top secret\n").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    f.buildpack("probe", &[DETECT_OK, ("finalize", PROBE), RELEASE_OK]);
    let secret_env = format!("SECRET_PATH={}", secret.display());
    let project_env = format!("PROJECT={}", project_dir().join("Cargo.toml").display());
    let port_env = format!("NET_PORT={port}");
    let o = f.build(&[
        "--env",
        &secret_env,
        "--env",
        &port_env,
        "--env",
        &project_env,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    for want in [
        "SECRET-DENIED",
        "NET-BLOCKED",
        "UID=2000 GID=2000",
        "PROJECT-HIDDEN",
        "WORK-HIDDEN",
    ] {
        assert!(err.contains(want), "sandbox probe lacks {want}:\n{err}");
    }
    assert!(!err.contains("top secret"), "{err}");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host listener was reached from the sandbox: {other:?}\n{err}"),
    }
    // Whatever /root the stack has, it is not the host's.
    if let Some(line) = err.lines().find_map(|l| l.trim().strip_prefix("ROOT: ")) {
        let inside: Vec<&str> = line.split_whitespace().collect();
        for host in std::fs::read_dir("/root").into_iter().flatten().flatten() {
            let name = host.file_name().to_string_lossy().into_owned();
            assert!(
                !inside.contains(&name.as_str()),
                "host /root/{name} visible: {line}"
            );
        }
    }
}

#[test]
fn missing_bubblewrap_says_how_to_install_it() {
    let f = Fixture::new();
    f.buildpack("ok", &[DETECT_OK, ("finalize", "exit 0"), RELEASE_OK]);
    let empty = f.path("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let o = f.build_env(&[], &[("PATH", empty.to_str().unwrap())]);
    expect(
        &o,
        1,
        &["bubblewrap", "apt-get install bubblewrap", "--sandbox none"],
    );
    assert!(!f.path("out").exists(), "{}", text(&o));
}

#[test]
fn sandbox_none_runs_scripts_with_cf_arguments() {
    let f = Fixture::new();
    f.buildpack(
        "plain",
        &[
            ("detect", "echo \"detect args: $*\" >&2; echo plain"),
            ("finalize", "echo \"finalize args: $*\""),
            RELEASE_OK,
        ],
    );
    let o = f.build(&["--sandbox", "none", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(b["detected_buildpack"], "plain");
    assert_eq!(b["start_command"], "httpd -f -p $PORT");
    let err = stderr(&o);
    // Without a sandbox the scripts get host paths: APP CACHE DEPS IDX PROFILE_D.
    let work = f.path("work").display().to_string();
    let line = err
        .lines()
        .find(|l| l.contains("finalize args: "))
        .unwrap_or_else(|| panic!("{err}"));
    let args: Vec<&str> = line
        .split("finalize args: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(args.len(), 5, "{line}");
    assert!(
        args[0].starts_with(&work) && args[0].ends_with("/droplet/app"),
        "{line}"
    );
    assert!(
        args[1].ends_with("/cache/final") && args[2].ends_with("/droplet/deps"),
        "{line}"
    );
    assert_eq!(args[3], "0", "{line}");
    assert!(args[4].ends_with("/droplet/profile.d"), "{line}");
    assert!(err.contains(&format!("detect args: {}", args[0])), "{err}");
    // The work dir is gone after the build.
    assert_eq!(std::fs::read_dir(f.path("work")).unwrap().count(), 0);
}

#[test]
fn output_is_streamed_in_order_with_cf_environment() {
    let f = Fixture::new();
    let finalize = r#"
echo "step 1"; sleep 1; echo "step 2"; echo "step 3"
for v in CF_STACK MEMORY_LIMIT VCAP_SERVICES LANG FOO; do eval "echo ENV $v=\$$v"; done
echo "ENV VCAP_APPLICATION=$VCAP_APPLICATION"
"#;
    f.buildpack("envbp", &[DETECT_OK, ("finalize", finalize), RELEASE_OK]);
    let args = f.args(&["--name", "envapp", "--env", "FOO=bar"]);
    let mut child = Command::new(bin())
        .args(&args)
        .env("DROPSHIP_STACK_CACHE", stack_cache())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each stderr line with the time it arrived.
    let start = Instant::now();
    let lines: Vec<(Duration, String)> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(|l| (start.elapsed(), l.unwrap()))
        .collect();
    assert!(child.wait().unwrap().success(), "{lines:#?}");
    let at = |needle: &str| {
        lines
            .iter()
            .position(|(_, l)| l.trim() == needle)
            .unwrap_or_else(|| panic!("no {needle:?} in {lines:#?}"))
    };
    let (s1, s2, s3) = (at("step 1"), at("step 2"), at("step 3"));
    assert!(s1 < s2 && s2 < s3, "{lines:#?}");
    assert!(
        lines[s3].0 - lines[s1].0 >= Duration::from_millis(700),
        "step 1 was not streamed: {lines:#?}"
    );
    for want in [
        "ENV CF_STACK=busybox",
        "ENV MEMORY_LIMIT=1024m",
        "ENV VCAP_SERVICES={}",
        "ENV LANG=en_US.UTF-8",
        "ENV FOO=bar",
    ] {
        at(want);
    }
    let vcap = lines
        .iter()
        .find_map(|(_, l)| l.trim().strip_prefix("ENV VCAP_APPLICATION="))
        .unwrap();
    let vcap: serde_json::Value =
        serde_json::from_str(vcap).unwrap_or_else(|e| panic!("{e}: {vcap}"));
    assert_eq!(vcap["application_name"], "envapp");
    assert_eq!(vcap["limits"]["mem"], 1024);
}
