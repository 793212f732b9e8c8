//! crossroled on a PostgreSQL journal: a rollout, a restart that finds it, and a second crossroled refused. Needs
//! a server: `cargo xtask test` starts one and sets `CROSSROLE_TEST_POSTGRES`; without it this test fails (the
//! workspace's nextest run leaves it to `cargo xtask test`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use futures::StreamExt;
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
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\njournal_lease = \"2s\"\n[[tokens]]\nname = \"deployer\"\nsha256 = \"{}\"\nscope = \"apply\"\n",
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
    let e = format!("{e:#}");
    assert!(e.contains("stopped writing the journal") && e.contains("connection it holds its place"), "{e}");
}

/// A free loopback port (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn health(port: u16, service: &str) -> i32 {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    client.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status
}

/// An in-memory AWS of `accounts` accounts answering every call after 30 ms, so that a rollout lasts long enough
/// to be interrupted; alice in the security account.
fn slow_aws(accounts: u64) -> FakeAws {
    use crossrole_aws::{Service, fake::Latency};
    let mut fake_config = FakeConfig::default();
    for s in Service::ALL {
        fake_config
            .latency
            .insert(s, Latency { base: std::time::Duration::from_millis(30), jitter: Default::default() });
    }
    let fake = FakeAws::new(tree(accounts), fake_config);
    fake.add_principals(SECURITY, &["alice"], &[]);
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_a_rollout_its_writer_left_unfinished() {
    use tonic_health::ServingStatus;
    let url = database().await;
    let fake = slow_aws(40);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = crossrole_server::start(&config(&url, dir_a.path()), Arc::new(fake.clone())).await.unwrap();

    // The standby waits for the journal: alive for a liveness probe, not ready for everything, and serving reads.
    let (health_port, standby_port) = (free_port(), free_port());
    let mut standby_config = config(&url, dir_b.path());
    standby_config.listen = format!("127.0.0.1:{standby_port}").parse().unwrap();
    if let crossrole_server::config::JournalConfig::Postgres { options, .. } = &mut standby_config.journal {
        options.standby = true;
    }
    standby_config.health_listen = Some(format!("127.0.0.1:{health_port}").parse().unwrap());
    let standby = tokio::spawn({
        let fake = fake.clone();
        async move { crossrole_server::start(&standby_config, Arc::new(fake)).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!standby.is_finished(), "the standby waits while the writer holds the journal");
    assert_eq!(health(health_port, crossrole_server::LIVENESS).await, ServingStatus::Serving as i32);
    assert_eq!(health(health_port, "").await, ServingStatus::NotServing as i32);
    assert_eq!(health(health_port, crossrole_server::READS).await, ServingStatus::Serving as i32);

    // The writer starts a rollout of 40 accounts, 4 at a time, and dies part-way: its session ends (as with a
    // kill -9 or a lost node).
    let c = client(&first).await;
    let op = c.apply(spec(), None).await.unwrap();
    let id = op.id().to_string();
    loop {
        let now = c.operation(&id).await.unwrap();
        if now.counts.unwrap_or_default().changed >= 8 {
            assert_eq!(now.state, proto::OperationState::Running as i32, "still running when its writer dies");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Meanwhile the standby answers reads of the writer's operation from the journal, and refuses changes,
    // naming the writer.
    let reader = Client::builder()
        .endpoint(format!("http://127.0.0.1:{standby_port}"))
        .token("apply-token")
        .connect()
        .await
        .unwrap();
    let seen = reader.operation(&id).await.unwrap();
    assert_eq!((seen.id.as_str(), seen.state), (id.as_str(), proto::OperationState::Running as i32));
    assert!(!reader.list_operations(Default::default()).await.unwrap().operations.is_empty());
    let refused = reader.apply(spec(), None).await.err().unwrap();
    assert!(matches!(refused, crossrole_client::Error::Unavailable { .. }), "{refused:?}");
    assert!(refused.to_string().contains("standby") && refused.to_string().contains("crossroled pid"), "{refused}");
    // A watcher on the standby follows the writer's events from the journal; across the takeover its stream is
    // cut and resumed where it was, on the same address (the standby, now the writer).
    let watched = tokio::spawn({
        let handle = reader.operation_handle(id.clone());
        async move { handle.events().collect::<Vec<_>>().await }
    });

    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let ended = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(ended, 1, "one session holds the writer lock");
    let mut first = first;
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(20), first.wait()).await;
    assert!(stopped.expect("the writer stopped").is_err());
    drop(first);

    // The standby takes the journal over, resumes the rollout and finishes it: every account once, none failed.
    let next = tokio::time::timeout(std::time::Duration::from_secs(20), standby)
        .await
        .expect("the standby took over")
        .unwrap()
        .unwrap();
    assert_eq!(health(health_port, "").await, ServingStatus::Serving as i32);
    let c = client(&next).await;
    let handle = c.operation_handle(id.clone());
    let done = handle.wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let counts = done.counts.unwrap();
    assert_eq!((counts.changed + counts.unchanged, counts.failed), (40, 0), "{counts:?}");
    for i in 0..40u64 {
        let account = format!("{:012}", 200_000_000_000 + i);
        assert!(fake.role(&account, "Audit").is_some(), "{account}");
    }
    // The events are contiguous across the takeover, and end with the final state.
    let events: Vec<_> = handle.events().collect().await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.as_ref().unwrap().sequence, i as u64 + 1);
    }
    assert!(events.len() > 80, "{}", events.len());
    // The watcher that started on the standby saw the same events, each once, in order.
    let watched = tokio::time::timeout(std::time::Duration::from_secs(20), watched).await.unwrap().unwrap();
    let sequences = |events: &[Result<proto::OperationEvent, crossrole_client::Error>]| {
        events.iter().map(|e| e.as_ref().map(|e| e.sequence).map_err(|e| e.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(sequences(&watched), sequences(&events));
    next.stop().await.unwrap();
}

/// crossroled as one of the replicas sharing the journal at `url` (a short lease, for the test).
fn shared(url: &str, dir: &std::path::Path) -> Config {
    let mut config = config(url, dir);
    if let crossrole_server::config::JournalConfig::Postgres { options, .. } = &mut config.journal {
        options.shared = true;
        options.lease = std::time::Duration::from_secs(2);
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_replicas_all_serve_and_one_takes_over_what_another_left() {
    let url = database().await;
    let fake = slow_aws(40);
    let (dir_a, dir_b, dir_c) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Both start at once and both serve everything: no replica waits for another.
    let (config_a, config_b) = (shared(&url, dir_a.path()), shared(&url, dir_b.path()));
    let (a, b) = tokio::join!(
        crossrole_server::start(&config_a, Arc::new(fake.clone())),
        crossrole_server::start(&config_b, Arc::new(fake.clone())),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ca, cb) = (client(&a).await, client(&b).await);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(a.engine.calls().share(), 2, "each takes half of every AWS rate");

    // A rollout of 40 accounts, 4 at a time, on a; b reads it, and a watcher on b follows it live.
    let id = ca.apply(spec(), None).await.unwrap().id().to_string();
    let watched = tokio::spawn({
        let handle = cb.operation_handle(id.clone());
        async move { handle.events().collect::<Vec<_>>().await }
    });
    loop {
        let now = cb.operation(&id).await.unwrap();
        if now.counts.unwrap_or_default().changed >= 8 {
            assert_eq!(now.state, proto::OperationState::Running as i32);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // a stops part-way (a rolling upgrade): it leaves the replicas, and b takes the rollout over at once and
    // finishes it, every account once, none failed.
    let stopped = std::time::Instant::now();
    a.stop().await.unwrap();
    let handle = cb.operation_handle(id.clone());
    let done = handle.wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    assert!(stopped.elapsed() < std::time::Duration::from_secs(20), "{:?}", stopped.elapsed());
    let counts = done.counts.unwrap();
    assert_eq!((counts.changed + counts.unchanged, counts.failed), (40, 0), "{counts:?}");
    for i in 0..40u64 {
        let account = format!("{:012}", 200_000_000_000 + i);
        assert!(fake.role(&account, "Audit").is_some(), "{account}");
    }
    let events: Vec<_> = handle.events().collect().await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.as_ref().unwrap().sequence, i as u64 + 1, "contiguous across the takeover");
    }
    let watched = tokio::time::timeout(std::time::Duration::from_secs(20), watched).await.unwrap().unwrap();
    let sequences = |events: &[Result<proto::OperationEvent, crossrole_client::Error>]| {
        events.iter().map(|e| e.as_ref().map(|e| e.sequence).map_err(|e| e.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(sequences(&watched), sequences(&events), "the watcher on b saw every event once, in order");

    // A cancel asked on one replica stops the operation another runs.
    let c = crossrole_server::start(&shared(&url, dir_c.path()), Arc::new(fake.clone())).await.unwrap();
    let cc = client(&c).await;
    let destroy = cb.destroy(spec(), None).await.unwrap().id().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let asked = cc.cancel(&destroy).await.unwrap();
    assert_eq!(asked.state, proto::OperationState::Cancelling as i32);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), cb.operation_handle(destroy.clone()).wait())
        .await
        .expect("the replica running it stops it")
        .unwrap();
    assert_eq!(ended.state, proto::OperationState::Cancelled as i32, "{}", ended.message);
    b.stop().await.unwrap();
    c.stop().await.unwrap();
}

/// Two replicas asked to reconcile one binding at the same instant start one reconcile, and both callers get it
/// (ReconcileBinding returns the running one): the journal decides, not either replica's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_asked_to_reconcile_a_binding_at_once_start_one_reconcile() {
    let url = database().await;
    let fake = slow_aws(4);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (config_a, config_b) = (shared(&url, dir_a.path()), shared(&url, dir_b.path()));
    let (a, b) = tokio::join!(
        crossrole_server::start(&config_a, Arc::new(fake.clone())),
        crossrole_server::start(&config_b, Arc::new(fake.clone())),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ca, cb) = (client(&a).await, client(&b).await);
    let binding = proto::Binding {
        spec: Some(spec()),
        reconcile_interval: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
        ..Default::default()
    };
    let name = ca.create_binding(binding).await.unwrap().name;
    for round in 0..5 {
        let (on_a, on_b) = tokio::join!(ca.reconcile_binding(&name), cb.reconcile_binding(&name));
        let (on_a, on_b) = (on_a.unwrap(), on_b.unwrap());
        assert_eq!(on_a.id(), on_b.id(), "round {round}: one reconcile, both callers get it");
        let done = on_a.wait().await.unwrap();
        assert!(done.end_time.is_some(), "{}", done.message);
    }
    let request = proto::ListOperationsRequest { page_size: 100, ..Default::default() };
    let ops = ca.list_operations(request).await.unwrap().operations;
    let reconciles: Vec<_> = ops.iter().filter(|o| o.kind == proto::OperationKind::Reconcile as i32).collect();
    // The one the binding's creation started, if the schedule got to it first, and one a round.
    assert!((5..=6).contains(&reconciles.len()), "{} reconciles", reconciles.len());
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_journal_refuses_a_replica_with_another_key_before_it_writes() {
    let url = database().await;
    let fake = FakeAws::new(tree(2), FakeConfig::default());
    fake.add_principals(SECURITY, &["alice"], &[]);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = crossrole_server::start(&shared(&url, dir_a.path()), Arc::new(fake.clone())).await.unwrap();
    let done = client(&first).await.apply(spec(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);

    // A replica given another key joins nothing and writes nothing: it stops at once, saying why.
    let mut other = shared(&url, dir_b.path());
    other.journal_key = crossrole_server::config::JournalKeySource::Env("cd".repeat(32));
    let e = format!("{:#}", crossrole_server::start(&other, Arc::new(fake.clone())).await.err().unwrap());
    assert!(
        e.contains("is written under another journal key than the one crossroled has (CROSSROLE_JOURNAL_KEY)"),
        "{e}"
    );
    assert!(!e.contains(&"cd".repeat(32)), "the key is never in a message");
    let listed = client(&first).await.list_operations(Default::default()).await.unwrap().operations;
    assert_eq!(listed.len(), 1, "the refused replica started nothing");
    first.stop().await.unwrap();
}
