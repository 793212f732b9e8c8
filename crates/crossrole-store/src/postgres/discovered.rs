//! What Organizations discovery read, on PostgreSQL: the tree (with its revision), each account's tags, with when,
//! and every account ever seen as a member.

use tokio_postgres::Client;

use crate::{Discovered, SavedTree, StoreError};

pub(super) async fn tree(client: &Client, newer_than: u64) -> Result<Option<SavedTree>, StoreError> {
    Ok(client
        .query_opt(
            "SELECT revision, fetched_at, tree FROM organization_tree WHERE id = 1 AND revision > $1",
            &[&(newer_than as i64)],
        )
        .await?
        .map(|r| SavedTree {
            revision: r.get::<_, i64>(0) as u64,
            tree: Discovered { fetched_at_ms: r.get(1), payload: r.get(2) },
        }))
}

pub(super) async fn save_tree(client: &Client, tree: Discovered) -> Result<u64, StoreError> {
    let row = client
        .query_one(
            "INSERT INTO organization_tree (id, fetched_at, tree, revision) VALUES (1, $1, $2, 1) \
             ON CONFLICT (id) DO UPDATE SET fetched_at = excluded.fetched_at, tree = excluded.tree, \
             revision = organization_tree.revision + 1 RETURNING revision",
            &[&tree.fetched_at_ms, &tree.payload],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

pub(super) async fn tags(client: &Client) -> Result<Vec<(String, Discovered)>, StoreError> {
    Ok(client
        .query("SELECT account_id, fetched_at, tags FROM account_tags", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), Discovered { fetched_at_ms: r.get(1), payload: r.get(2) }))
        .collect())
}

pub(super) async fn save_tags(client: &Client, tags: Vec<(String, Discovered)>) -> Result<(), StoreError> {
    let (mut ids, mut times, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
    for (id, d) in tags {
        ids.push(id);
        times.push(d.fetched_at_ms);
        payloads.push(d.payload);
    }
    client
        .execute(
            "INSERT INTO account_tags (account_id, fetched_at, tags) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[]) \
             ON CONFLICT (account_id) DO UPDATE SET fetched_at = excluded.fetched_at, tags = excluded.tags",
            &[&ids, &times, &payloads],
        )
        .await?;
    Ok(())
}

pub(super) async fn note_members(client: &Client, at_ms: i64, account_ids: Vec<String>) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO members_seen (account_id, first_seen) SELECT t.id, $2::bigint FROM UNNEST($1::text[]) AS t(id) \
             ON CONFLICT (account_id) DO NOTHING",
            &[&account_ids, &at_ms],
        )
        .await?;
    Ok(())
}

pub(super) async fn members_seen(client: &Client) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(client
        .query("SELECT account_id, first_seen FROM members_seen ORDER BY account_id", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
