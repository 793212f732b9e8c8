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

use crossrole_store::{
    Coordination, Journal, PostgresJournal, PostgresOptions, StateChange, StoreError, StoredKind, StoredState,
};

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

/// Connects with `options` once the journal is free (a session that held it may take a moment to end): `None`
/// if it is still held after 5 s.
async fn connect_once_free(url: &str, options: PostgresOptions) -> Option<PostgresJournal> {
    for _ in 0..50 {
        match PostgresJournal::connect(url, options.clone()).await {
            Ok(j) => return Some(j),
            Err(StoreError::Locked { .. }) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => panic!("{e}"),
        }
    }
    None
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
    // The lock is the session's: once the holder is gone (as after kill -9), the next one starts, with the rows;
    // but the one that left without a clean stop may still be writing to AWS, so the next waits a lease first.
    let options = PostgresOptions { lease: LEASE, ..PostgresOptions::default() };
    let started = std::time::Instant::now();
    let next = connect_once_free(&url, options.clone()).await.expect("the lock was released when its session ended");
    assert!(started.elapsed() >= LEASE, "it waited a lease: {:?}", started.elapsed());
    assert!(next.get_operation("a").await.unwrap().is_some());
    // One that stopped cleanly says so: the next need not wait.
    next.coordination().release().await.unwrap();
    assert!(next.create_operation(conformance::new_op("b", None, "f")).await.is_err(), "it writes nothing more");
    drop(next);
    let started = std::time::Instant::now();
    let third = connect_once_free(&url, options).await.unwrap();
    assert!(started.elapsed() < LEASE, "no wait after a clean stop: {:?}", started.elapsed());
    assert!(third.get_operation("a").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_replica_after_a_writer_that_did_not_stop_cleanly_waits_a_lease_before_it_claims() {
    let url = database().await;
    let options = PostgresOptions { lease: LEASE, ..PostgresOptions::default() };
    let writer = PostgresJournal::connect(&url, options.clone()).await.unwrap();
    writer.create_operation(conformance::new_op("writers", None, "f")).await.unwrap();
    // Its session ends without a clean stop (a lost node, a cut link): it may write to AWS until its fence.
    let ended = std::time::Instant::now();
    drop(writer);
    let shared = PostgresOptions { shared: true, ..options };
    let replica = connect_once_free(&url, shared.clone()).await.expect("the writer's lock ends with its session");
    let claimed = replica.coordination().claim_operations(8, &[]).await.unwrap();
    assert!(ended.elapsed() >= LEASE, "claimed {:?} after the writer's session ended", ended.elapsed());
    assert_eq!(claimed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["writers"]);
    // The writer has stopped for sure now: the next replica does not wait.
    let started = std::time::Instant::now();
    let _second = PostgresJournal::connect(&url, shared).await.unwrap();
    assert!(started.elapsed() < LEASE, "no wait once a replica waited it out: {:?}", started.elapsed());
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

/// A replica of a shared journal at `url`, with a short lease.
async fn replica(url: &str) -> PostgresJournal {
    let options = PostgresOptions { shared: true, lease: LEASE, ..PostgresOptions::default() };
    PostgresJournal::connect(url, options).await.unwrap()
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(2);

/// One event with `sequence`.
fn event(sequence: u64) -> crossrole_store::Batch {
    crossrole_store::Batch {
        events: vec![crossrole_store::EventRow { sequence, payload: vec![sequence as u8] }],
        ..Default::default()
    }
}

async fn fresh_shared() -> conformance::J {
    Arc::new(replica(&database().await).await)
}

/// A replica of a shared journal is a journal like any other.
mod shared_conformance {
    use super::*;

    conformance!(fresh_shared());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_replicas_own_what_they_run_and_take_over_a_dead_ones_work() {
    let url = database().await;
    let (a, b) = (replica(&url).await, replica(&url).await);
    let (ac, bc) = (a.coordination(), b.coordination());
    assert!(ac.shares_work() && bc.shares_work());
    assert_eq!((ac.live_replicas().await.unwrap(), bc.live_replicas().await.unwrap()), (2, 2));
    a.create_operation(conformance::new_op("x", None, "f")).await.unwrap();

    // a runs x: b may not claim it, nor write its progress; a's events must continue its sequence.
    assert!(bc.claim_operations(10, &[]).await.unwrap().is_empty(), "its owner is alive");
    a.persist("x", event(1)).await.unwrap();
    let refused = b.persist("x", event(2)).await.err().unwrap();
    assert!(matches!(refused, StoreError::NotOwner { .. }), "{refused}");
    let gap = a.persist("x", event(3)).await.err().unwrap();
    assert!(gap.to_string().contains("the next is 2, not 3"), "{gap}");
    a.persist("x", event(2)).await.unwrap();

    // (account, role) is one holder's at a time, across replicas.
    let token = ac.lock_role("111", "Audit", "x").await.unwrap().expect("free");
    assert_eq!(bc.lock_role("111", "Audit", "y").await.unwrap(), None, "held by a live replica");
    assert!(bc.lock_role("222", "Audit", "y").await.unwrap().is_some(), "another account is free");
    ac.unlock_role("111", "Audit", &token).await.unwrap();
    let b_token = bc.lock_role("111", "Audit", "y").await.unwrap().expect("given back");
    bc.unlock_role("111", "Audit", &b_token).await.unwrap();
    let held = ac.lock_role("111", "Audit", "x").await.unwrap().expect("free again");
    let _ = held;

    // Exactly one of them runs the work for one replica.
    let lead = |c: Arc<dyn Coordination>| async move { tokio::time::timeout(LEASE, c.leader()).await.is_ok() };
    let (a_leads, b_leads) = tokio::join!(lead(ac.clone()), lead(bc.clone()));
    assert!(a_leads ^ b_leads, "a leads: {a_leads}, b leads: {b_leads}");

    // a dies (as with kill -9: no goodbye). Within a lease, nothing of it is b's; after, x and its role are.
    drop((a, ac));
    assert!(bc.claim_operations(10, &[]).await.unwrap().is_empty(), "not before the lease lapses");
    tokio::time::sleep(LEASE + std::time::Duration::from_millis(500)).await;
    assert_eq!(bc.live_replicas().await.unwrap(), 1);
    let claimed = bc.claim_operations(10, &[]).await.unwrap();
    assert_eq!(claimed.iter().map(|o| (o.id.as_str(), o.last_sequence)).collect::<Vec<_>>(), [("x", 2)]);
    assert!(bc.claim_operations(10, &[]).await.unwrap().is_empty(), "claimed once");
    b.persist("x", event(3)).await.unwrap();
    assert!(bc.lock_role("111", "Audit", "x").await.unwrap().is_some(), "a dead replica's lock is free");
    assert!(tokio::time::timeout(LEASE, bc.leader()).await.is_ok(), "b runs the scheduler now");
    let events = b.read_events("x", 0, 10).await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_claiming_at_once_split_a_dead_ones_operations_and_a_leaving_one_frees_them_at_once() {
    let url = database().await;
    let dead = replica(&url).await;
    for i in 0..40 {
        dead.create_operation(conformance::new_op(&format!("op{i:02}"), None, "f")).await.unwrap();
    }
    let done = StateChange::new(&[StoredState::Pending], StoredState::Succeeded, "done").ended(1);
    assert!(dead.change_state("op00", done).await.unwrap());
    drop(dead);
    let (c, d) = (replica(&url).await, replica(&url).await);
    let (cc, dc) = (c.coordination(), d.coordination());
    tokio::time::sleep(LEASE + std::time::Duration::from_millis(500)).await;
    let claim = |coordination: Arc<dyn Coordination>| async move {
        let mut all = Vec::new();
        loop {
            let got = coordination.claim_operations(5, &[]).await.unwrap();
            if got.is_empty() {
                return all;
            }
            all.extend(got.into_iter().map(|o| o.id));
            tokio::task::yield_now().await;
        }
    };
    let (by_c, by_d) = tokio::join!(claim(cc.clone()), claim(dc.clone()));
    let mut both: Vec<String> = by_c.iter().chain(&by_d).cloned().collect();
    both.sort();
    let expected: Vec<String> = (1..40).map(|i| format!("op{i:02}")).collect();
    assert_eq!(both, expected, "each unfinished operation claimed exactly once (c {}, d {})", by_c.len(), by_d.len());

    // d stops cleanly: c takes its operations at once, with no lease to wait for.
    dc.release().await.unwrap();
    assert!(
        d.create_operation(conformance::new_op("late", None, "f")).await.is_err(),
        "a replica that left writes nothing"
    );
    let taken = cc.claim_operations(100, &[]).await.unwrap();
    assert_eq!(taken.len(), by_d.len());
    assert_eq!(cc.live_replicas().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_lease_lapsed_stops_writing_and_says_so() {
    let url = database().await;
    let r = replica(&url).await;
    r.create_operation(conformance::new_op("x", None, "f")).await.unwrap();
    // As if it had been paused longer than its lease: the others may take its work, so it must write nothing more.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute("UPDATE replicas SET heartbeat_at = 0").await.unwrap();
    let why =
        tokio::time::timeout(LEASE, r.coordination().writer_lost()).await.expect("it notices at its next heartbeat");
    assert!(why.contains("lease lapsed"), "{why}");
    let refused = r.persist("x", event(1)).await.err().unwrap();
    assert!(refused.to_string().contains("writes nothing more"), "{refused}");
}

/// Renewals that hang (a cut link, a database that stopped answering) are not renewals: the replica stops writing
/// — the journal, and AWS through its fence — before its lease could lapse in the database, which is when another
/// may take its work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_renewals_hang_stops_writing_before_its_lease_could_lapse() {
    let url = database().await;
    let r = replica(&url).await;
    let coordination = r.coordination();
    let fence = coordination.fence().expect("a replica's AWS writes are fenced");
    let first = *fence.until.borrow();
    tokio::time::sleep(LEASE / 2).await;
    assert!(*fence.until.borrow() > first, "confirmed renewals move the deadline forward");
    // The database holds the replica's row: its renewals wait, unanswered.
    let (mut admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let tx = admin.transaction().await.unwrap();
    tx.execute("SELECT 1 FROM replicas FOR UPDATE", &[]).await.unwrap();
    let held = tokio::time::Instant::now();
    let why = tokio::time::timeout(LEASE, coordination.writer_lost()).await.expect("it stops before a lease is out");
    assert!(why.contains("no renewal was confirmed"), "{why}");
    assert!(held.elapsed() < LEASE, "stopped {:?} after its last renewal could have been confirmed", held.elapsed());
    assert!(*fence.until.borrow() <= tokio::time::Instant::now(), "no AWS write may leave now");
    let refused = r.create_operation(conformance::new_op("late", None, "f")).await.err().unwrap();
    assert!(refused.to_string().contains("writes nothing more"), "{refused}");
    tx.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_and_shared_replicas_never_run_one_journal_together() {
    let url = database().await;
    let writer = PostgresJournal::connect(&url, PostgresOptions::default()).await.unwrap();
    let refused = PostgresJournal::connect(&url, PostgresOptions { shared: true, lease: LEASE, ..Default::default() })
        .await
        .err()
        .unwrap();
    assert!(matches!(refused, StoreError::Locked { .. }), "{refused}");
    assert!(refused.to_string().contains("not journal_shared"), "{refused}");
    drop(writer);
    // Once the writer is gone, a replica joins (the writer's session may take a moment to end); then a writer
    // that is not shared is refused while the replica lives.
    let shared = PostgresOptions { shared: true, lease: LEASE, ..Default::default() };
    let replica = connect_once_free(&url, shared).await.expect("a replica joins once the writer is gone");
    let refused = PostgresJournal::connect(&url, PostgresOptions::default()).await.err().unwrap();
    assert!(refused.to_string().contains("1 live replica(s) sharing its work"), "{refused}");
    drop(replica);
}

/// Two replicas asked to reconcile one binding at the same instant start one reconcile: the journal decides, and
/// both callers get that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_reconciling_one_binding_at_once_start_one_reconcile() {
    let url = database().await;
    let (a, b) = (Arc::new(replica(&url).await), Arc::new(replica(&url).await));
    let reconcile = |id: String| crossrole_store::NewOperation {
        kind: StoredKind::Reconcile,
        binding_name: Some("audit".into()),
        ..conformance::new_op(&id, None, "f")
    };
    for round in 0..10 {
        let starts: Vec<_> = (0..8)
            .map(|i| {
                let journal: Arc<PostgresJournal> = if i % 2 == 0 { a.clone() } else { b.clone() };
                let new = reconcile(format!("r{round}-{i}"));
                tokio::spawn(async move { journal.create_operation(new).await.unwrap() })
            })
            .collect();
        let mut created = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        for started in starts {
            let (row, new) = started.await.unwrap();
            if new {
                created.push(row.id.clone());
            }
            ids.insert(row.id);
        }
        assert_eq!((created.len(), ids.len()), (1, 1), "round {round}: {created:?} {ids:?}");
        // The replica that created it ends it; the next round starts the next.
        let first = created.remove(0);
        let owner = if a.get_operation(&first).await.unwrap().is_some() && a.persist(&first, ended()).await.is_ok() {
            "a"
        } else {
            b.persist(&first, ended()).await.unwrap();
            "b"
        };
        let op = b.get_operation(&first).await.unwrap().unwrap();
        assert_eq!(op.state, StoredState::Succeeded, "ended by {owner}");
    }
}

/// The last event of an operation, with its end.
fn ended() -> crossrole_store::Batch {
    crossrole_store::Batch {
        events: vec![crossrole_store::EventRow { sequence: 1, payload: vec![] }],
        end: Some(crossrole_store::OperationEnd { state: StoredState::Succeeded, message: String::new(), end_time: 1 }),
        ..Default::default()
    }
}

/// A replica that claimed an operation it cannot read gives it back: another replica claims it at once, and the
/// one that gave it back passes it over while it claims the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_given_back_goes_to_another_replica_and_the_rest_are_claimed() {
    let url = database().await;
    let dead = replica(&url).await;
    for id in ["newer", "x", "y"] {
        dead.create_operation(conformance::new_op(id, None, "f")).await.unwrap();
    }
    drop(dead);
    let (old, new) = (replica(&url).await, replica(&url).await);
    let (oc, nc) = (old.coordination(), new.coordination());
    tokio::time::sleep(LEASE + std::time::Duration::from_millis(500)).await;
    let ids = |rows: Vec<crossrole_store::OperationRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(oc.claim_operations(1, &[]).await.unwrap()), ["newer"]);
    oc.give_back("newer").await.unwrap();
    let passed_over = vec!["newer".to_string()];
    assert_eq!(
        ids(oc.claim_operations(10, &passed_over).await.unwrap()),
        ["x", "y"],
        "the rest, not the one given back"
    );
    assert_eq!(ids(nc.claim_operations(10, &[]).await.unwrap()), ["newer"], "free for a replica that can read it");
    new.persist("newer", event(1)).await.unwrap();
    assert!(old.persist("newer", event(2)).await.is_err(), "no longer the one that gave it back's");
}
