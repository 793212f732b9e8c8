//! An operation's event stream: numbered, persisted in order, then published live.
//!
//! The rollout hands events and account rows to a writer task over an unbounded channel and never waits for it;
//! the writer persists them in batches (rows first, then events) and only then publishes the events on a
//! broadcast channel. So the journal always holds every event a watcher has seen live, a watcher that falls
//! behind can catch up from the journal, and no watcher can slow the rollout.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use crossrole_aws::calls::CallStats;
use crossrole_proto::v1 as pb;
use crossrole_store::{AccountRow, EventRow, Journal};
use prost::Message;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::convert;

enum Msg {
    Event(Box<pb::OperationEvent>),
    Account(AccountRow),
    Flush(oneshot::Sender<()>),
}

/// Emits an operation's events.
#[derive(Clone)]
pub(crate) struct EventSink {
    sequence: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl EventSink {
    /// A sink continuing after `last_sequence`, with its writer task.
    pub(crate) fn start(
        operation: String,
        last_sequence: u64,
        journal: Arc<dyn Journal>,
        live: broadcast::Sender<Arc<pb::OperationEvent>>,
        stats: Arc<CallStats>,
        base_calls: BTreeMap<String, u64>,
        base_throttled: u64,
    ) -> (EventSink, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sequence = Arc::new(AtomicU64::new(last_sequence));
        let writer = tokio::spawn(write(operation, rx, journal, live, stats, base_calls, base_throttled));
        (EventSink { sequence, tx }, writer)
    }

    /// Emits an event about `account` (empty for the operation).
    pub(crate) fn emit(&self, account: &str, event: pb::operation_event::Event) {
        let sequence = self.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        let e = pb::OperationEvent {
            sequence,
            time: Some(convert::now()),
            account_id: account.to_string(),
            event: Some(event),
        };
        let _ = self.tx.send(Msg::Event(Box::new(e)));
    }

    /// Persists an account row (in order with the events).
    pub(crate) fn account(&self, result: &pb::AccountResult) {
        let row = AccountRow {
            index: result.index,
            account_id: result.account_id.clone(),
            outcome: result.outcome,
            result: result.encode_to_vec(),
        };
        let _ = self.tx.send(Msg::Account(row));
    }

    /// Waits until everything emitted so far is persisted and published.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn write(
    operation: String,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    journal: Arc<dyn Journal>,
    live: broadcast::Sender<Arc<pb::OperationEvent>>,
    stats: Arc<CallStats>,
    base_calls: BTreeMap<String, u64>,
    base_throttled: u64,
) {
    const BATCH: usize = 512;
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut rows = Vec::new();
        let mut events = Vec::new();
        let mut flushes = Vec::new();
        for m in msgs {
            match m {
                Msg::Event(e) => events.push(*e),
                Msg::Account(r) => rows.push(r),
                Msg::Flush(f) => flushes.push(f),
            }
        }
        // Keep only the latest row per account in this batch.
        let mut latest: BTreeMap<u32, AccountRow> = BTreeMap::new();
        for r in rows {
            latest.insert(r.index, r);
        }
        if !latest.is_empty()
            && let Err(e) = journal.put_accounts(&operation, latest.into_values().collect()).await
        {
            tracing::error!(operation, error = %e, "cannot persist account results");
        }
        if !events.is_empty() {
            let rows = events.iter().map(|e| EventRow { sequence: e.sequence, payload: e.encode_to_vec() }).collect();
            if let Err(e) = journal.append_events(&operation, rows).await {
                tracing::error!(operation, error = %e, "cannot persist events");
            }
            let mut calls = base_calls.clone();
            for (k, v) in stats.snapshot() {
                *calls.entry(k).or_default() += v;
            }
            // The last *persisted* event: after a crash, numbering resumes right after it, without a gap.
            let last = events.iter().map(|e| e.sequence).max().unwrap_or(0);
            if let Err(e) =
                journal.set_operation_stats(&operation, &calls, base_throttled + stats.throttled(), last).await
            {
                tracing::error!(operation, error = %e, "cannot persist operation stats");
            }
            for e in events {
                let _ = live.send(Arc::new(e));
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}
