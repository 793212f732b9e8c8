//! The audit log on PostgreSQL.

use tokio_postgres::{Client, types::ToSql};

use crate::{AUDIT_COLUMNS, AuditEntry, AuditFilter, AuditValue, StoreError};

pub(super) async fn record(client: &Client, e: AuditEntry) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO audit (time, caller, method, spec_name, operation_id, request, outcome, caller_subject) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&e.time, &e.caller, &e.method, &e.spec_name, &e.operation_id, &e.request, &e.outcome, &e.caller_subject],
        )
        .await?;
    Ok(())
}

pub(super) async fn read(
    client: &Client,
    filter: &AuditFilter,
    page_size: usize,
    before: Option<i64>,
) -> Result<Vec<AuditEntry>, StoreError> {
    let (clause, values) = filter.clause();
    // `?` → `$n`, in order.
    let mut n = 0;
    let clause: String = clause
        .split('?')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                n += 1;
                format!("${n}{part}")
            }
        })
        .collect();
    let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE {clause} ORDER BY id DESC LIMIT ${}", n + 1);
    let before = before.unwrap_or(i64::MAX);
    let limit = page_size as i64;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&before];
    for v in &values {
        params.push(match v {
            AuditValue::Int(t) => t,
            AuditValue::Text(t) => t,
        });
    }
    params.push(&limit);
    Ok(client
        .query(&sql, &params)
        .await?
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            time: r.get(1),
            caller: r.get(2),
            method: r.get(3),
            spec_name: r.get(4),
            operation_id: r.get(5),
            request: r.get(6),
            outcome: r.get(7),
            caller_subject: r.get(8),
        })
        .collect())
}

pub(super) async fn expire(client: &Client, before: i64) -> Result<u64, StoreError> {
    Ok(client.execute("DELETE FROM audit WHERE time < $1", &[&before]).await?)
}
