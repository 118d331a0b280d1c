//! PostgreSQL for replicas (issue 12): a pool of connections and the schema's versioned
//! migrations, applied at start under an advisory lock so replicas starting together apply
//! each migration once. The build queue with leases is `queue.rs`.

pub mod queue;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("database: {0}")]
    Sql(#[from] tokio_postgres::Error),
    #[error("database: no connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database URL: {0}")]
    Config(String),
}

/// The migrations, in order: version N is `MIGRATIONS[N - 1]`. Never edit one that shipped;
/// add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the build queue.
    "CREATE TABLE build_queue (
        id BIGSERIAL PRIMARY KEY,
        build_guid TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('QUEUED', 'RUNNING', 'DONE', 'FAILED')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL CHECK (max_attempts > 0),
        holder TEXT,
        lease_until TIMESTAMPTZ,
        last_error TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
     CREATE INDEX build_queue_waiting ON build_queue (state, id);",
];

/// A pool for `url` (`postgres://user:password@host:port/db`), checked with one connection,
/// and the schema migrated.
pub async fn connect(url: &str, size: usize) -> Result<Pool, PgError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| PgError::Config(e.to_string()))?;
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| PgError::Config(e.to_string()))?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the migrations not applied yet, each in the transaction that records it.
async fn migrate(pool: &Pool) -> Result<(), PgError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    // One replica at a time (the lock ends with the transaction).
    tx.execute("SELECT pg_advisory_xact_lock(727001)", &[])
        .await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        &[],
    )
    .await?;
    let done: i32 = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .await?
        .map(|r| r.get(0))
        .unwrap_or(0);
    if done as usize > MIGRATIONS.len() {
        return Err(PgError::Config(format!(
            "the database's schema is version {done}, newer than this dropship's {}: \
             run the newer dropship",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[done as usize..] {
        tx.batch_execute(sql).await?;
    }
    tx.execute("DELETE FROM schema_version", &[]).await?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&(MIGRATIONS.len() as i32)],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
