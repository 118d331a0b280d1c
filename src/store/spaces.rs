//! Organizations and spaces: the default ones (`dropship` both, made by the migration that
//! made the tables) and those made through `POST /v3/organizations|spaces`. Organization
//! names are unique; space names are unique within their organization. Not deleted.

use super::{one, StoreError};
use super::{params, Connection, Row};

/// The default organization and space (every app made before spaces existed is there).
pub const DEFAULT_ORG_GUID: &str = "00000000-0000-4000-8000-000000000002";
pub const DEFAULT_SPACE_GUID: &str = "00000000-0000-4000-8000-000000000001";
/// When the default ones came to be: as old as dropship's data, for the clients' ordering.
pub const DEFAULT_CREATED: &str = "1970-01-01T00:00:01Z";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Org {
    pub guid: String,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Space {
    pub guid: String,
    pub name: String,
    pub org_guid: String,
    pub created_at: String,
    pub updated_at: String,
}

fn org_row(r: &Row) -> super::sql::Result<Org> {
    Ok(Org {
        guid: r.get("guid")?,
        name: r.get("name")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn space_row(r: &Row) -> super::sql::Result<Space> {
    Ok(Space {
        guid: r.get("guid")?,
        name: r.get("name")?,
        org_guid: r.get("org_guid")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// Inserts an organization; false when one has that name.
pub fn insert_org(c: &Connection, o: &Org) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT INTO organizations (guid, name, created_at, updated_at)
         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (SELECT 1 FROM organizations WHERE name = ?2)",
        params![o.guid, o.name, o.created_at, o.updated_at],
    )?;
    Ok(n == 1)
}

pub fn get_org(c: &Connection, guid: &str) -> Result<Option<Org>, StoreError> {
    one(
        c,
        "SELECT * FROM organizations WHERE guid = ?1",
        params![guid],
        org_row,
    )
}

/// Every organization, oldest first.
pub fn list_orgs(c: &Connection) -> Result<Vec<Org>, StoreError> {
    let mut stmt = c.prepare("SELECT * FROM organizations ORDER BY created_at, guid")?;
    let rows = stmt.query_map(params![], org_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Inserts a space; false when its organization has a space of that name.
pub fn insert_space(c: &Connection, s: &Space) -> Result<bool, StoreError> {
    let n = c.execute(
        "INSERT INTO spaces (guid, name, org_guid, created_at, updated_at)
         SELECT ?1, ?2, ?3, ?4, ?5
         WHERE NOT EXISTS (SELECT 1 FROM spaces WHERE org_guid = ?3 AND name = ?2)",
        params![s.guid, s.name, s.org_guid, s.created_at, s.updated_at],
    )?;
    Ok(n == 1)
}

pub fn get_space(c: &Connection, guid: &str) -> Result<Option<Space>, StoreError> {
    one(
        c,
        "SELECT * FROM spaces WHERE guid = ?1",
        params![guid],
        space_row,
    )
}

/// Every space, oldest first.
pub fn list_spaces(c: &Connection) -> Result<Vec<Space>, StoreError> {
    let mut stmt = c.prepare("SELECT * FROM spaces ORDER BY created_at, guid")?;
    let rows = stmt.query_map(params![], space_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// 4 (run by `migrate.rs`): the tables, the default org and space, and `apps.space_guid`
/// (every app so far is in the default space).
pub fn create_tables(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(&format!(
        "CREATE TABLE organizations (
            guid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
         CREATE TABLE spaces (
            guid TEXT PRIMARY KEY, name TEXT NOT NULL, org_guid TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (org_guid, name));
         ALTER TABLE apps ADD COLUMN space_guid TEXT NOT NULL DEFAULT '{DEFAULT_SPACE_GUID}';"
    ))?;
    let name = crate::app::DEFAULT_SPACE_ORG;
    tx.execute(
        "INSERT INTO organizations VALUES (?1, ?2, ?3, ?3)",
        rusqlite::params![DEFAULT_ORG_GUID, name, DEFAULT_CREATED],
    )?;
    tx.execute(
        "INSERT INTO spaces VALUES (?1, ?2, ?3, ?4, ?4)",
        rusqlite::params![DEFAULT_SPACE_GUID, name, DEFAULT_ORG_GUID, DEFAULT_CREATED],
    )?;
    Ok(())
}
