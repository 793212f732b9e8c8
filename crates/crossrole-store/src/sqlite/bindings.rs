//! Bindings on SQLite: versioned, each update checked against the version its caller read.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{BindingRow, StoreError};

/// The columns a [`BindingRow`] is read from, in its fields' order.
const BINDING_COLUMNS: &str = "name, version, binding, status, create_time, update_time";

fn binding(row: &rusqlite::Row<'_>) -> rusqlite::Result<BindingRow> {
    Ok(BindingRow {
        name: row.get(0)?,
        version: row.get::<_, i64>(1)? as u64,
        binding: row.get(2)?,
        status: row.get(3)?,
        create_time: row.get(4)?,
        update_time: row.get(5)?,
    })
}

pub(super) fn create(conn: &Connection, row: BindingRow) -> Result<bool, StoreError> {
    let n = conn.execute(
        &format!("INSERT OR IGNORE INTO bindings ({BINDING_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![row.name, row.version as i64, row.binding, row.status, row.create_time, row.update_time],
    )?;
    Ok(n == 1)
}

pub(super) fn update(
    conn: &mut Connection,
    name: &str,
    binding_blob: Vec<u8>,
    expected: Option<u64>,
    time: i64,
) -> Result<Option<BindingRow>, StoreError> {
    let select = format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name = ?1");
    let tx = conn.transaction()?;
    let Some(current) = tx.query_row(&select, [name], binding).optional()? else {
        return Ok(None);
    };
    if let Some(expected) = expected.filter(|e| *e != current.version) {
        return Err(StoreError::VersionMismatch { name: name.to_string(), expected, actual: current.version });
    }
    tx.execute(
        "UPDATE bindings SET version = version + 1, binding = ?2, update_time = ?3 WHERE name = ?1",
        params![name, binding_blob, time],
    )?;
    let row = tx.query_row(&select, [name], binding)?;
    tx.commit()?;
    Ok(Some(row))
}

pub(super) fn set_status(conn: &Connection, name: &str, status: Vec<u8>) -> Result<(), StoreError> {
    conn.execute("UPDATE bindings SET status = ?2 WHERE name = ?1", params![name, status])?;
    Ok(())
}

pub(super) fn get(conn: &Connection, name: &str) -> Result<Option<BindingRow>, StoreError> {
    Ok(conn
        .query_row(&format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name = ?1"), [name], binding)
        .optional()?)
}

pub(super) fn list(conn: &Connection, page_size: usize, after: &str) -> Result<Vec<BindingRow>, StoreError> {
    let mut stmt =
        conn.prepare(&format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name > ?1 ORDER BY name LIMIT ?2"))?;
    let rows = stmt.query_map(params![after, page_size as i64], binding)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn delete(conn: &mut Connection, name: &str) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM waiting_accounts WHERE binding_name = ?1", [name])?;
    let deleted = tx.execute("DELETE FROM bindings WHERE name = ?1", [name])? == 1;
    tx.commit()?;
    Ok(deleted)
}
