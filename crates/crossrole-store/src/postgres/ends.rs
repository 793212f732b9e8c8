//! The ends of specs' access on PostgreSQL: one per spec, replaced by a later apply's, acted on once (the take
//! writes only over an end no replica has acted on).

use tokio_postgres::{GenericClient, Row};

use crate::{AccessEndRow, StoreError};

const COLUMNS: &str = "spec_name, expires_at, spec, created_by, update_time, operation_id";

fn end(r: &Row) -> AccessEndRow {
    AccessEndRow {
        spec_name: r.get(0),
        expires_at: r.get(1),
        spec: r.get(2),
        created_by: r.get(3),
        update_time: r.get(4),
        operation_id: r.get(5),
    }
}

pub(super) async fn get(client: &impl GenericClient, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM access_ends WHERE spec_name = $1");
    Ok(client.query_opt(&sql, &[&spec_name]).await?.as_ref().map(end))
}

pub(super) async fn set(
    client: &mut deadpool_postgres::Object,
    row: AccessEndRow,
) -> Result<Option<AccessEndRow>, StoreError> {
    let tx = client.transaction().await?;
    // Read under the row's lock, so that the end replaced is the one returned.
    let sql = format!("SELECT {COLUMNS} FROM access_ends WHERE spec_name = $1 FOR UPDATE");
    let before = tx.query_opt(&sql, &[&row.spec_name]).await?.as_ref().map(end);
    tx.execute(
        &format!(
            "INSERT INTO access_ends ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (spec_name) DO UPDATE \
             SET expires_at = excluded.expires_at, spec = excluded.spec, created_by = excluded.created_by, \
             update_time = excluded.update_time, operation_id = NULL"
        ),
        &[&row.spec_name, &row.expires_at, &row.spec, &row.created_by, &row.update_time],
    )
    .await?;
    tx.commit().await?;
    Ok(before)
}

pub(super) async fn clear(
    client: &mut deadpool_postgres::Object,
    spec_name: &str,
) -> Result<Option<AccessEndRow>, StoreError> {
    let sql = format!("DELETE FROM access_ends WHERE spec_name = $1 RETURNING {COLUMNS}");
    Ok(client.query_opt(&sql, &[&spec_name]).await?.as_ref().map(end))
}

pub(super) async fn due(client: &impl GenericClient, now: i64) -> Result<Vec<AccessEndRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM access_ends WHERE expires_at <= $1 AND operation_id IS NULL \
         ORDER BY expires_at, spec_name"
    );
    Ok(client.query(&sql, &[&now]).await?.iter().map(end).collect())
}

pub(super) async fn take(
    client: &impl GenericClient,
    spec_name: &str,
    expires_at: i64,
    operation: &str,
) -> Result<bool, StoreError> {
    let n = client
        .execute(
            "UPDATE access_ends SET operation_id = $3 WHERE spec_name = $1 AND expires_at = $2 \
             AND operation_id IS NULL",
            &[&spec_name, &expires_at, &operation],
        )
        .await?;
    Ok(n == 1)
}
