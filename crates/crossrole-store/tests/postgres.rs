//! The journal's conformance suite on PostgreSQL, and what only PostgreSQL has (the writer lock, migrations by
//! several starters). Needs a server: `cargo xtask test` starts one and sets `CROSSROLE_TEST_POSTGRES` to a URL
//! whose user may create databases; each test gets a database of its own. Without it these tests fail (they are not
//! skipped): the workspace's nextest run leaves this binary to `cargo xtask test`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod conformance;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use crossrole_store::{Journal, PostgresJournal, PostgresOptions, StoreError};

fn admin_url() -> String {
    std::env::var("CROSSROLE_TEST_POSTGRES").expect(
        "CROSSROLE_TEST_POSTGRES is not set: these tests need a PostgreSQL server (cargo xtask test starts one)",
    )
}

/// A new, empty database; its URL.
async fn database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let admin = admin_url();
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("t_{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::SeqCst));
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

async fn fresh() -> conformance::J {
    Arc::new(PostgresJournal::connect(&database().await, PostgresOptions::default()).await.unwrap())
}

conformance!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_crossroled_per_journal_and_the_next_one_takes_over() {
    let url = database().await;
    let first = PostgresJournal::connect(&url, PostgresOptions::default()).await.unwrap();
    first.create_operation(conformance::new_op("a", None, "f")).await.unwrap();
    let refused = PostgresJournal::connect(&url, PostgresOptions::default()).await.err().unwrap();
    assert!(matches!(refused, StoreError::Locked { .. }), "{refused}");
    let message = refused.to_string();
    assert!(message.contains(&format!("crossroled pid {}", std::process::id())), "names the holder: {message}");
    drop(first);
    // The lock is the session's: once the holder is gone (as after kill -9), the next one starts, with the rows.
    let mut next = None;
    for _ in 0..50 {
        match PostgresJournal::connect(&url, PostgresOptions::default()).await {
            Ok(j) => {
                next = Some(j);
                break;
            }
            Err(StoreError::Locked { .. }) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    let next = next.expect("the lock was released when its session ended");
    assert!(next.get_operation("a").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_newer_than_this_crossroled_is_refused() {
    let url = database().await;
    drop(PostgresJournal::connect(&url, PostgresOptions::default()).await.unwrap());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("UPDATE crossrole_schema SET version = 99").await.unwrap();
    let mut outcome = None;
    for _ in 0..50 {
        match PostgresJournal::connect(&url, PostgresOptions::default()).await {
            Err(StoreError::Locked { .. }) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            other => {
                outcome = Some(other);
                break;
            }
        }
    }
    assert!(matches!(outcome, Some(Err(StoreError::SchemaTooNew(99, _)))));
}
