use super::*;
use crate::failure::{BuildFailure, Phase};
use crate::store::sql::{self, params, Connection};
use crate::store::{self, Db};

fn round_trip<T: ToSql + FromSql>(c: &Connection, v: &T) -> T {
    c.query_row("SELECT ?1", params![v], |r| r.get(0)).unwrap()
}

#[test]
fn states_kinds_and_health_checks_round_trip_through_sqlite() {
    let lite = rusqlite::Connection::open_in_memory().unwrap();
    let c = Connection::sqlite(&lite);
    for s in BuildState::ALL {
        assert_eq!(round_trip(&c, &s), s);
    }
    for s in PackageState::ALL {
        assert_eq!(round_trip(&c, &s), s);
    }
    for k in [
        FailureKind::CompileFailed,
        FailureKind::LimitExceeded(Phase::Finalize),
        FailureKind::Interrupted,
    ] {
        assert_eq!(round_trip(&c, &k), k);
    }
    let http: HealthCheck = "http:/up".parse().unwrap();
    for h in [HealthCheck::Port, HealthCheck::Process, http] {
        assert_eq!(round_trip(&c, &h), h);
    }
    // The stored forms are CF's words.
    let stored: String = c
        .query_row("SELECT ?1", params![BuildState::Staged], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, "STAGED");
}

#[test]
fn an_unknown_value_in_the_database_is_an_error_that_names_it() {
    let lite = rusqlite::Connection::open_in_memory().unwrap();
    let c = Connection::sqlite(&lite);
    let read = |sql: &str| -> String {
        let r: sql::Result<BuildState> = c.query_row(sql, params![], |r| r.get(0));
        r.unwrap_err().to_string()
    };
    assert!(read("SELECT 'BOGUS'").contains("unknown build state \"BOGUS\""));
    assert!(read("SELECT 'staged'").contains("unknown build state"));
    assert!(read("SELECT 42").contains("Invalid column type"));
    let r: sql::Result<FailureKind> = c.query_row("SELECT 'x'", params![], |r| r.get(0));
    assert!(r.unwrap_err().to_string().contains("unknown failure kind"));
    let r: sql::Result<HealthCheck> = c.query_row("SELECT 'tcp'", params![], |r| r.get(0));
    assert!(r.unwrap_err().to_string().contains("health check type"));
}

#[test]
fn a_damaged_row_fails_the_read_not_the_process() {
    let d = tempfile::tempdir().unwrap();
    let db = Db::open(&d.path().join("t.db")).unwrap();
    let guard = db.sqlite_guard();
    let c = Connection::sqlite(&guard);
    c.execute(
        "INSERT INTO builds (guid, app_guid, package_guid, state, stack, created_at, updated_at)
         VALUES ('b', 'a', 'p', 'HALF_DONE', 's', 't', 't')",
        params![],
    )
    .unwrap();
    let e = store::get_build(&c, "b").unwrap_err();
    assert!(e.to_string().contains("\"HALF_DONE\""), "{e}");
}

#[test]
fn guards_say_which_transitions_are_allowed() {
    assert!(BuildState::Staging.can_finish() && !BuildState::Staging.is_final());
    assert!(!BuildState::Staged.can_finish() && BuildState::Failed.is_final());
    assert!(PackageState::AwaitingUpload.can_upload());
    assert!(!PackageState::Ready.can_upload() && PackageState::Ready.can_stage());
    assert!(!PackageState::ProcessingUpload.can_stage());
    // JSON and the database say the same words.
    for s in PackageState::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    for s in BuildState::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
}

/// A database written before failure kinds: its failed builds get their kind from CF's error
/// text once, when it is opened.
#[test]
fn an_old_database_is_migrated_and_keeps_its_builds() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("old.db");
    let old = rusqlite::Connection::open(&path).unwrap();
    old.execute_batch(super::super::SCHEMA).unwrap();
    let rows = [
        (
            "b1",
            "FAILED",
            Some("BuildpackCompileFailed - Failed to compile droplet: x"),
        ),
        (
            "b2",
            "FAILED",
            Some("StagingError - Failed to run all supply scripts: b: 1"),
        ),
        ("b3", "STAGED", None),
    ];
    for (guid, state, error) in rows {
        old.execute(
            "INSERT INTO builds (guid, app_guid, package_guid, state, error, stack, created_at,
             updated_at) VALUES (?1, 'a', 'p', ?2, ?3, 's', 't', 't')",
            rusqlite::params![guid, state, error],
        )
        .unwrap();
    }
    for (guid, name, droplet) in [("a1", "running", Some("d1")), ("a2", "new", None)] {
        old.execute(
            "INSERT INTO apps (guid, name, current_droplet, created_at, updated_at)
             VALUES (?1, ?2, ?3, 't', 't')",
            rusqlite::params![guid, name, droplet],
        )
        .unwrap();
    }
    drop(old);
    let db = Db::open(&path).unwrap();
    let guard = db.sqlite_guard();
    let c = Connection::sqlite(&guard);
    // An app with a current droplet counted as started: it still does.
    let state = |g: &str| store::get_app(&c, g).unwrap().unwrap().state;
    assert_eq!(
        (state("a1"), state("a2")),
        (AppState::Started, AppState::Stopped)
    );
    let failure = |g: &str| store::get_build(&c, g).unwrap().unwrap().failure;
    assert_eq!(
        failure("b1"),
        Some(BuildFailure::new(
            FailureKind::CompileFailed,
            "Failed to compile droplet: x"
        ))
    );
    assert_eq!(failure("b2").unwrap().kind, FailureKind::SupplyFailed);
    assert_eq!(failure("b3"), None);
    let v: i64 = guard
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(
        v as usize,
        crate::store::migrate::STEPS.len(),
        "every step applied"
    );
    // Apps made before spaces are in the default one, which exists.
    let a1 = store::get_app(&c, "a1").unwrap().unwrap();
    assert_eq!(a1.space_guid, store::DEFAULT_SPACE_GUID);
    let space = store::get_space(&c, &a1.space_guid).unwrap().unwrap();
    assert_eq!(space.org_guid, store::DEFAULT_ORG_GUID);
    drop(c);
    Db::open(&path).expect("opening again migrates nothing twice");
}
