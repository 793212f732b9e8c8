//! Operations on PostgreSQL: created once per idempotency key (the unique constraint decides between two
//! requests at once) and a binding's reconcile once at a time (a lock on the binding's name decides), listed newest
//! first, their state changed only from the state their caller saw, and their expiry.

use tokio_postgres::{Client, Row};

use crate::{
    Expiry, NewOperation, OPERATION_COLUMNS, OperationFilter, OperationRow, StateChange, StoreError, StoredKind,
    StoredState,
};

/// The class of the transaction locks that make a binding's reconciles one at a time ("cros"; the lock's second
/// key is a hash of the binding's name). Two-key advisory locks never meet the one-key locks of the writer and the
/// scheduler.
const RECONCILE_LOCK: i32 = 0x6372_6f73;

/// The condition that an operation (of the row in scope) is unfinished: no end time, and not in a final state.
fn unfinished_sql() -> String {
    let finals: Vec<String> = StoredState::FINAL.iter().map(|s| s.code().to_string()).collect();
    format!("end_time IS NULL AND state NOT IN ({})", finals.join(","))
}

/// An operation from a row of [`OPERATION_COLUMNS`].
pub(super) fn operation(row: &Row) -> OperationRow {
    let calls: String = row.get(12);
    OperationRow {
        id: row.get(0),
        kind: StoredKind::from_code(row.get(1)),
        state: StoredState::from_code(row.get(2)),
        spec_name: row.get(3),
        spec: row.get(4),
        idempotency_key: row.get(5),
        binding_name: row.get(6),
        created_by: row.get(7),
        create_time: row.get(8),
        start_time: row.get(9),
        end_time: row.get(10),
        message: row.get(11),
        aws_calls: serde_json::from_str(&calls).unwrap_or_default(),
        throttled_calls: row.get::<_, i64>(13) as u64,
        last_sequence: row.get::<_, i64>(14) as u64,
        position: row.get(15),
        dry_run: row.get(16),
    }
}

/// Creates `op`, owned by `owner` (a replica of a shared journal; `None` with one writer), or returns the one its
/// idempotency key already created.
pub(super) async fn create(
    client: &mut deadpool_postgres::Object,
    op: NewOperation,
    owner: Option<String>,
) -> Result<(OperationRow, bool), StoreError> {
    let tx = client.transaction().await?;
    if let Some(running) = running_reconcile(&tx, &op).await? {
        tx.commit().await?;
        return Ok((running, false));
    }
    let created = insert(&tx, op, owner).await?;
    tx.commit().await?;
    Ok(created)
}

/// The unfinished reconcile of the binding `op` would reconcile, if `op` is a reconcile and there is one. Holds
/// the binding's reconcile lock until the transaction ends, so that two replicas starting one at the same instant
/// start one: the second waits, then finds the first's.
async fn running_reconcile(
    tx: &deadpool_postgres::Transaction<'_>,
    op: &NewOperation,
) -> Result<Option<OperationRow>, StoreError> {
    let Some(binding) = op.binding_name.as_deref().filter(|_| op.kind == StoredKind::Reconcile) else {
        return Ok(None);
    };
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&RECONCILE_LOCK, &binding]).await?;
    let sql = format!(
        "SELECT {OPERATION_COLUMNS} FROM operations WHERE binding_name = $1 AND kind = $2 AND {} \
         ORDER BY position LIMIT 1",
        unfinished_sql()
    );
    Ok(tx.query_opt(&sql, &[&binding, &StoredKind::Reconcile.code()]).await?.map(|r| operation(&r)))
}

/// Inserts `op`, or returns the operation its idempotency key already created.
async fn insert(
    client: &deadpool_postgres::Transaction<'_>,
    op: NewOperation,
    owner: Option<String>,
) -> Result<(OperationRow, bool), StoreError> {
    // Two requests with the same key, on any connection: the unique constraint decides, and the loser reads
    // the winner's operation.
    let inserted = client
        .query_opt(
            &format!(
                "INSERT INTO operations (id, kind, state, spec_name, spec, idempotency_key, request_fingerprint, \
                 binding_name, created_by, create_time, dry_run, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                 $11, $12) \
                 ON CONFLICT (created_by, idempotency_key) DO NOTHING RETURNING {OPERATION_COLUMNS}"
            ),
            &[
                &op.id,
                &op.kind.code(),
                &op.state.code(),
                &op.spec_name,
                &op.spec,
                &op.idempotency_key,
                &op.request_fingerprint,
                &op.binding_name,
                &op.created_by,
                &op.create_time,
                &op.dry_run,
                &owner,
            ],
        )
        .await?;
    if let Some(row) = inserted {
        return Ok((operation(&row), true));
    }
    let key = op.idempotency_key.clone().unwrap_or_default();
    let row = client
        .query_one(
            &format!(
                "SELECT {OPERATION_COLUMNS}, request_fingerprint FROM operations \
                 WHERE created_by = $1 AND idempotency_key = $2"
            ),
            &[&op.created_by, &key],
        )
        .await?;
    if row.get::<_, String>(17) != op.request_fingerprint {
        return Err(StoreError::IdempotencyConflict(key));
    }
    Ok((operation(&row), false))
}

pub(super) async fn get(client: &Client, id: &str) -> Result<Option<OperationRow>, StoreError> {
    Ok(client
        .query_opt(&format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1"), &[&id])
        .await?
        .map(|r| operation(&r)))
}

pub(super) async fn list(
    client: &Client,
    filter: &OperationFilter,
    page_size: usize,
    before: Option<i64>,
) -> Result<(Vec<OperationRow>, Option<i64>), StoreError> {
    let before = before.unwrap_or(i64::MAX);
    let limit = page_size as i64 + 1;
    let states: Vec<i32> = filter.states.iter().map(|s| s.code()).collect();
    let rows = client
        .query(
            &format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE position < $1 \
                 AND (cardinality($2::integer[]) = 0 OR state = ANY($2)) \
                 AND ($3 = '' OR spec_name = $3) AND ($4 = '' OR binding_name = $4) \
                 ORDER BY position DESC LIMIT $5"
            ),
            &[&before, &states, &filter.spec_name, &filter.binding_name, &limit],
        )
        .await?;
    let mut rows: Vec<OperationRow> = rows.iter().map(operation).collect();
    let next = if rows.len() > page_size {
        rows.truncate(page_size);
        rows.last().map(|r| r.position)
    } else {
        None
    };
    Ok((rows, next))
}

pub(super) async fn change_state(client: &Client, id: &str, change: &StateChange) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE operations SET state = $2, message = $3, start_time = COALESCE($4, start_time), \
         end_time = COALESCE($5, end_time) WHERE id = $1 AND state = ANY($6::integer[]) AND {}",
        unfinished_sql()
    );
    let moved = client
        .execute(&sql, &[&id, &change.to.code(), &change.message, &change.started, &change.ended, &change.codes_from()])
        .await?;
    Ok(moved == 1)
}

pub(super) async fn unfinished(client: &Client) -> Result<Vec<OperationRow>, StoreError> {
    Ok(client
        .query(&format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE {} ORDER BY position", unfinished_sql()), &[])
        .await?
        .iter()
        .map(operation)
        .collect())
}

pub(super) async fn expire(client: &mut deadpool_postgres::Object, expiry: &Expiry) -> Result<u64, StoreError> {
    let tx = client.transaction().await?;
    let ids: Vec<String> =
        tx.query(&expiry.select_sql("$1"), &[&expiry.ended_before]).await?.iter().map(|r| r.get(0)).collect();
    for table in ["events", "account_results"] {
        tx.execute(&format!("DELETE FROM {table} WHERE operation_id = ANY($1)"), &[&ids]).await?;
    }
    tx.execute("DELETE FROM operations WHERE id = ANY($1)", &[&ids]).await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}
