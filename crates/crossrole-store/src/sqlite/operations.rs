//! Operations on SQLite: created once per idempotency key (and a binding's reconcile once at a time), listed newest
//! first, their state changed only from the state their caller saw, and their expiry.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Expiry, NewOperation, OPERATION_COLUMNS, OperationFilter, OperationRow, StateChange, StoreError, StoredKind,
    StoredState, codes::sql_list,
};

/// The condition that an operation (of the row in scope) is unfinished: no end time, and not in a final state.
pub(super) fn unfinished_sql() -> String {
    format!("end_time IS NULL AND state NOT IN ({})", sql_list(StoredState::FINAL.map(StoredState::code)))
}

/// An operation from a row of [`OPERATION_COLUMNS`].
pub(super) fn operation(row: &rusqlite::Row<'_>) -> rusqlite::Result<OperationRow> {
    let calls: String = row.get(12)?;
    Ok(OperationRow {
        id: row.get(0)?,
        kind: StoredKind::from_code(row.get(1)?),
        state: StoredState::from_code(row.get(2)?),
        spec_name: row.get(3)?,
        spec: row.get(4)?,
        idempotency_key: row.get(5)?,
        binding_name: row.get(6)?,
        created_by: row.get(7)?,
        create_time: row.get(8)?,
        start_time: row.get(9)?,
        end_time: row.get(10)?,
        message: row.get(11)?,
        aws_calls: serde_json::from_str(&calls).unwrap_or_default(),
        throttled_calls: row.get::<_, i64>(13)? as u64,
        last_sequence: row.get::<_, i64>(14)? as u64,
        position: row.get(15)?,
        dry_run: row.get(16)?,
    })
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<OperationRow>, StoreError> {
    Ok(conn
        .query_row(&format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ?1"), [id], operation)
        .optional()?)
}

pub(super) fn create(conn: &mut Connection, op: NewOperation) -> Result<(OperationRow, bool), StoreError> {
    let tx = conn.transaction()?;
    if let Some(key) = &op.idempotency_key {
        let existing = tx
            .query_row(
                &format!(
                    "SELECT {OPERATION_COLUMNS}, request_fingerprint FROM operations \
                     WHERE created_by = ?1 AND idempotency_key = ?2"
                ),
                [&op.created_by, key],
                |r| Ok((operation(r)?, r.get::<_, String>(17)?)),
            )
            .optional()?;
        if let Some((row, fingerprint)) = existing {
            if fingerprint != op.request_fingerprint {
                return Err(StoreError::IdempotencyConflict(key.clone()));
            }
            return Ok((row, false));
        }
    }
    if let Some(running) = running_reconcile(&tx, &op)? {
        return Ok((running, false));
    }
    tx.execute(
        "INSERT INTO operations (id, kind, state, spec_name, spec, idempotency_key, request_fingerprint, binding_name, \
         created_by, create_time, dry_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            op.id,
            op.kind.code(),
            op.state.code(),
            op.spec_name,
            op.spec,
            op.idempotency_key,
            op.request_fingerprint,
            op.binding_name,
            op.created_by,
            op.create_time,
            op.dry_run
        ],
    )?;
    let row = get(&tx, &op.id)?.ok_or_else(|| StoreError::Task("inserted operation vanished".into()))?;
    tx.commit()?;
    Ok((row, true))
}

/// The unfinished reconcile of the binding `op` would reconcile, if `op` is a reconcile and there is one.
fn running_reconcile(conn: &Connection, op: &NewOperation) -> Result<Option<OperationRow>, StoreError> {
    let Some(binding) = op.binding_name.as_deref().filter(|_| op.kind == StoredKind::Reconcile) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {OPERATION_COLUMNS} FROM operations WHERE binding_name = ?1 AND kind = ?2 AND {} \
         ORDER BY position LIMIT 1",
        unfinished_sql()
    );
    Ok(conn.query_row(&sql, params![binding, StoredKind::Reconcile.code()], operation).optional()?)
}

pub(super) fn list(
    conn: &Connection,
    filter: &OperationFilter,
    page_size: usize,
    before: Option<i64>,
) -> Result<(Vec<OperationRow>, Option<i64>), StoreError> {
    let mut sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE position < ?1");
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(before.unwrap_or(i64::MAX))];
    if !filter.states.is_empty() {
        sql.push_str(&format!(" AND state IN ({})", sql_list(filter.states.iter().map(|s| s.code()))));
    }
    if !filter.spec_name.is_empty() {
        args.push(Box::new(filter.spec_name.clone()));
        sql.push_str(&format!(" AND spec_name = ?{}", args.len()));
    }
    if !filter.binding_name.is_empty() {
        args.push(Box::new(filter.binding_name.clone()));
        sql.push_str(&format!(" AND binding_name = ?{}", args.len()));
    }
    sql.push_str(&format!(" ORDER BY position DESC LIMIT {}", page_size + 1));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows: Vec<OperationRow> = stmt
        .query_map(rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())), operation)?
        .collect::<Result<_, _>>()?;
    let next = if rows.len() > page_size {
        rows.truncate(page_size);
        rows.last().map(|r| r.position)
    } else {
        None
    };
    Ok((rows, next))
}

pub(super) fn change_state(conn: &Connection, id: &str, change: &StateChange) -> Result<bool, StoreError> {
    if change.from.is_empty() {
        return Ok(false);
    }
    let sql = format!(
        "UPDATE operations SET state = ?2, message = ?3, start_time = COALESCE(?4, start_time), \
         end_time = COALESCE(?5, end_time) WHERE id = ?1 AND state IN ({}) AND {}",
        sql_list(change.from.iter().map(|s| s.code())),
        unfinished_sql()
    );
    let moved = conn.execute(&sql, params![id, change.to.code(), change.message, change.started, change.ended])?;
    Ok(moved == 1)
}

pub(super) fn unfinished(conn: &Connection) -> Result<Vec<OperationRow>, StoreError> {
    let sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE {} ORDER BY position", unfinished_sql());
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], operation)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn expire(conn: &mut Connection, expiry: &Expiry) -> Result<u64, StoreError> {
    let select = expiry.select_sql("?1");
    let tx = conn.transaction()?;
    let ids: Vec<String> = {
        let mut stmt = tx.prepare(&select)?;
        stmt.query_map([expiry.ended_before], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    for table in ["events", "account_results"] {
        let mut stmt = tx.prepare_cached(&format!("DELETE FROM {table} WHERE operation_id = ?1"))?;
        for id in &ids {
            stmt.execute([id])?;
        }
    }
    {
        let mut stmt = tx.prepare_cached("DELETE FROM operations WHERE id = ?1")?;
        for id in &ids {
            stmt.execute([id])?;
        }
    }
    tx.commit()?;
    Ok(ids.len() as u64)
}
