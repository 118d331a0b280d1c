//! One SQL surface over two engines: the row functions of `store/` are written once, in SQL that
//! SQLite and PostgreSQL both run (`?N` placeholders, `ON CONFLICT`, `RETURNING`, INTEGER and TEXT
//! columns), against a [`Connection`] whose driver is SQLite's (`sqlite.rs`, the default) or
//! PostgreSQL's (`pg.rs`, for replicas). The surface is rusqlite's in miniature (`execute`,
//! `query_row`, `prepare` + `query_map`, `transaction`), values are [`Value`]s.
//!
//! Why not sqlx's `Any` driver: the store was written on rusqlite (whose bundled SQLite would
//! clash with sqlx's), and every call site would have become async; this layer keeps the row
//! functions synchronous on the blocking pool, as they were.

pub mod pg;
pub mod sqlite;

use std::fmt;
use std::sync::Arc;

/// A value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Pg(String),
    /// The database cannot be reached (PostgreSQL down, the pool empty): worth a 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("Query returned no rows")]
    NoRows,
    #[error("no column {0}")]
    NoColumn(String),
    /// A column's value is not of the type asked for (or not one of its enum's words).
    #[error("column {column}: {detail}")]
    Conversion { column: String, detail: String },
}

pub type Result<T> = std::result::Result<T, SqlError>;

/// What can be bound to a placeholder.
pub trait ToSql {
    fn to_value(&self) -> Value;
}

/// What a column can be read as.
pub trait FromSql: Sized {
    /// `Err(detail)` names what was wrong with the value.
    fn from_value(v: &Value) -> std::result::Result<Self, String>;
}

/// Which SQL dialect a connection speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One engine's side: statements in (with `?N` placeholders), rows out.
pub trait Driver {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize>;
    fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>>;
    /// Statements without parameters, separated by `;` (transaction control, DDL).
    fn batch(&self, sql: &str) -> Result<()>;
    fn dialect(&self) -> Dialect;
}

/// A connection: one engine's driver, borrowed for one `Db::call`.
pub struct Connection<'a> {
    driver: Box<dyn Driver + 'a>,
}

/// A row: its column names (shared by the rows of one query) and values.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub fn new(names: Arc<[String]>, values: Vec<Value>) -> Row {
        Row { names, values }
    }

    /// The column `i` (a name or a position) as `T`.
    pub fn get<I: RowIndex, T: FromSql>(&self, i: I) -> Result<T> {
        let at = i
            .index(&self.names)
            .ok_or_else(|| SqlError::NoColumn(i.name()))?;
        T::from_value(&self.values[at]).map_err(|detail| SqlError::Conversion {
            column: self.names[at].clone(),
            detail,
        })
    }
}

/// A column by name (case-insensitive, as SQL's) or by position.
pub trait RowIndex {
    fn index(&self, names: &[String]) -> Option<usize>;
    fn name(&self) -> String;
}

impl RowIndex for &str {
    fn index(&self, names: &[String]) -> Option<usize> {
        names.iter().position(|n| n.eq_ignore_ascii_case(self))
    }
    fn name(&self) -> String {
        self.to_string()
    }
}

impl RowIndex for usize {
    fn index(&self, names: &[String]) -> Option<usize> {
        (*self < names.len()).then_some(*self)
    }
    fn name(&self) -> String {
        format!("#{self}")
    }
}

/// `params![a, b]`: the values of a statement's placeholders, in order.
#[macro_export]
macro_rules! sql_params {
    () => { &[] as &[&dyn $crate::store::sql::ToSql] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::sql::ToSql),+] as &[&dyn $crate::store::sql::ToSql] };
}
pub use crate::sql_params as params;

impl<'a> Connection<'a> {
    pub fn new(driver: Box<dyn Driver + 'a>) -> Connection<'a> {
        Connection { driver }
    }

    /// A connection over SQLite's `c`.
    pub fn sqlite(c: &'a rusqlite::Connection) -> Connection<'a> {
        Connection::new(Box::new(sqlite::Sqlite(c)))
    }

    pub fn dialect(&self) -> Dialect {
        self.driver.dialect()
    }

    /// Runs a statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize> {
        self.driver.execute(sql, params)
    }

    /// The first row of a query, mapped; [`SqlError::NoRows`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        map: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let rows = self.driver.query(sql, params)?;
        map(rows.first().ok_or(SqlError::NoRows)?)
    }

    /// Every row of a query, mapped.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        map: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.driver.query(sql, params)?.iter().map(map).collect()
    }

    /// A statement run several times (rusqlite's shape; each run is sent as is).
    pub fn prepare<'c>(&'c self, sql: &str) -> Result<Statement<'c, 'a>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_string(),
        })
    }

    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        self.driver.batch(sql)
    }

    /// A transaction: committed by [`Transaction::commit`], rolled back when dropped before.
    pub fn transaction<'c>(&'c mut self) -> Result<Transaction<'c, 'a>> {
        let begin = match self.dialect() {
            // Taking the write lock at the start: two processes on one file never deadlock
            // upgrading a read to a write.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.driver.batch(begin)?;
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }
}

pub struct Statement<'c, 'a> {
    conn: &'c Connection<'a>,
    sql: String,
}

impl Statement<'_, '_> {
    pub fn execute(&mut self, params: &[&dyn ToSql]) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }
    pub fn query_row<T>(
        &mut self,
        params: &[&dyn ToSql],
        map: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        self.conn.query_row(&self.sql, params, map)
    }
    /// The rows, each mapped (rusqlite's shape: collect them into a `Result<Vec<_>>`).
    pub fn query_map<T>(
        &mut self,
        params: &[&dyn ToSql],
        map: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.conn.driver.query(&self.sql, params)?;
        Ok(rows.iter().map(map).collect::<Vec<_>>().into_iter())
    }
}

pub struct Transaction<'c, 'a> {
    conn: &'c mut Connection<'a>,
    done: bool,
}

impl Transaction<'_, '_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.driver.batch("COMMIT")
    }
}

impl<'a> std::ops::Deref for Transaction<'_, 'a> {
    type Target = Connection<'a>;
    fn deref(&self) -> &Connection<'a> {
        self.conn
    }
}

impl Drop for Transaction<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.driver.batch("ROLLBACK");
        }
    }
}

/// `.optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Text(s) => write!(f, "{s:?}"),
        }
    }
}

mod values;
pub use values::text_value;
