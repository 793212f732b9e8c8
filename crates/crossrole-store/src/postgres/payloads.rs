//! The format of the PostgreSQL journal's payloads, and their rewrite in one transaction (an upgrade).

use tokio_postgres::{Client, types::ToSql};

use crate::{PAYLOADS, PayloadFormat, PayloadKind, PayloadPlace, Rewrite, StoreError};

pub(super) async fn format(client: &Client) -> Result<PayloadFormat, StoreError> {
    let value: Option<String> =
        client.query_opt("SELECT value FROM journal_meta WHERE key = 'payload_format'", &[]).await?.map(|r| r.get(0));
    PayloadFormat::from_name(value.as_deref())
}

pub(super) async fn rewrite(
    client: &mut deadpool_postgres::Object,
    mut rewrite: Rewrite,
    format: PayloadFormat,
) -> Result<u64, StoreError> {
    let tx = client.transaction().await?;
    let mut done = 0;
    for place in PAYLOADS {
        done += rewrite_column(&tx, *place, &mut rewrite).await?;
    }
    let format = format.name();
    tx.execute(
        "INSERT INTO journal_meta (key, value) VALUES ('payload_format', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&format],
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// Rewrites one payload column a page at a time in key order (keyset pagination: memory stays flat). Keys travel
/// as text and are cast back to their type in the query.
async fn rewrite_column(
    tx: &deadpool_postgres::Transaction<'_>,
    (kind, table, keys, column): PayloadPlace,
    rewrite: &mut Rewrite,
) -> Result<u64, StoreError> {
    let key_list = keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
    // Aliased: an output column named like a key would be what ORDER BY sorts by (as text: "10" before "2").
    let as_text =
        keys.iter().enumerate().map(|(i, (k, _))| format!("{k}::text AS key_{i}")).collect::<Vec<_>>().join(", ");
    let params = |from: usize| {
        keys.iter().enumerate().map(|(i, (_, t))| format!("${}::text::{t}", i + from)).collect::<Vec<_>>()
    };
    let first = format!("SELECT {as_text}, {column} FROM {table} ORDER BY {key_list} LIMIT 500");
    let next = format!(
        "SELECT {as_text}, {column} FROM {table} WHERE ({key_list}) > ({}) ORDER BY {key_list} LIMIT 500",
        params(1).join(", ")
    );
    let update = format!(
        "UPDATE {table} SET {column} = $1 WHERE {}",
        keys.iter().zip(params(2)).map(|((k, _), p)| format!("{k} = {p}")).collect::<Vec<_>>().join(" AND ")
    );
    let n = keys.len();
    let mut after: Option<Vec<String>> = None;
    let mut done = 0;
    loop {
        let rows = match &after {
            None => tx.query(&first, &[]).await?,
            Some(key) => {
                let args: Vec<&(dyn ToSql + Sync)> = key.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
                tx.query(&next, &args).await?
            }
        };
        let Some(last) = rows.last() else { return Ok(done) };
        after = Some((0..n).map(|i| last.get::<_, String>(i)).collect());
        for row in &rows {
            let key: Vec<String> = (0..n).map(|i| row.get(i)).collect();
            let payload: Vec<u8> = row.get(n);
            if payload.is_empty() && kind == PayloadKind::BindingStatus {
                continue;
            }
            let new = rewrite(kind, &payload).map_err(|why| {
                let at = keys
                    .iter()
                    .zip(&key)
                    .map(|((k, t), v)| if *t == "text" { format!("{k}={v:?}") } else { format!("{k}={v}") })
                    .collect::<Vec<_>>()
                    .join(", ");
                StoreError::Rewrite(format!("{table}.{column} ({at}): {why}"))
            })?;
            let mut args: Vec<&(dyn ToSql + Sync)> = vec![&new];
            args.extend(key.iter().map(|k| k as &(dyn ToSql + Sync)));
            tx.execute(&update, &args).await?;
            done += 1;
        }
    }
}
