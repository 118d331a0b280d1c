//! The build queue of replicas on a real PostgreSQL (issue 12's leases, before the service
//! uses them): concurrent workers claim every job exactly once; a lease that runs out is
//! claimed again by another worker, and its old holder can neither renew nor finish it; a job
//! out of attempts is failed by `reap` with a reason; a released job goes back to the queue.

use crate::support::*;
use dropship::store::pg::{self, queue::PgQueue};
use std::collections::BTreeSet;
use std::time::Duration;

async fn queue(pg: &Postgres, db: &str) -> PgQueue {
    let pool = pg::connect(&pg.database(db), 16).await.unwrap();
    PgQueue::new(pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_workers_claim_each_job_once() {
    let pg = Postgres::start();
    let q = queue(&pg, "claims").await;
    for i in 0..40 {
        q.push(&format!("build-{i:02}"), 3).await.unwrap();
    }
    q.push("build-00", 3).await.unwrap(); // queued twice: still one job
    assert_eq!(q.depth().await.unwrap(), 40);
    let mut workers = Vec::new();
    for w in 0..8 {
        let q = q.clone();
        workers.push(tokio::spawn(async move {
            let holder = format!("replica-{w}");
            let mut got = Vec::new();
            while let Some(lease) = q.claim(&holder, Duration::from_secs(30)).await.unwrap() {
                assert_eq!(lease.attempt, 1);
                assert!(q.finish(&lease, &holder, None).await.unwrap());
                got.push(lease.build_guid);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let distinct: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (40, 40),
        "each job once: {all:?}"
    );
    assert_eq!(q.depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_lease_moves_to_another_worker_and_attempts_end_in_failure() {
    let pg = Postgres::start();
    let q = queue(&pg, "leases").await;
    q.push("slow", 2).await.unwrap();
    let short = Duration::from_millis(300);
    let first = q.claim("a", short).await.unwrap().unwrap();
    assert!(q.claim("b", short).await.unwrap().is_none(), "held");
    assert!(q.renew(&first, "a", short).await.unwrap());
    assert_eq!(q.held("a").await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // "a" stopped renewing: "b" takes the job over; "a" can no longer touch it.
    let second = q.claim("b", short).await.unwrap().unwrap();
    assert_eq!((second.build_guid.as_str(), second.attempt), ("slow", 2));
    assert!(!q.renew(&first, "a", short).await.unwrap());
    assert!(!q.finish(&first, "a", None).await.unwrap());
    assert!(q.reap().await.unwrap().is_empty(), "b holds it");

    // "b" dies too: no attempt left, so nobody claims it and reap fails it, saying why.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(q.claim("c", short).await.unwrap().is_none());
    let gave_up = q.reap().await.unwrap();
    assert_eq!(gave_up.len(), 1);
    assert_eq!(gave_up[0].build_guid, "slow");
    assert!(
        gave_up[0].reason.contains("interrupted 2 times"),
        "{gave_up:?}"
    );
    assert!(q.reap().await.unwrap().is_empty(), "failed once");
    assert!(!q.finish(&second, "b", None).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_job_is_queued_again_without_losing_an_attempt() {
    let pg = Postgres::start();
    let q = queue(&pg, "release").await;
    q.push("handed-over", 1).await.unwrap();
    let lease = q
        .claim("stopping", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(q.release(&lease, "stopping").await.unwrap());
    let again = q
        .claim("other", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.attempt, 1, "the release did not count as an attempt");
    assert!(q
        .finish(&again, "other", Some("compile failed"))
        .await
        .unwrap());
    assert!(q
        .claim("other", Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_starting_together_migrate_once() {
    let pg = Postgres::start();
    let url = pg.database("migrations");
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { pg::connect(&url, 2).await.map(|_| ()) })
        })
        .collect();
    for s in starts {
        s.await.unwrap().unwrap();
    }
    let versions = pg.psql_in(
        "migrations",
        "SELECT count(*), max(version) FROM schema_version",
    );
    assert_eq!(versions, "1|1");
}
