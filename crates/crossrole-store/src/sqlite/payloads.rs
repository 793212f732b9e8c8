//! The format of the SQLite journal's payloads, and their rewrite in one transaction (an upgrade).

use rusqlite::{Connection, OptionalExtension, params};

use crate::{PAYLOADS, PayloadFormat, PayloadKind, PayloadPlace, Rewrite, StoreError};

pub(super) fn format(conn: &Connection) -> Result<PayloadFormat, StoreError> {
    let value: Option<String> =
        conn.query_row("SELECT value FROM journal_meta WHERE key = 'payload_format'", [], |r| r.get(0)).optional()?;
    PayloadFormat::from_name(value.as_deref())
}

pub(super) fn rewrite(conn: &mut Connection, mut rewrite: Rewrite, format: PayloadFormat) -> Result<u64, StoreError> {
    let tx = conn.transaction()?;
    let mut done = 0;
    for place in PAYLOADS {
        done += rewrite_column(&tx, *place, &mut rewrite)?;
    }
    tx.execute(
        "INSERT OR REPLACE INTO journal_meta (key, value) VALUES ('payload_format', ?1)",
        params![format.name()],
    )?;
    tx.commit()?;
    Ok(done)
}

/// Rewrites one payload column, a page at a time in key order (keyset pagination: memory stays flat however large
/// the journal).
fn rewrite_column(
    tx: &rusqlite::Transaction<'_>,
    (kind, table, keys, column): PayloadPlace,
    rewrite: &mut Rewrite,
) -> Result<u64, StoreError> {
    use rusqlite::types::Value;
    let keys: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let key_list = keys.join(", ");
    let n = keys.len();
    let placeholders = (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let first = format!("SELECT {key_list}, {column} FROM {table} ORDER BY {key_list} LIMIT 500");
    let next = format!(
        "SELECT {key_list}, {column} FROM {table} WHERE ({key_list}) > ({placeholders}) ORDER BY {key_list} LIMIT 500"
    );
    let update = format!(
        "UPDATE {table} SET {column} = ?1 WHERE {}",
        keys.iter().enumerate().map(|(i, k)| format!("{k} = ?{}", i + 2)).collect::<Vec<_>>().join(" AND ")
    );
    let mut after: Option<Vec<Value>> = None;
    let mut done = 0;
    loop {
        let page: Vec<(Vec<Value>, Vec<u8>)> = {
            let mut stmt = tx.prepare(if after.is_some() { &next } else { &first })?;
            let params = rusqlite::params_from_iter(after.iter().flatten());
            stmt.query_map(params, |r| {
                let key = (0..n).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>()?;
                Ok((key, r.get::<_, Vec<u8>>(n)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let Some((last, _)) = page.last() else { return Ok(done) };
        after = Some(last.clone());
        for (key, payload) in page {
            if payload.is_empty() && kind == PayloadKind::BindingStatus {
                continue;
            }
            let new = rewrite(kind, &payload).map_err(|why| {
                let at = keys
                    .iter()
                    .zip(&key)
                    .map(|(k, v)| match v {
                        Value::Text(t) => format!("{k}={t:?}"),
                        Value::Integer(i) => format!("{k}={i}"),
                        other => format!("{k}={other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                StoreError::Rewrite(format!("{table}.{column} ({at}): {why}"))
            })?;
            let mut values: Vec<Value> = vec![Value::Blob(new)];
            values.extend(key);
            tx.execute(&update, rusqlite::params_from_iter(values))?;
            done += 1;
        }
    }
}
