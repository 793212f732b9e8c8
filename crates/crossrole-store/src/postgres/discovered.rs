//! What Organizations discovery read, on PostgreSQL: the tree, and each account's tags, with when.

use tokio_postgres::Client;

use crate::{Discovered, StoreError};

pub(super) async fn tree(client: &Client) -> Result<Option<Discovered>, StoreError> {
    Ok(client
        .query_opt("SELECT fetched_at, tree FROM organization_tree WHERE id = 1", &[])
        .await?
        .map(|r| Discovered { fetched_at_ms: r.get(0), payload: r.get(1) }))
}

pub(super) async fn save_tree(client: &Client, tree: Discovered) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO organization_tree (id, fetched_at, tree) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET fetched_at = excluded.fetched_at, tree = excluded.tree",
            &[&tree.fetched_at_ms, &tree.payload],
        )
        .await?;
    Ok(())
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
