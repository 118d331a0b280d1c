//! Staging logs in the database, so that every replica reads them: the replica staging a
//! build appends its log as chunks of whole lines (`build_log_chunks`, numbered from 0 per
//! build, each at most about 64 KiB); readers anywhere follow them by number. A restarted
//! replica, or another one taking the build over, appends to the same log.
//!
//! `stamps` holds one record per line of `body`, `LEN NANOS STREAM\n`: the line's length in
//! bytes with its newline, when it was written (ns since the epoch), `O` (output and service
//! lines) or `E` (warnings). The log cache reads lines and times from them.

use super::{one, StoreError};
use super::{params, Connection, Row};

/// A chunk to append: whole lines, and their stamps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewChunk {
    pub body: String,
    pub stamps: String,
}

/// A stored chunk's text and its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub seq: u64,
    pub body: String,
}

/// Migration step: the table. (PostgreSQL: the same columns, INTEGER as BIGINT.)
pub fn create_chunks_table(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "CREATE TABLE build_log_chunks (
            build_guid TEXT NOT NULL, seq INTEGER NOT NULL,
            body TEXT NOT NULL, stamps TEXT NOT NULL,
            PRIMARY KEY (build_guid, seq))",
    )?;
    Ok(())
}

fn chunk_row(r: &Row) -> super::sql::Result<LogChunk> {
    Ok(LogChunk {
        seq: r.get::<_, i64>("seq")? as u64,
        body: r.get("body")?,
    })
}

/// Appends `chunk` after the build's last chunk, whoever wrote that one. Two writers racing
/// for one number: the second fails on the primary key (and tries again later), no chunk is
/// lost or reordered.
pub fn append_log_chunk(c: &Connection, guid: &str, chunk: &NewChunk) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO build_log_chunks (build_guid, seq, body, stamps)
         SELECT ?1, COALESCE(MAX(seq) + 1, 0), ?2, ?3
         FROM build_log_chunks WHERE build_guid = ?1",
        params![guid, chunk.body, chunk.stamps],
    )?;
    Ok(())
}

/// Appends `chunks`, in order, in one transaction.
pub fn append_log_chunks(
    c: &mut Connection,
    guid: &str,
    chunks: &[NewChunk],
) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    for chunk in chunks {
        append_log_chunk(&tx, guid, chunk)?;
    }
    tx.commit()?;
    Ok(())
}

/// Up to `limit` chunks of the build's log from number `from` on, in order.
pub fn log_chunks(
    c: &Connection,
    guid: &str,
    from: u64,
    limit: u32,
) -> Result<Vec<LogChunk>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT seq, body FROM build_log_chunks WHERE build_guid = ?1 AND seq >= ?2
         ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![guid, from as i64, i64::from(limit)], chunk_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// One chunk's text.
pub fn log_chunk(c: &Connection, guid: &str, seq: u64) -> Result<Option<String>, StoreError> {
    one(
        c,
        "SELECT body FROM build_log_chunks WHERE build_guid = ?1 AND seq = ?2",
        params![guid, seq as i64],
        |r| r.get("body"),
    )
}

/// Calls `visit(seq, stamps)` for each chunk of the build's log, in order; how many there were.
pub fn visit_log_stamps(
    c: &Connection,
    guid: &str,
    mut visit: impl FnMut(u64, &str),
) -> Result<usize, StoreError> {
    let mut stmt =
        c.prepare("SELECT seq, stamps FROM build_log_chunks WHERE build_guid = ?1 ORDER BY seq")?;
    let rows = stmt.query_map(params![guid], |r| {
        Ok((
            r.get::<_, i64>("seq")? as u64,
            r.get::<_, String>("stamps")?,
        ))
    })?;
    let mut n = 0;
    for row in rows {
        let (seq, stamps) = row?;
        visit(seq, &stamps);
        n += 1;
    }
    Ok(n)
}

/// Whether the build's log has a chunk in the database.
pub fn has_log_chunks(c: &Connection, guid: &str) -> Result<bool, StoreError> {
    let first: Option<i64> = one(
        c,
        "SELECT seq FROM build_log_chunks WHERE build_guid = ?1 ORDER BY seq LIMIT 1",
        params![guid],
        |r| r.get("seq"),
    )?;
    Ok(first.is_some())
}

/// Deletes the logs of the app's builds (with the app, before its builds' rows).
pub fn delete_app_logs(c: &Connection, app_guid: &str) -> Result<usize, StoreError> {
    Ok(c.execute(
        "DELETE FROM build_log_chunks
         WHERE build_guid IN (SELECT guid FROM builds WHERE app_guid = ?1)",
        params![app_guid],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;

    fn chunk(body: &str) -> NewChunk {
        NewChunk {
            body: body.into(),
            stamps: format!("{} 1 O\n", body.len()),
        }
    }

    #[test]
    fn chunks_append_in_order_and_read_from_a_number() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(&d.path().join("t.db")).unwrap();
        let guard = db.sqlite_guard();
        let conn = crate::store::Connection::sqlite(&guard);
        assert!(!has_log_chunks(&conn, "b1").unwrap());
        for body in ["one\n", "two\n", "three\n"] {
            append_log_chunk(&conn, "b1", &chunk(body)).unwrap();
        }
        append_log_chunk(&conn, "b2", &chunk("other\n")).unwrap();
        assert!(has_log_chunks(&conn, "b1").unwrap());
        let all = log_chunks(&conn, "b1", 0, 10).unwrap();
        let bodies: Vec<_> = all.iter().map(|c| (c.seq, c.body.as_str())).collect();
        assert_eq!(bodies, [(0, "one\n"), (1, "two\n"), (2, "three\n")]);
        let later = log_chunks(&conn, "b1", 1, 1).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].body, "two\n");
        assert_eq!(
            log_chunk(&conn, "b2", 0).unwrap().as_deref(),
            Some("other\n")
        );
        assert_eq!(log_chunk(&conn, "b2", 1).unwrap(), None);
        let mut seen = Vec::new();
        let n = visit_log_stamps(&conn, "b1", |seq, s| seen.push((seq, s.to_string()))).unwrap();
        assert_eq!(n, 3);
        assert_eq!(seen[2], (2, "6 1 O\n".to_string()));
    }
}
