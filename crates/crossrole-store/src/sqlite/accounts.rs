//! Accounts on SQLite: each operation's account rows, read by outcome, and where each spec is applied
//! (placements).

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::{AccountRow, StoreError, StoredOutcome, codes::sql_list};

pub(super) fn list(
    conn: &Connection,
    operation: &str,
    outcomes: &[StoredOutcome],
    page_size: usize,
    after_index: Option<u32>,
) -> Result<Vec<AccountRow>, StoreError> {
    let filter = if outcomes.is_empty() {
        String::new()
    } else {
        format!(" AND outcome IN ({})", sql_list(outcomes.iter().map(|o| o.code())))
    };
    let sql = format!(
        "SELECT idx, account_id, outcome, result FROM account_results WHERE operation_id = ?1 AND idx > ?2{filter} \
         ORDER BY idx LIMIT ?3"
    );
    let mut stmt = conn.prepare(&sql)?;
    let after = after_index.map(i64::from).unwrap_or(-1);
    let rows = stmt
        .query_map(params![operation, after, page_size as i64], |r| {
            Ok(AccountRow {
                index: r.get(0)?,
                account_id: r.get(1)?,
                outcome: StoredOutcome::from_code(r.get(2)?),
                result: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn count(conn: &Connection, operation: &str) -> Result<BTreeMap<StoredOutcome, u32>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT outcome, COUNT(*) FROM account_results WHERE operation_id = ?1 GROUP BY outcome")?;
    let rows = stmt
        .query_map([operation], |r| Ok((StoredOutcome::from_code(r.get(0)?), r.get::<_, u32>(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn placements(conn: &Connection, spec_name: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT account_id FROM placements WHERE spec_name = ?1 ORDER BY account_id")?;
    let rows = stmt.query_map([spec_name], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn placed(conn: &Connection, spec_name: &str, account_id: &str) -> Result<bool, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM placements WHERE spec_name = ?1 AND account_id = ?2")?;
    Ok(stmt.exists(params![spec_name, account_id])?)
}

pub(super) fn set_placement(
    conn: &Connection,
    spec_name: &str,
    account_id: &str,
    present: bool,
) -> Result<(), StoreError> {
    if present {
        conn.execute(
            "INSERT OR IGNORE INTO placements (spec_name, account_id) VALUES (?1, ?2)",
            params![spec_name, account_id],
        )?;
    } else {
        conn.execute(
            "DELETE FROM placements WHERE spec_name = ?1 AND account_id = ?2",
            params![spec_name, account_id],
        )?;
    }
    Ok(())
}
