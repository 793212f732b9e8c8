//! What the PostgreSQL journal says of the key it is written under: its check value, whether it holds records,
//! and one of its sealed values.

use tokio_postgres::Client;

use crate::{
    KeyEvidence, SealedValue, StoreError,
    key::{CHECK_META_KEY, HOLDS_RECORDS, SEALED_BYTES},
};

pub(super) async fn evidence(client: &Client) -> Result<KeyEvidence, StoreError> {
    let check: Option<String> =
        client.query_opt("SELECT value FROM journal_meta WHERE key = $1", &[&CHECK_META_KEY]).await?.map(|r| r.get(0));
    let holds_records: bool = client.query_one(HOLDS_RECORDS, &[]).await?.get(0);
    let sealed = if check.is_none() && holds_records { sealed_value(client).await? } else { None };
    Ok(KeyEvidence { check, holds_records, sealed })
}

/// One sealed value of the journal's: in an operation's spec, else in a binding.
async fn sealed_value(client: &Client) -> Result<Option<SealedValue>, StoreError> {
    let needle = SEALED_BYTES;
    let found = client
        .query_opt("SELECT id, spec FROM operations WHERE position($1::bytea IN spec) > 0 LIMIT 1", &[&needle])
        .await?;
    if let Some(row) = found {
        return Ok(SealedValue::in_payload(row.get::<_, &[u8]>(1), row.get(0)));
    }
    let found = client
        .query_opt("SELECT name, binding FROM bindings WHERE position($1::bytea IN binding) > 0 LIMIT 1", &[&needle])
        .await?;
    Ok(found
        .and_then(|row| SealedValue::in_payload(row.get::<_, &[u8]>(1), format!("binding:{}", row.get::<_, &str>(0)))))
}

pub(super) async fn record(client: &Client, check: &str) -> Result<bool, StoreError> {
    let changed = client
        .execute(
            "INSERT INTO journal_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&CHECK_META_KEY, &check],
        )
        .await?;
    Ok(changed == 1)
}
