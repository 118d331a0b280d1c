//! The queue's SQL on a real SQLite file: each build claimed once, in order; a lease that ran
//! out moves to another owner and its old one can neither renew nor record; a build out of
//! attempts is reaped with the reason; a release hands the build over without using an attempt.

use super::*;
use crate::store::{get_build, insert_build, Build, Db};

fn build(guid: &str) -> Build {
    let t = now();
    Build {
        guid: guid.into(),
        app_guid: "a".into(),
        package_guid: "p".into(),
        state: BuildState::Staging,
        failure: None,
        droplet_guid: None,
        buildpacks: vec![],
        stack: "busybox".into(),
        created_at: t.clone(),
        updated_at: t,
    }
}

fn db() -> (tempfile::TempDir, Db) {
    let d = tempfile::tempdir().unwrap();
    let db = Db::open(&d.path().join("q.db")).unwrap();
    (d, db)
}

const LONG: Duration = Duration::from_secs(30);

#[test]
fn builds_are_claimed_once_in_order_and_recorded_only_by_their_holder() {
    let (_d, db) = db();
    let guard = db.sqlite_guard();
    let mut c = crate::store::Connection::sqlite(&guard);
    for g in ["b1", "b2"] {
        insert_build(&c, &build(g)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(depth(&c).unwrap(), 2);
    let first = claim(&c, "r1", LONG).unwrap().unwrap();
    assert_eq!(
        first,
        Claim {
            guid: "b1".into(),
            attempt: 1
        }
    );
    let second = claim(&c, "r2", LONG).unwrap().unwrap();
    assert_eq!(second.guid, "b2");
    assert_eq!(claim(&c, "r3", LONG).unwrap(), None, "both held");
    assert_eq!((depth(&c).unwrap(), held(&c, "r1").unwrap()), (0, 1));

    let wrong = Lease {
        guid: "b1",
        owner: "r2",
        attempt: 1,
    };
    let tx = c.transaction().unwrap();
    assert!(!staged(&tx, &wrong, "d").unwrap(), "r2 does not hold b1");
    let ours = Lease {
        guid: "b1",
        owner: "r1",
        attempt: 1,
    };
    assert!(staged(&tx, &ours, "d1").unwrap());
    tx.commit().unwrap();
    let b1 = get_build(&c, "b1").unwrap().unwrap();
    assert_eq!(
        (b1.state, b1.droplet_guid.as_deref()),
        (BuildState::Staged, Some("d1"))
    );
    assert!(
        !renew(&c, &ours, LONG).unwrap(),
        "an ended build has no lease"
    );
}

#[test]
fn a_lapsed_lease_moves_on_and_the_last_one_is_reaped() {
    let (_d, db) = db();
    let guard = db.sqlite_guard();
    let c = crate::store::Connection::sqlite(&guard);
    insert_build(&c, &build("slow")).unwrap();
    let short = Duration::from_millis(50);
    let mut owners = Vec::new();
    for n in 1..=STAGING_ATTEMPTS {
        let owner = format!("r{n}");
        let got = claim(&c, &owner, short).unwrap().unwrap();
        assert_eq!(got.attempt, n);
        assert!(reap(&c).unwrap().is_empty(), "held");
        owners.push(owner);
        std::thread::sleep(Duration::from_millis(80));
    }
    let old = Lease {
        guid: "slow",
        owner: &owners[0],
        attempt: 1,
    };
    assert!(!renew(&c, &old, LONG).unwrap(), "taken over");
    let f = BuildFailure::new(FailureKind::CompileFailed, "late");
    assert!(
        !failed(&c, &old, &f).unwrap(),
        "an old holder records nothing"
    );
    assert_eq!(claim(&c, "r9", short).unwrap(), None, "no attempt left");
    let reaped = reap(&c).unwrap();
    assert_eq!(reaped.len(), 1);
    assert!(
        reaped[0].1.message.contains("interrupted 3 times"),
        "{reaped:?}"
    );
    assert!(reap(&c).unwrap().is_empty(), "reaped once");
    let b = get_build(&c, "slow").unwrap().unwrap();
    assert_eq!(b.failure.unwrap().kind, FailureKind::Interrupted);
}

#[test]
fn a_released_build_is_claimed_again_at_once_with_the_same_attempt() {
    let (_d, db) = db();
    let guard = db.sqlite_guard();
    let c = crate::store::Connection::sqlite(&guard);
    insert_build(&c, &build("handed")).unwrap();
    let got = claim(&c, "stopping", LONG).unwrap().unwrap();
    let lease = Lease {
        guid: "handed",
        owner: "stopping",
        attempt: got.attempt,
    };
    assert!(release(&c, &lease).unwrap());
    assert!(!release(&c, &lease).unwrap(), "released once");
    let again = claim(&c, "other", LONG).unwrap().unwrap();
    assert_eq!(again.attempt, 1, "the hand-over used no attempt");
}
