//! The accounts Organizations events named, waiting on PostgreSQL for the reconciles of the bindings they concern.

use tokio_postgres::Client;

use crate::{StoreError, WaitingAccount};

pub(super) async fn list(client: &Client) -> Result<Vec<WaitingAccount>, StoreError> {
    Ok(client
        .query(
            "SELECT binding_name, account_id, created_by, attempts, due_at, operation_id FROM waiting_accounts \
             ORDER BY binding_name, account_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| WaitingAccount {
            binding: r.get(0),
            account_id: r.get(1),
            created_by: r.get(2),
            attempts: r.get::<_, i32>(3).max(0) as u32,
            due_at: r.get(4),
            operation_id: r.get(5),
        })
        .collect())
}

pub(super) async fn wait(
    client: &Client,
    binding: &str,
    accounts: &[String],
    created_by: &str,
    due_at: i64,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO waiting_accounts (binding_name, account_id, created_by, attempts, due_at, operation_id) \
             SELECT $1, a, $3, 0, $4, NULL FROM UNNEST($2::text[]) AS a \
             ON CONFLICT (binding_name, account_id) DO UPDATE SET created_by = excluded.created_by, attempts = 0, \
             due_at = LEAST(waiting_accounts.due_at, excluded.due_at), operation_id = NULL",
            &[&binding, &accounts, &created_by, &due_at],
        )
        .await?;
    Ok(())
}

pub(super) async fn take(
    client: &Client,
    binding: &str,
    accounts: &[String],
    operation: &str,
) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE waiting_accounts SET operation_id = $3 WHERE binding_name = $1 AND account_id = ANY($2::text[])",
            &[&binding, &accounts, &operation],
        )
        .await?;
    Ok(())
}

pub(super) async fn settle(
    client: &mut deadpool_postgres::Object,
    operation: &str,
    retry: &[String],
    due_at: i64,
    max_attempts: u32,
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute(
        "UPDATE waiting_accounts SET attempts = attempts + 1, due_at = $3, operation_id = NULL \
         WHERE operation_id = $1 AND account_id = ANY($2::text[]) AND attempts + 1 < $4",
        &[&operation, &retry, &due_at, &(max_attempts as i32)],
    )
    .await?;
    tx.execute("DELETE FROM waiting_accounts WHERE operation_id = $1", &[&operation]).await?;
    tx.commit().await?;
    Ok(())
}
