//! The SQLite driver: a borrowed rusqlite connection, statements cached by text.

use super::{Dialect, Driver, Result, Row, SqlError, ToSql, Value};
use rusqlite::types::{Value as Lite, ValueRef};
use std::sync::Arc;

pub struct Sqlite<'a>(pub &'a rusqlite::Connection);

fn bind(params: &[&dyn ToSql]) -> Vec<Lite> {
    (params.iter())
        .map(|p| match p.to_value() {
            Value::Null => Lite::Null,
            Value::Int(i) => Lite::Integer(i),
            Value::Text(s) => Lite::Text(s),
        })
        .collect()
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) if f.fract() == 0.0 => Value::Int(f as i64),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into()),
    }
}

impl Driver for Sqlite<'_> {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize> {
        let mut stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(bind(params)))?)
    }

    fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let names: Arc<[String]> = stmt.column_names().map(|n| n.to_string()).collect();
        let width = names.len();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(params)))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let values = (0..width)
                .map(|i| r.get_ref(i).map(value))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.push(Row::new(names.clone(), values));
        }
        Ok(out)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.0.execute_batch(sql).map_err(SqlError::from)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}
