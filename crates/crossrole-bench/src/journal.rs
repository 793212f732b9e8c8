//! `journal <sqlite | postgres://… | shared:postgres://…> <operations> <accounts>`: a journal under the writes of
//! `operations`
//! rollouts at once, `accounts` accounts each, as the engine makes them: each operation's one event writer persists,
//! per account, a batch of the account's row and its events (4: started, two phases, finished), and the
//! operation's end with its last event. Prints the latency of each write (p50, p99, max) and events per second.
//! `shared:` opens three replicas sharing the PostgreSQL journal (each write then checks, in its transaction, that
//! its replica owns the operation and is alive) and spreads the operations over them.

use std::{sync::Arc, time::Instant};

use anyhow::Result;
use crossrole_store::{
    AccountRow, Batch, EventRow, Journal, NewOperation, OperationEnd, PostgresJournal, PostgresOptions, SqliteJournal,
    StoredKind, StoredOutcome, StoredState,
};

const EVENTS_PER_ACCOUNT: u64 = 4;

pub(crate) async fn run(target: &str, operations: usize, accounts: u32) -> Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let journals: Vec<Arc<dyn Journal>> = if target == "sqlite" {
        vec![Arc::new(SqliteJournal::open(&dir.path().join("journal.db"))?)]
    } else if let Some(url) = target.strip_prefix("shared:") {
        let mut replicas: Vec<Arc<dyn Journal>> = Vec::new();
        for _ in 0..3 {
            let options = PostgresOptions { shared: true, ..PostgresOptions::default() };
            replicas.push(Arc::new(PostgresJournal::connect(url, options).await?));
        }
        replicas
    } else {
        vec![Arc::new(PostgresJournal::connect(target, PostgresOptions::default()).await?)]
    };
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    let payload = vec![b'x'; 300];
    let started = Instant::now();
    let tasks: Vec<_> = (0..operations)
        .map(|o| {
            let (journal, payload) = (journals[o % journals.len()].clone(), payload.clone());
            tokio::spawn(async move {
                let id = format!("{run_id}-{o}");
                journal
                    .create_operation(NewOperation {
                        id: id.clone(),
                        kind: StoredKind::Apply,
                        spec_name: format!("bench-{o}"),
                        spec: payload.clone(),
                        idempotency_key: None,
                        request_fingerprint: String::new(),
                        binding_name: None,
                        created_by: "bench".into(),
                        create_time: 0,
                        state: StoredState::Running,
                        dry_run: false,
                    })
                    .await?;
                let mut latencies = Vec::with_capacity(accounts as usize + 1);
                let mut sequence = 0;
                for a in 0..accounts {
                    let events = (0..EVENTS_PER_ACCOUNT)
                        .map(|_| {
                            sequence += 1;
                            EventRow { sequence, payload: payload.clone() }
                        })
                        .collect();
                    let row = AccountRow {
                        index: a,
                        account_id: format!("{a:012}"),
                        outcome: StoredOutcome::Changed,
                        result: payload.clone(),
                    };
                    let mut batch = Batch { rows: vec![row], events, ..Batch::default() };
                    if a + 1 == accounts {
                        batch.end =
                            Some(OperationEnd { state: StoredState::Succeeded, message: String::new(), end_time: 1 });
                    }
                    let t = Instant::now();
                    journal.persist(&id, batch).await?;
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let wall = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let events = operations as f64 * f64::from(accounts) * EVENTS_PER_ACCOUNT as f64;
    Ok(serde_json::json!({
        "writes": latencies.len(),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": latencies.last().copied().unwrap_or(0.0),
        "events_per_s": events / wall,
        "wall_s": wall,
    }))
}
