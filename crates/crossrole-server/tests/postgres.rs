//! crossroled on a PostgreSQL journal: a rollout, a restart that finds it, and a second crossroled refused. Needs
//! a server: `cargo xtask test` starts one and sets `CROSSROLE_TEST_POSTGRES`; without it this test fails (the
//! workspace's nextest run leaves it to `cargo xtask test`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use common::*;
use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_client::{Client, proto};
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags},
};

async fn database() -> String {
    let admin = std::env::var("CROSSROLE_TEST_POSTGRES").expect(
        "CROSSROLE_TEST_POSTGRES is not set: this test needs a PostgreSQL server (cargo xtask test starts one)",
    );
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let name = format!("s_{}_{}", std::process::id(), SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

/// crossroled's configuration on the journal at `url`; every crossroled of the journal shares its key.
fn config(url: &str, dir: &std::path::Path) -> Config {
    let flags = Flags { journal_key: Some("ab".repeat(32)), journal: Some(url.to_string()), ..Flags::default() };
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[[tokens]]\nname = \"deployer\"\nsha256 = \"{}\"\nscope = \"apply\"\n",
        dir.display(),
        hash_token("apply-token")
    );
    Config::from_toml(&text, &flags).unwrap()
}

async fn client(server: &crossrole_server::RunningServer) -> Client {
    Client::builder().endpoint(format!("http://{}", server.addr)).token("apply-token").connect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossroled_on_postgres_keeps_its_operations_and_is_alone() {
    let url = database().await;
    let fake = FakeAws::new(tree(20), FakeConfig::default());
    fake.add_principals(SECURITY, &["alice"], &[]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());

    let first = crossrole_server::start(&config(&url, dir_a.path()), Arc::new(fake.clone())).await.unwrap();
    let done = client(&first).await.apply(spec(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    assert_eq!(done.counts.unwrap().changed, 20);

    // Another crossroled (its own data directory) on the same journal is refused while the first runs.
    let refused = crossrole_server::start(&config(&url, dir_b.path()), Arc::new(fake.clone())).await.err().unwrap();
    let message = format!("{refused:#}");
    assert!(message.contains("is in use by crossroled pid"), "{message}");

    // Stopped, the first lets the next one take the journal over, with everything in it.
    first.stop().await.unwrap();
    let mut next = None;
    for _ in 0..50 {
        match crossrole_server::start(&config(&url, dir_b.path()), Arc::new(fake.clone())).await {
            Ok(s) => {
                next = Some(s);
                break;
            }
            Err(e) if format!("{e:#}").contains("is in use") => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e:#}"),
        }
    }
    let next = next.expect("the journal was released when the first crossroled stopped");
    let c = client(&next).await;
    let op = c.operation(&done.id).await.unwrap();
    assert_eq!((op.state, op.counts.unwrap().changed), (proto::OperationState::Succeeded as i32, 20));
    let again = c.apply(spec(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(again.counts.unwrap().unchanged, 20, "the re-apply finds every role in place");
    next.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossroled_stops_when_it_loses_the_journal() {
    let url = database().await;
    let fake = FakeAws::new(tree(3), FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let mut server = crossrole_server::start(&config(&url, dir.path()), Arc::new(fake)).await.unwrap();
    // The database ends every crossroled session (as a failover or an operator would).
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'crossroled' AND datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(20), server.wait()).await;
    let e = stopped.expect("crossroled stopped by itself").unwrap_err();
    assert!(format!("{e:#}").contains("writer lock ended"), "{e:#}");
}
