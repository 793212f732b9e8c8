//! The audit log on SQLite.

use rusqlite::{Connection, params};

use crate::{AUDIT_COLUMNS, AuditEntry, AuditFilter, AuditValue, StoreError};

pub(super) fn record(conn: &Connection, e: AuditEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (time, caller, method, spec_name, operation_id, request, outcome, caller_subject) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![e.time, e.caller, e.method, e.spec_name, e.operation_id, e.request, e.outcome, e.caller_subject],
    )?;
    Ok(())
}

pub(super) fn read(
    conn: &Connection,
    filter: &AuditFilter,
    page_size: usize,
    before: Option<i64>,
) -> Result<Vec<AuditEntry>, StoreError> {
    let (clause, values) = filter.clause();
    let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE {clause} ORDER BY id DESC LIMIT ?");
    let mut stmt = conn.prepare(&sql)?;
    let mut bound: Vec<rusqlite::types::Value> = vec![before.unwrap_or(i64::MAX).into()];
    bound.extend(values.into_iter().map(|v| match v {
        AuditValue::Int(n) => n.into(),
        AuditValue::Text(t) => t.into(),
    }));
    bound.push((page_size as i64).into());
    let rows = stmt
        .query_map(rusqlite::params_from_iter(bound), |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                time: r.get(1)?,
                caller: r.get(2)?,
                method: r.get(3)?,
                spec_name: r.get(4)?,
                operation_id: r.get(5)?,
                request: r.get(6)?,
                outcome: r.get(7)?,
                caller_subject: r.get(8)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn expire(conn: &Connection, before: i64) -> Result<u64, StoreError> {
    Ok(conn.execute("DELETE FROM audit WHERE time < ?1", [before])? as u64)
}
