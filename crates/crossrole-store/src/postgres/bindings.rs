//! Bindings on PostgreSQL: versioned, each update checked against the version its caller read.

use tokio_postgres::{Client, Row};

use crate::{BindingRow, StoreError};

/// The columns a [`BindingRow`] is read from, in its fields' order.
const BINDING_COLUMNS: &str = "name, version, binding, status, create_time, update_time";

fn binding(row: &Row) -> BindingRow {
    BindingRow {
        name: row.get(0),
        version: row.get::<_, i64>(1) as u64,
        binding: row.get(2),
        status: row.get(3),
        create_time: row.get(4),
        update_time: row.get(5),
    }
}

pub(super) async fn create(client: &Client, row: BindingRow) -> Result<bool, StoreError> {
    let n = client
        .execute(
            &format!("INSERT INTO bindings ({BINDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"),
            &[&row.name, &(row.version as i64), &row.binding, &row.status, &row.create_time, &row.update_time],
        )
        .await?;
    Ok(n == 1)
}

pub(super) async fn update(
    client: &mut deadpool_postgres::Object,
    name: &str,
    binding_blob: Vec<u8>,
    expected: Option<u64>,
    time: i64,
) -> Result<Option<BindingRow>, StoreError> {
    let tx = client.transaction().await?;
    let Some(current) = tx
        .query_opt(&format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name = $1 FOR UPDATE"), &[&name])
        .await?
        .map(|r| binding(&r))
    else {
        return Ok(None);
    };
    if let Some(expected) = expected.filter(|e| *e != current.version) {
        return Err(StoreError::VersionMismatch { name: name.to_string(), expected, actual: current.version });
    }
    let row = tx
        .query_one(
            &format!(
                "UPDATE bindings SET version = version + 1, binding = $2, update_time = $3 WHERE name = $1 \
                 RETURNING {BINDING_COLUMNS}"
            ),
            &[&name, &binding_blob, &time],
        )
        .await?;
    tx.commit().await?;
    Ok(Some(binding(&row)))
}

pub(super) async fn set_status(client: &Client, name: &str, status: Vec<u8>) -> Result<(), StoreError> {
    client.execute("UPDATE bindings SET status = $2 WHERE name = $1", &[&name, &status]).await?;
    Ok(())
}

pub(super) async fn get(client: &Client, name: &str) -> Result<Option<BindingRow>, StoreError> {
    Ok(client
        .query_opt(&format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name = $1"), &[&name])
        .await?
        .map(|r| binding(&r)))
}

pub(super) async fn list(
    client: &Client,
    page_size: usize,
    after: Option<&str>,
) -> Result<Vec<BindingRow>, StoreError> {
    let after = after.unwrap_or("");
    Ok(client
        .query(
            &format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name > $1 ORDER BY name LIMIT $2"),
            &[&after, &(page_size as i64)],
        )
        .await?
        .iter()
        .map(binding)
        .collect())
}

pub(super) async fn delete(client: &mut deadpool_postgres::Object, name: &str) -> Result<bool, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("DELETE FROM waiting_accounts WHERE binding_name = $1", &[&name]).await?;
    let deleted = tx.execute("DELETE FROM bindings WHERE name = $1", &[&name]).await? == 1;
    tx.commit().await?;
    Ok(deleted)
}
