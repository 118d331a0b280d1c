//! Metadata in SQLite (one connection, WAL, used from blocking tasks; the default) or in
//! PostgreSQL (a pool, for replicas), through one SQL surface (`sql/`), and the data directory's
//! layout on disk. Rows are plain structs; the service turns them into CF v3 JSON.

pub mod jobs;
pub mod log_chunks;
pub mod migrate;
pub mod pg;
pub mod processes;
pub mod queue;
pub mod replicas;
pub mod rows;
pub mod spaces;
pub mod sql;
pub mod states;

pub use sql::{params, Connection, OptionalExtension, Row, SqlError, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use jobs::*;
pub use log_chunks::*;
pub use processes::*;
pub use rows::*;
pub use spaces::*;
pub use states::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] SqlError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("internal: {0}")]
    Join(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e.into())
    }
}

impl StoreError {
    /// The database cannot be reached (worth a 503 and a retry, not a 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Sql(SqlError::Unavailable(_)))
    }
}

/// Where things live under the data directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn db(&self) -> PathBuf {
        self.root.join("dropship.db")
    }
    pub fn packages(&self) -> PathBuf {
        self.root.join("packages")
    }
    pub fn package(&self, guid: &str) -> PathBuf {
        self.packages().join(format!("{guid}.zip"))
    }
    pub fn droplet(&self, guid: &str) -> PathBuf {
        self.root.join("droplets").join(format!("{guid}.tgz"))
    }
    pub fn build_log(&self, guid: &str) -> PathBuf {
        self.root.join("logs").join(format!("{guid}.log"))
    }
    /// Content store of uploaded files, by SHA-1 (resource matching).
    pub fn resources(&self) -> PathBuf {
        self.root.join("resources")
    }
    /// The embedded registry: one OCI layout per repository, sharing one blob store.
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry")
    }
    pub fn registry_blobs(&self) -> PathBuf {
        self.root.join("registry-blobs")
    }
    pub fn repository(&self, name: &str) -> PathBuf {
        self.registry().join(name)
    }
    pub fn caches(&self) -> PathBuf {
        self.root.join("caches")
    }
    pub fn stack_cache(&self) -> PathBuf {
        self.root.join("stack-cache")
    }
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }
    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// Creates the directories (the work dir open to the staging user).
    pub fn create(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::PermissionsExt;
        for d in [
            self.root.clone(),
            self.packages(),
            self.root.join("droplets"),
            self.root.join("logs"),
            self.resources(),
            self.registry(),
            self.registry_blobs(),
            self.caches(),
            self.stack_cache(),
            self.work(),
            self.uploads(),
        ] {
            std::fs::create_dir_all(&d).map_err(|source| StoreError::Io {
                what: format!("creating {}", d.display()),
                source,
            })?;
        }
        for d in [self.root.clone(), self.work(), self.stack_cache()] {
            let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o711));
        }
        Ok(())
    }
}

/// The first schema; what changed since is in `migrate.rs`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS apps (
    guid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, env TEXT NOT NULL DEFAULT '{}',
    current_droplet TEXT, instances INTEGER NOT NULL DEFAULT 1,
    memory_mb INTEGER NOT NULL DEFAULT 1024, disk_mb INTEGER NOT NULL DEFAULT 1024,
    health_check TEXT NOT NULL DEFAULT 'port',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages (
    guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
    checksum TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS builds (
    guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, package_guid TEXT NOT NULL,
    state TEXT NOT NULL, error TEXT, droplet_guid TEXT, buildpacks TEXT NOT NULL DEFAULT '[]',
    stack TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS droplets (
    guid TEXT PRIMARY KEY, app_guid TEXT NOT NULL, build_guid TEXT NOT NULL,
    package_guid TEXT NOT NULL, checksum TEXT NOT NULL, image TEXT NOT NULL,
    process_types TEXT NOT NULL, buildpacks TEXT NOT NULL, stack TEXT NOT NULL,
    detected_buildpack TEXT NOT NULL, start_command TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resources (
    sha1 TEXT PRIMARY KEY, size INTEGER NOT NULL, last_used INTEGER NOT NULL);
";

/// The database: SQLite's one connection behind a mutex, or a PostgreSQL pool; used from
/// blocking threads.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(deadpool_postgres::Pool),
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        migrate::migrate(&mut conn)?;
        Ok(Db {
            backend: Backend::Sqlite(Arc::new(Mutex::new(conn))),
        })
    }

    /// PostgreSQL at `url`, its schema migrated; at most `size` connections.
    pub async fn postgres(url: &str, size: usize) -> Result<Db, StoreError> {
        let pool = pg::connect(url, size).await.map_err(|e| match e {
            pg::PgError::Config(c) => StoreError::Sql(SqlError::Pg(c)),
            e => StoreError::Sql(SqlError::Unavailable(e.to_string())),
        })?;
        Ok(Db {
            backend: Backend::Postgres(pool),
        })
    }

    pub fn dialect(&self) -> sql::Dialect {
        match self.backend {
            Backend::Sqlite(_) => sql::Dialect::Sqlite,
            Backend::Postgres(_) => sql::Dialect::Postgres,
        }
    }

    /// The SQLite connection, locked (unit tests).
    #[cfg(test)]
    pub fn sqlite_guard(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(c) => c.lock().unwrap(),
            Backend::Postgres(_) => panic!("not SQLite"),
        }
    }

    /// Runs `f` with a connection on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&mut Connection<'c>) -> Result<T, StoreError> + Send + 'static,
    {
        let backend = self.backend.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || match backend {
            Backend::Sqlite(conn) => {
                let guard = conn.lock().unwrap_or_else(|p| p.into_inner());
                let out = f(&mut Connection::new(Box::new(sql::sqlite::Sqlite(&guard))));
                out
            }
            Backend::Postgres(pool) => {
                let client = (runtime.block_on(pool.get()))
                    .map_err(|e| StoreError::Sql(SqlError::Unavailable(e.to_string())))?;
                let driver = sql::pg::Postgres {
                    client: &client,
                    runtime,
                };
                let out = f(&mut Connection::new(Box::new(driver)));
                out
            }
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }
}

/// The current time as RFC 3339 (UTC, seconds).
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::image::rfc3339(secs)
}

pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One optional row.
pub fn one<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn sql::ToSql],
    map: impl FnOnce(&Row) -> sql::Result<T>,
) -> Result<Option<T>, StoreError> {
    Ok(conn.query_row(sql, params, map).optional()?)
}
