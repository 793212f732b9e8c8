//! What Organizations discovery read, on SQLite: the tree (with its revision), each account's tags, with when, and
//! every account ever seen as a member.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Discovered, SavedTree, StoreError};

pub(super) fn tree(conn: &Connection, newer_than: u64) -> Result<Option<SavedTree>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT revision, fetched_at, tree FROM organization_tree WHERE id = 1 AND revision > ?1",
            [newer_than as i64],
            |r| {
                Ok(SavedTree {
                    revision: r.get::<_, i64>(0)? as u64,
                    tree: Discovered { fetched_at_ms: r.get(1)?, payload: r.get(2)? },
                })
            },
        )
        .optional()?)
}

pub(super) fn save_tree(conn: &Connection, tree: Discovered) -> Result<u64, StoreError> {
    let revision: i64 = conn.query_row(
        "INSERT INTO organization_tree (id, fetched_at, tree, revision) VALUES (1, ?1, ?2, 1) \
         ON CONFLICT (id) DO UPDATE SET fetched_at = excluded.fetched_at, tree = excluded.tree, \
         revision = organization_tree.revision + 1 RETURNING revision",
        params![tree.fetched_at_ms, tree.payload],
        |r| r.get(0),
    )?;
    Ok(revision as u64)
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

pub(super) fn note_members(conn: &mut Connection, at_ms: i64, account_ids: Vec<String>) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO members_seen (account_id, first_seen) VALUES (?1, ?2) ON CONFLICT (account_id) DO NOTHING",
        )?;
        for account in account_ids {
            stmt.execute(params![account, at_ms])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn members_seen(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT account_id, first_seen FROM members_seen ORDER BY account_id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}
