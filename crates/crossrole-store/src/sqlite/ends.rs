//! The ends of specs' access on SQLite: one per spec, replaced by a later apply's, acted on once.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{AccessEndRow, StoreError};

const COLUMNS: &str = "spec_name, expires_at, spec, created_by, update_time, operation_id";

fn end(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccessEndRow> {
    Ok(AccessEndRow {
        spec_name: row.get(0)?,
        expires_at: row.get(1)?,
        spec: row.get(2)?,
        created_by: row.get(3)?,
        update_time: row.get(4)?,
        operation_id: row.get(5)?,
    })
}

pub(super) fn get(conn: &Connection, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError> {
    Ok(conn
        .query_row(&format!("SELECT {COLUMNS} FROM access_ends WHERE spec_name = ?1"), [spec_name], end)
        .optional()?)
}

pub(super) fn set(conn: &mut Connection, row: AccessEndRow) -> Result<Option<AccessEndRow>, StoreError> {
    let tx = conn.transaction()?;
    let before = get(&tx, &row.spec_name)?;
    tx.execute(
        &format!(
            "INSERT INTO access_ends ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL) ON CONFLICT (spec_name) DO UPDATE \
             SET expires_at = excluded.expires_at, spec = excluded.spec, created_by = excluded.created_by, \
             update_time = excluded.update_time, operation_id = NULL"
        ),
        params![row.spec_name, row.expires_at, row.spec, row.created_by, row.update_time],
    )?;
    tx.commit()?;
    Ok(before)
}

pub(super) fn clear(conn: &mut Connection, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError> {
    let tx = conn.transaction()?;
    let before = get(&tx, spec_name)?;
    tx.execute("DELETE FROM access_ends WHERE spec_name = ?1", [spec_name])?;
    tx.commit()?;
    Ok(before)
}

pub(super) fn due(conn: &Connection, now: i64) -> Result<Vec<AccessEndRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM access_ends WHERE expires_at <= ?1 AND operation_id IS NULL \
         ORDER BY expires_at, spec_name"
    ))?;
    let rows = stmt.query_map([now], end)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn take(conn: &Connection, spec_name: &str, expires_at: i64, operation: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE access_ends SET operation_id = ?3 WHERE spec_name = ?1 AND expires_at = ?2 AND operation_id IS NULL",
        params![spec_name, expires_at, operation],
    )?;
    Ok(n == 1)
}
