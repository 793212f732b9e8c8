//! The audit log on SQLite.

use rusqlite::{Connection, params, types::ValueRef};

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
                time: number(r, 1)?,
                caller: text(r, 2)?,
                method: text(r, 3)?,
                spec_name: text(r, 4)?,
                operation_id: text(r, 5)?,
                request: text(r, 6)?,
                outcome: text(r, 7)?,
                caller_subject: text(r, 8)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A text column as it is, whatever SQLite holds there (bytes that are not UTF-8, a number): one damaged entry
/// does not fail the log's reading.
fn text(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    Ok(match row.get_ref(i)? {
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Null => String::new(),
    })
}

/// A time column, 0 when SQLite holds something else there.
fn number(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => n,
        ValueRef::Real(x) => x as i64,
        _ => 0,
    })
}

pub(super) fn expire(conn: &Connection, before: i64) -> Result<u64, StoreError> {
    Ok(conn.execute("DELETE FROM audit WHERE time < ?1", [before])? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Journal, SqliteJournal};

    #[tokio::test]
    async fn a_damaged_entry_does_not_fail_the_log() {
        let journal = SqliteJournal::in_memory().unwrap();
        let entry = |method: &str| AuditEntry {
            id: 0,
            time: 1,
            caller: "ci".into(),
            caller_subject: String::new(),
            method: method.into(),
            spec_name: "audit".into(),
            operation_id: String::new(),
            request: "{}".into(),
            outcome: "ok".into(),
        };
        journal.audit(entry("ApplyAccess")).await.unwrap();
        // What a damaged file may hold: bytes that are not UTF-8 where text belongs, text where a time belongs.
        journal
            .conn
            .lock()
            .unwrap()
            .execute(
                "INSERT INTO audit (time, caller, method, request, outcome) VALUES ('noon', ?1, 'DestroyAccess', ?1, 'ok')",
                [rusqlite::types::Value::Blob(vec![0xff, 0xfe, b'x'])],
            )
            .unwrap();
        journal.audit(entry("CreateBinding")).await.unwrap();
        let read = journal.audit_log(&AuditFilter::default(), 10, None).await.unwrap();
        let methods: Vec<&str> = read.iter().map(|e| e.method.as_str()).collect();
        assert_eq!(methods, ["CreateBinding", "DestroyAccess", "ApplyAccess"]);
        assert_eq!((read[1].time, read[1].caller.as_str()), (0, "\u{fffd}\u{fffd}x"));
    }
}
