//! Events on PostgreSQL, and the batch an operation's progress is written in: its events with the account rows,
//! counters and end that go with them, in one transaction, which on a shared journal first checks that this
//! replica still owns the operation.

use tokio_postgres::Client;

use super::shared::{Replica, check_owner};
use crate::{Batch, EventRow, StoreError};

/// Writes `batch`; `replica`, on a shared journal, is the replica that must own the operation.
pub(super) async fn persist(
    client: &mut deadpool_postgres::Object,
    replica: Option<&Replica>,
    operation_id: &str,
    batch: Batch,
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    if let Some(r) = replica {
        let first = batch.events.iter().map(|e| e.sequence).min();
        check_owner(r, &tx, operation_id, first).await?;
    }
    if !batch.rows.is_empty() {
        let (mut idx, mut ids, mut outcomes, mut results) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in batch.rows {
            idx.push(r.index as i32);
            ids.push(r.account_id);
            outcomes.push(r.outcome.code());
            results.push(r.result);
        }
        tx.execute(
            "INSERT INTO account_results (operation_id, idx, account_id, outcome, result) \
             SELECT $1, * FROM UNNEST($2::integer[], $3::text[], $4::integer[], $5::bytea[]) \
             ON CONFLICT (operation_id, idx) DO UPDATE SET account_id = excluded.account_id, \
             outcome = excluded.outcome, result = excluded.result",
            &[&operation_id, &idx, &ids, &outcomes, &results],
        )
        .await?;
    }
    let last = batch.events.iter().map(|e| e.sequence).max().unwrap_or(0) as i64;
    if !batch.events.is_empty() {
        let (mut sequences, mut payloads) = (Vec::new(), Vec::new());
        for e in batch.events {
            sequences.push(e.sequence as i64);
            payloads.push(e.payload);
        }
        // A plain INSERT: a sequence number used twice is a bug to report, not a row to drop.
        tx.execute(
            "INSERT INTO events (operation_id, sequence, payload) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[])",
            &[&operation_id, &sequences, &payloads],
        )
        .await?;
    }
    if let Some(stats) = &batch.stats {
        let calls = serde_json::to_string(&stats.aws_calls).unwrap_or_else(|_| "{}".into());
        tx.execute(
            "UPDATE operations SET aws_calls = $2, throttled_calls = $3 WHERE id = $1",
            &[&operation_id, &calls, &(stats.throttled as i64)],
        )
        .await?;
    }
    if last > 0 {
        tx.execute(
            "UPDATE operations SET last_sequence = GREATEST(last_sequence, $2) WHERE id = $1",
            &[&operation_id, &last],
        )
        .await?;
    }
    if let Some(end) = &batch.end {
        // An operation that has ended keeps its end.
        tx.execute(
            "UPDATE operations SET state = $2, message = $3, end_time = $4 WHERE id = $1 AND end_time IS NULL",
            &[&operation_id, &end.state.code(), &end.message, &end.end_time],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn read(
    client: &Client,
    operation: &str,
    after_sequence: u64,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(client
        .query(
            "SELECT sequence, payload FROM events WHERE operation_id = $1 AND sequence > $2 ORDER BY sequence \
             LIMIT $3",
            &[&operation, &(after_sequence as i64), &(limit as i64)],
        )
        .await?
        .iter()
        .map(|r| EventRow { sequence: r.get::<_, i64>(0) as u64, payload: r.get(1) })
        .collect())
}
