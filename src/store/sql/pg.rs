//! The PostgreSQL driver: a pooled tokio-postgres client used from a blocking thread (each
//! statement waits on the runtime's handle), `?N` placeholders rewritten to `$N`, statements
//! prepared once per connection. Values are converted to the type PostgreSQL inferred for
//! each placeholder and read back by each column's type.

use super::{Dialect, Driver, Result, Row, SqlError, ToSql, Value};
use bytes::BytesMut;
use std::error::Error;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio_postgres::types::{IsNull, ToSql as PgToSql, Type};

pub struct Postgres<'a> {
    pub client: &'a deadpool_postgres::Client,
    pub runtime: Handle,
}

/// `?N` (and bare `?`) as `$N`, outside quoted strings and identifiers.
pub fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    // A bare `?` is one more than the largest number so far, as in SQLite.
    let (mut quote, mut largest) = (None::<char>, 0usize);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                if digits.is_empty() {
                    largest += 1;
                    digits = largest.to_string();
                }
                largest = largest.max(digits.parse().unwrap_or(0));
                out.push('$');
                out.push_str(&digits);
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Whether `e` means the server is gone (restarting, unreachable) rather than a bad statement.
pub fn unavailable(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
    }
}

pub fn error(e: tokio_postgres::Error) -> SqlError {
    if unavailable(&e) {
        SqlError::Unavailable(e.to_string())
    } else {
        let detail = e.as_db_error().map(|d| d.message().to_string());
        SqlError::Pg(detail.unwrap_or_else(|| e.to_string()))
    }
}

#[derive(Debug)]
struct Param(Value);

type BoxError = Box<dyn Error + Sync + Send>;

impl PgToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        let int = |s: &str| s.parse::<i64>();
        match (&self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Int(i), _) => i.to_string().as_str().to_sql(ty, out),
            (Value::Text(s), &Type::INT8) => int(s)?.to_sql(ty, out),
            (Value::Text(s), &Type::INT4) => i32::try_from(int(s)?)?.to_sql(ty, out),
            (Value::Text(s), _) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

fn column(
    row: &tokio_postgres::Row,
    i: usize,
) -> std::result::Result<Value, tokio_postgres::Error> {
    let ty = row.columns()[i].type_();
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
    Ok(match *ty {
        Type::INT8 => int(row.try_get::<_, Option<i64>>(i)?),
        Type::INT4 => int(row.try_get::<_, Option<i32>>(i)?.map(i64::from)),
        Type::INT2 => int(row.try_get::<_, Option<i16>>(i)?.map(i64::from)),
        Type::BOOL => int(row.try_get::<_, Option<bool>>(i)?.map(i64::from)),
        _ => (row.try_get::<_, Option<String>>(i)?).map_or(Value::Null, Value::Text),
    })
}

impl Postgres<'_> {
    fn statement(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        let sql = placeholders(sql);
        (self.runtime.block_on(self.client.prepare_cached(&sql))).map_err(error)
    }
}

fn bind(params: &[&dyn ToSql]) -> Vec<Param> {
    params.iter().map(|p| Param(p.to_value())).collect()
}

fn refs(params: &[Param]) -> Vec<&(dyn PgToSql + Sync)> {
    params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect()
}

impl Driver for Postgres<'_> {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize> {
        let stmt = self.statement(sql)?;
        let values = bind(params);
        let n = (self
            .runtime
            .block_on(self.client.execute(&stmt, &refs(&values))))
        .map_err(error)?;
        Ok(n as usize)
    }

    fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let values = bind(params);
        let rows = (self
            .runtime
            .block_on(self.client.query(&stmt, &refs(&values))))
        .map_err(error)?;
        let names: Arc<[String]> = stmt.columns().iter().map(|c| c.name().into()).collect();
        rows.iter()
            .map(|r| {
                let values = (0..names.len()).map(|i| column(r, i));
                let values = values.collect::<std::result::Result<Vec<_>, _>>();
                Ok(Row::new(names.clone(), values.map_err(error)?))
            })
            .collect()
    }

    fn batch(&self, sql: &str) -> Result<()> {
        (self.runtime.block_on(self.client.batch_execute(sql))).map_err(error)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            placeholders("UPDATE t SET a = ?2, b = '?1' WHERE c = ?1 AND d = ?"),
            "UPDATE t SET a = $2, b = '?1' WHERE c = $1 AND d = $3"
        );
        assert_eq!(placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
    }
}
