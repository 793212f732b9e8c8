//! Accounts on PostgreSQL: each operation's account rows, read by outcome, and where each spec is applied
//! (placements).

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::{AccountRow, StoreError, StoredOutcome};

pub(super) async fn list(
    client: &Client,
    operation: &str,
    outcomes: &[StoredOutcome],
    page_size: usize,
    after_index: Option<u32>,
) -> Result<Vec<AccountRow>, StoreError> {
    let after = after_index.map(i64::from).unwrap_or(-1);
    let outcomes: Vec<i32> = outcomes.iter().map(|o| o.code()).collect();
    Ok(client
        .query(
            "SELECT idx, account_id, outcome, result FROM account_results WHERE operation_id = $1 AND idx > $2::bigint \
             AND (cardinality($3::integer[]) = 0 OR outcome = ANY($3)) ORDER BY idx LIMIT $4",
            &[&operation, &after, &outcomes, &(page_size as i64)],
        )
        .await?
        .iter()
        .map(|r| AccountRow {
            index: r.get::<_, i32>(0) as u32,
            account_id: r.get(1),
            outcome: StoredOutcome::from_code(r.get(2)),
            result: r.get(3),
        })
        .collect())
}

pub(super) async fn count(client: &Client, operation: &str) -> Result<BTreeMap<StoredOutcome, u32>, StoreError> {
    Ok(client
        .query("SELECT outcome, COUNT(*) FROM account_results WHERE operation_id = $1 GROUP BY outcome", &[&operation])
        .await?
        .iter()
        .map(|r| (StoredOutcome::from_code(r.get(0)), r.get::<_, i64>(1) as u32))
        .collect())
}

pub(super) async fn placements(client: &Client, spec_name: &str) -> Result<Vec<String>, StoreError> {
    Ok(client
        .query("SELECT account_id FROM placements WHERE spec_name = $1 ORDER BY account_id", &[&spec_name])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

pub(super) async fn placed(client: &Client, spec_name: &str, account_id: &str) -> Result<bool, StoreError> {
    let sql = "SELECT 1 FROM placements WHERE spec_name = $1 AND account_id = $2";
    Ok(client.query_opt(sql, &[&spec_name, &account_id]).await?.is_some())
}

pub(super) async fn set_placement(
    client: &Client,
    spec_name: &str,
    account_id: &str,
    present: bool,
) -> Result<(), StoreError> {
    let sql = if present {
        "INSERT INTO placements (spec_name, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM placements WHERE spec_name = $1 AND account_id = $2"
    };
    client.execute(sql, &[&spec_name, &account_id]).await?;
    Ok(())
}
