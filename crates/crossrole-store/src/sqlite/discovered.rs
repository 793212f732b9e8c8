//! What Organizations discovery read, on SQLite: the tree, and each account's tags, with when.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Discovered, StoreError};

pub(super) fn tree(conn: &Connection) -> Result<Option<Discovered>, StoreError> {
    Ok(conn
        .query_row("SELECT fetched_at, tree FROM organization_tree WHERE id = 1", [], |r| {
            Ok(Discovered { fetched_at_ms: r.get(0)?, payload: r.get(1)? })
        })
        .optional()?)
}

pub(super) fn save_tree(conn: &Connection, tree: Discovered) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO organization_tree (id, fetched_at, tree) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET fetched_at = excluded.fetched_at, tree = excluded.tree",
        params![tree.fetched_at_ms, tree.payload],
    )?;
    Ok(())
}

pub(super) fn tags(conn: &Connection) -> Result<Vec<(String, Discovered)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT account_id, fetched_at, tags FROM account_tags")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, Discovered { fetched_at_ms: r.get(1)?, payload: r.get(2)? })))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn save_tags(conn: &mut Connection, tags: Vec<(String, Discovered)>) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO account_tags (account_id, fetched_at, tags) VALUES (?1, ?2, ?3) \
             ON CONFLICT (account_id) DO UPDATE SET fetched_at = excluded.fetched_at, tags = excluded.tags",
        )?;
        for (account, d) in tags {
            stmt.execute(params![account, d.fetched_at_ms, d.payload])?;
        }
    }
    tx.commit()?;
    Ok(())
}
