//! The accounts Organizations events named, waiting on SQLite for the reconciles of the bindings they concern.

use rusqlite::{Connection, params};

use crate::{StoreError, WaitingAccount};

pub(super) fn list(conn: &Connection) -> Result<Vec<WaitingAccount>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT binding_name, account_id, created_by, attempts, due_at, operation_id FROM waiting_accounts \
         ORDER BY binding_name, account_id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(WaitingAccount {
                binding: r.get(0)?,
                account_id: r.get(1)?,
                created_by: r.get(2)?,
                attempts: r.get(3)?,
                due_at: r.get(4)?,
                operation_id: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn wait(
    conn: &mut Connection,
    binding: &str,
    accounts: &[String],
    created_by: &str,
    due_at: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO waiting_accounts (binding_name, account_id, created_by, attempts, due_at, operation_id) \
             VALUES (?1, ?2, ?3, 0, ?4, NULL) ON CONFLICT (binding_name, account_id) DO UPDATE SET \
             created_by = excluded.created_by, attempts = 0, due_at = MIN(due_at, excluded.due_at), \
             operation_id = NULL",
        )?;
        for account in accounts {
            stmt.execute(params![binding, account, created_by, due_at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn take(
    conn: &mut Connection,
    binding: &str,
    accounts: &[String],
    operation: &str,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE waiting_accounts SET operation_id = ?3 WHERE binding_name = ?1 AND account_id = ?2",
        )?;
        for account in accounts {
            stmt.execute(params![binding, account, operation])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn settle(
    conn: &mut Connection,
    operation: &str,
    retry: &[String],
    due_at: i64,
    max_attempts: u32,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "UPDATE waiting_accounts SET attempts = attempts + 1, due_at = ?3, operation_id = NULL \
             WHERE operation_id = ?1 AND account_id = ?2 AND attempts + 1 < ?4",
        )?;
        for account in retry {
            stmt.execute(params![operation, account, due_at, max_attempts])?;
        }
    }
    tx.execute("DELETE FROM waiting_accounts WHERE operation_id = ?1", [operation])?;
    tx.commit()?;
    Ok(())
}
