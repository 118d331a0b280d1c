//! Staging's resource limits through the `dropship` binary: a buildpack that writes past the
//! disk quota, forks without bound, allocates past the memory limit or leaves a sparse file
//! fails the build with the limit named, and leaves nothing behind (no mount, no work dir, no
//! process); with `--sandbox none` nothing a script starts outlives it; platform variables
//! in the app's environment do not reach staging.

use crate::support::staging::Fixture;
use crate::support::*;
use std::process::Output;
use std::time::{Duration, Instant};

const DETECT_OK: (&str, &str) = ("detect", "echo hog");
const RELEASE_OK: (&str, &str) = (
    "release",
    "printf -- '---\\ndefault_process_types:\\n  web: sleep 1\\n'",
);

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The build left no workspace, no staging mount and no process behind.
fn assert_clean(f: &Fixture, needle: &str) {
    let work = f.path("work");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "work dir left behind: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(work.to_str().unwrap()),
        "a staging mount is left: {mounts}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "survivors: {:?}",
            processes_with(needle)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hog(f: &Fixture, finalize: &str, extra: &[&str]) -> Output {
    f.buildpack("hog", &[DETECT_OK, ("finalize", finalize), RELEASE_OK]);
    f.build(extra)
}

#[test]
fn writing_past_the_disk_quota_fails_the_build() {
    for (sandbox, target) in [
        ("bwrap", "/tmp/app/big"),
        ("bwrap", "/tmp/big"),
        ("none", "\"$1/big\""),
        ("none", "\"$TMPDIR/big\""),
    ] {
        let f = Fixture::new();
        let script = format!(
            "echo writing; dd if=/dev/zero of={target} bs=1M count=200 2>&1 | tail -1; sleep 60"
        );
        let start = Instant::now();
        let o = hog(&f, &script, &["--disk", "64M", "--sandbox", sandbox]);
        assert_eq!(
            o.status.code(),
            Some(226),
            "{sandbox} {target}: {}",
            text(&o)
        );
        assert!(
            stderr(&o).contains("disk quota of 64M exceeded"),
            "{sandbox} {target}: {}",
            text(&o)
        );
        assert!(start.elapsed() < Duration::from_secs(30), "stopped at once");
        assert_clean(&f, "sleep 60");
    }
}

#[test]
fn forking_without_bound_hits_the_process_limit() {
    let f = Fixture::new();
    let bomb = "i=0; while [ $i -lt 500 ]; do sleep 2718 & i=$((i+1)); done; wait";
    let o = hog(&f, bomb, &["--staging-pids", "64"]);
    if !is_root() {
        eprintln!("not root: no control group, the limit is RLIMIT_NPROC of the whole user");
        return;
    }
    assert_eq!(o.status.code(), Some(226), "{}", text(&o));
    assert!(
        stderr(&o).contains("process limit of 64 reached"),
        "{}",
        text(&o)
    );
    assert_clean(&f, "sleep 2718");
}

#[test]
fn allocating_past_the_memory_limit_fails_the_build() {
    if !is_root() {
        eprintln!("skipped: memory is bounded by a control group, which needs root");
        return;
    }
    let f = Fixture::new();
    // busybox dd allocates its block: 600 MiB, touched by reading /dev/zero into it.
    // The OOM killer ends dd; the script would go on, but the build stops at once.
    let start = Instant::now();
    let o = hog(
        &f,
        "dd if=/dev/zero of=/dev/null bs=600M count=2; sleep 30",
        &["--memory", "64M", "--disk", "64M"],
    );
    assert_eq!(o.status.code(), Some(226), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("memory limit of 64M exceeded"), "{}", text(&o));
    assert!(start.elapsed() < Duration::from_secs(20), "stopped at once");
    assert_clean(&f, "bs=600M");
}

#[test]
fn a_sparse_file_does_not_become_a_layer() {
    let f = Fixture::new();
    // 2 GiB apparent size, nothing written: within a 4G quota, refused when packaging.
    let o = hog(
        &f,
        "dd if=/dev/zero of=\"$1/sparse\" bs=1 count=0 seek=2G 2>/dev/null; ls -ls \"$1/sparse\"",
        &["--disk", "4G"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("app/sparse is a sparse file"),
        "{}",
        text(&o)
    );
    assert!(!f.path("out").join("index.json").exists(), "no image");
    // Over the quota, the kernel stops the file itself (RLIMIT_FSIZE).
    let o = hog(
        &f,
        "dd if=/dev/zero of=\"$1/sparse\" bs=1 count=0 seek=2G",
        &["--disk", "1G"],
    );
    assert_eq!(o.status.code(), Some(226), "{}", text(&o));
    assert!(
        stderr(&o).contains("disk quota of 1G exceeded"),
        "{}",
        text(&o)
    );
    assert_clean(&f, "seek=2G");
}

#[test]
fn sandbox_none_kills_what_scripts_leave_running() {
    let f = Fixture::new();
    // A daemon in its own session, double-forked, with its output closed.
    let finalize = "setsid sh -c 'sleep 1618 </dev/null >/dev/null 2>&1 &'; \
                    (sleep 1619 </dev/null >/dev/null 2>&1 &); echo detached; exit 0";
    let o = hog(&f, finalize, &["--sandbox", "none"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("detached"));
    if !is_root() {
        eprintln!("not root: only the script's process group is killed");
        return;
    }
    assert_clean(&f, "sleep 161");
}

#[test]
fn platform_variables_in_the_app_env_do_not_reach_staging() {
    let f = Fixture::new();
    let probe = "echo \"PATH=[$PATH] LD_PRELOAD=[$LD_PRELOAD] HOME=[$HOME] MINE=[$MINE]\"";
    let o = hog(
        &f,
        probe,
        &[
            "--env",
            "PATH=/tmp/app/evil",
            "--env",
            "LD_PRELOAD=/tmp/app/evil.so",
            "--env",
            "HOME=/tmp/app",
            "--env",
            "MINE=kept",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "PATH=[/usr/local/bin:/usr/bin:/bin] LD_PRELOAD=[] HOME=[/home/vcap] MINE=[kept]"
        ),
        "{err}"
    );
    assert!(err.contains("LD_PRELOAD from the app's environment is not used in staging"));
    for bad in ["A-B=1", "1A=x", "VCAP_SERVICES={}", "=x"] {
        let o = f.build(&["--env", bad]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", text(&o));
        assert!(stderr(&o).contains("--env"), "{bad}: {}", text(&o));
    }
}

#[test]
fn an_app_larger_than_the_disk_quota_stops_at_intake() {
    if !is_root() {
        eprintln!("skipped: the quota is a tmpfs, which needs root");
        return;
    }
    let f = Fixture::new();
    random_file(&f.path("app/big.bin"), 40 << 20);
    let o = hog(&f, "echo never", &["--disk", "16M"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains("does not fit in the disk quota of 16M"),
        "{}",
        text(&o)
    );
    assert!(!err.contains("never"), "{err}");
    assert_clean(&f, "echo never");
}

#[test]
fn an_interrupted_build_stops_its_scripts_and_removes_its_work_dir() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let f = Fixture::new();
        f.buildpack(
            "slow",
            &[
                DETECT_OK,
                ("finalize", "echo started; sleep 2900"),
                RELEASE_OK,
            ],
        );
        let mut child = Command::new(bin())
            .args(f.args(&[]))
            .env("DROPSHIP_STACK_CACHE", stack_cache())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            seen.push(line.clone());
            if line.contains("started") {
                break;
            }
        }
        assert!(
            seen.iter().any(|l| l.contains("started")),
            "never started: {seen:?}"
        );
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + signal), "{rest:?}");
        assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
        assert_clean(&f, "sleep 2900");
    }
}
