//! PostgreSQL for replicas: a pool of connections and the schema's versioned migrations,
//! applied at start under an advisory lock so replicas starting together apply each migration
//! once. The schema is SQLite's (`store/mod.rs` + `migrate.rs`) as it stands now, with BIGINT
//! for INTEGER, so the same row functions run on both (`store/sql/`).
//!
//! Own runner rather than refinery/sqlx: the list is short, runs inside one transaction under
//! the advisory lock, and SQLite keeps its own (`user_version`) steps.

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
    // 1: every table, as SQLite's schema version 9 has them; the default org and space.
    "CREATE TABLE apps (
        guid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, env TEXT NOT NULL DEFAULT '{}',
        current_droplet TEXT, instances BIGINT NOT NULL DEFAULT 1,
        memory_mb BIGINT NOT NULL DEFAULT 1024, disk_mb BIGINT NOT NULL DEFAULT 1024,
        health_check TEXT NOT NULL DEFAULT 'port', created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'STOPPED',
        space_guid TEXT NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001',
        buildpacks TEXT NOT NULL DEFAULT '[]', stack TEXT);
     CREATE TABLE packages (
        guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
        checksum TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
     CREATE TABLE builds (
        guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, package_guid TEXT NOT NULL,
        state TEXT NOT NULL, error TEXT, droplet_guid TEXT,
        buildpacks TEXT NOT NULL DEFAULT '[]', stack TEXT NOT NULL, created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL, error_kind TEXT, attempts BIGINT NOT NULL DEFAULT 0);
     CREATE TABLE droplets (
        guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, build_guid TEXT NOT NULL,
        package_guid TEXT NOT NULL, checksum TEXT NOT NULL, image TEXT NOT NULL,
        process_types TEXT NOT NULL, buildpacks TEXT NOT NULL, stack TEXT NOT NULL,
        detected_buildpack TEXT NOT NULL, start_command TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
     CREATE TABLE resources (
        sha1 TEXT PRIMARY KEY, size BIGINT NOT NULL, last_used BIGINT NOT NULL);
     CREATE INDEX resources_lru ON resources (last_used, sha1);
     CREATE TABLE jobs (
        guid TEXT PRIMARY KEY, operation TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        warnings TEXT NOT NULL DEFAULT '[]', result TEXT);
     CREATE TABLE organizations (
        guid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
     CREATE TABLE spaces (
        guid TEXT PRIMARY KEY, name TEXT NOT NULL, org_guid TEXT NOT NULL,
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (org_guid, name));
     CREATE TABLE processes (
        app_guid TEXT NOT NULL, type TEXT NOT NULL, command TEXT, health_check TEXT,
        endpoint TEXT, timeout_s BIGINT, invocation_timeout_s BIGINT, instances BIGINT,
        memory_mb BIGINT, disk_mb BIGINT, PRIMARY KEY (app_guid, type));
     INSERT INTO organizations VALUES ('00000000-0000-4000-8000-000000000002', 'dropship',
        '1970-01-01T00:00:01Z', '1970-01-01T00:00:01Z');
     INSERT INTO spaces VALUES ('00000000-0000-4000-8000-000000000001', 'dropship',
        '00000000-0000-4000-8000-000000000002', '1970-01-01T00:00:01Z', '1970-01-01T00:00:01Z');",
    // 2: SQLite's 10 and 11: the build queue's lease on the builds, the logs' chunks.
    "ALTER TABLE builds ADD COLUMN lease_owner TEXT;
     ALTER TABLE builds ADD COLUMN lease_until BIGINT;
     ALTER TABLE builds ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0;
     CREATE INDEX builds_queue ON builds (state, queued_at);
     CREATE TABLE build_log_chunks (
        build_guid TEXT NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL,
        stamps TEXT NOT NULL, PRIMARY KEY (build_guid, seq));",
    // 3: SQLite's 13: which replicas are alive, who owns an upload or a job in flight.
    "CREATE TABLE replicas (id TEXT PRIMARY KEY, seen_at BIGINT NOT NULL);
     ALTER TABLE packages ADD COLUMN owner TEXT;
     ALTER TABLE jobs ADD COLUMN owner TEXT;",
    // 4: SQLite's 14: named locks held for a while.
    "CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until BIGINT NOT NULL);",
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
