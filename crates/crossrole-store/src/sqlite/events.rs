//! Events on SQLite, and the batch an operation's progress is written in: its events with the account rows,
//! counters and end that go with them, in one transaction.

use rusqlite::{Connection, params};

use crate::{Batch, EventRow, StoreError};

pub(super) fn persist(conn: &mut Connection, operation: &str, batch: Batch) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO account_results (operation_id, idx, account_id, outcome, result) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for r in &batch.rows {
            stmt.execute(params![operation, r.index, r.account_id, r.outcome.code(), r.result])?;
        }
    }
    let mut last = 0;
    {
        // A plain INSERT: a sequence number used twice is a bug to report, not a row to drop.
        let mut stmt = tx.prepare_cached("INSERT INTO events (operation_id, sequence, payload) VALUES (?1, ?2, ?3)")?;
        for e in &batch.events {
            last = last.max(e.sequence);
            stmt.execute(params![operation, e.sequence as i64, e.payload])?;
        }
    }
    if let Some(stats) = &batch.stats {
        let calls = serde_json::to_string(&stats.aws_calls).unwrap_or_else(|_| "{}".into());
        tx.execute(
            "UPDATE operations SET aws_calls = ?2, throttled_calls = ?3 WHERE id = ?1",
            params![operation, calls, stats.throttled as i64],
        )?;
    }
    if last > 0 {
        tx.execute(
            "UPDATE operations SET last_sequence = MAX(last_sequence, ?2) WHERE id = ?1",
            params![operation, last as i64],
        )?;
    }
    if let Some(end) = &batch.end {
        // An operation that has ended keeps its end.
        tx.execute(
            "UPDATE operations SET state = ?2, message = ?3, end_time = ?4 WHERE id = ?1 AND end_time IS NULL",
            params![operation, end.state.code(), end.message, end.end_time],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn read(
    conn: &Connection,
    operation: &str,
    after_sequence: u64,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT sequence, payload FROM events WHERE operation_id = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![operation, after_sequence as i64, limit as i64], |r| {
            Ok(EventRow { sequence: r.get::<_, i64>(0)? as u64, payload: r.get(1)? })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
