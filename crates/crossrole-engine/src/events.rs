//! An operation's event stream: numbered in persist order, persisted, then published live.
//!
//! The rollout hands events and account rows to one writer task over a channel and does not wait for it (except
//! on [`EventSink::flush`]). The writer alone numbers events, in the order it receives them, so sequence numbers
//! are the persist order by construction: a watcher catching up from the journal never finds event 6 stored before
//! event 5. Each batch — account rows, events, the operation's counters — is one journal transaction; only events
//! that are persisted are published on the broadcast channel. So the journal holds every event a watcher has seen
//! live, a watcher that falls behind catches up from the journal, and no watcher can slow the rollout.
//!
//! When the journal refuses a batch, the writer retries it with backoff and publishes nothing meanwhile; the
//! rollout sees [`EventSink::healthy`] turn false and starts no new account until the journal takes writes again.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crossrole_aws::calls::CallStats;
use crossrole_core::ops::{AccountResult, Counts, Event, Millis, OperationEvent, OperationState};
use crossrole_store::{AccountRow, Batch, EventRow, Journal, OperationEnd, OperationStats};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::records;

enum Msg {
    Event(Box<(String, Event, Millis)>),
    /// The last event, with the operation's final state: persisted in one transaction.
    End(Box<(OperationState, String, Counts, Millis)>),
    Account(AccountRow),
    Flush(oneshot::Sender<()>),
}

/// Emits an operation's events.
#[derive(Clone)]
pub(crate) struct EventSink {
    tx: mpsc::UnboundedSender<Msg>,
    healthy: Arc<AtomicBool>,
}

/// What the writer needs.
pub(crate) struct Writer {
    pub(crate) operation: String,
    pub(crate) last_sequence: u64,
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) live: broadcast::Sender<Arc<OperationEvent>>,
    pub(crate) stats: Arc<CallStats>,
    pub(crate) base_calls: BTreeMap<String, u64>,
    pub(crate) base_throttled: u64,
    /// Where journal write times are kept.
    pub(crate) metrics: Arc<std::sync::Mutex<crate::Metrics>>,
}

impl EventSink {
    /// A sink continuing after `writer.last_sequence`, with its writer task.
    pub(crate) fn start(writer: Writer) -> (EventSink, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(write(writer, rx, healthy.clone()));
        (EventSink { tx, healthy }, task)
    }

    /// Emits an event about `account` (empty for the operation). Its sequence number is given when it is persisted.
    pub(crate) fn emit(&self, account: &str, event: Event) {
        let _ = self.tx.send(Msg::Event(Box::new((account.to_string(), event, crate::now_ms()))));
    }

    /// Ends the operation: its final state and the event that says so are persisted together, so whoever sees the
    /// event sees the state.
    pub(crate) fn finish(&self, state: OperationState, message: &str, counts: Counts) {
        let _ = self.tx.send(Msg::End(Box::new((state, message.to_string(), counts, crate::now_ms()))));
    }

    /// Persists an account row (in order with the events).
    pub(crate) fn account(&self, result: &AccountResult) {
        let row = records::account_row(result);
        let _ = self.tx.send(Msg::Account(row));
    }

    /// Persists an inventory's account row with the roles read there (in order with the events).
    pub(crate) fn inventory_account(&self, result: &AccountResult, roles: &[crossrole_core::inventory::InventoryRole]) {
        let _ = self.tx.send(Msg::Account(records::inventory_account_row(result, roles)));
    }

    /// Waits until everything emitted so far is persisted and published.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// False while the journal refuses writes.
    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

async fn write(w: Writer, mut rx: mpsc::UnboundedReceiver<Msg>, healthy: Arc<AtomicBool>) {
    const BATCH: usize = 512;
    let mut next = w.last_sequence + 1;
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut latest: BTreeMap<u32, AccountRow> = BTreeMap::new();
        let mut events = Vec::new();
        let mut flushes = Vec::new();
        let mut end = None;
        for m in msgs {
            match m {
                Msg::Event(e) => {
                    let (account_id, event, time) = *e;
                    events.push(OperationEvent { sequence: next, time, account_id, event });
                    next += 1;
                }
                Msg::End(e) => {
                    let (state, message, counts, time) = *e;
                    let event = Event::StateChanged { state, message: message.clone(), counts: Some(counts) };
                    events.push(OperationEvent { sequence: next, time, account_id: String::new(), event });
                    next += 1;
                    end = Some(OperationEnd { state: records::stored_state(state), message, end_time: time });
                }
                // Keep only the latest row per account in this batch.
                Msg::Account(r) => {
                    latest.insert(r.index, r);
                }
                Msg::Flush(f) => flushes.push(f),
            }
        }
        let stats = (!events.is_empty()).then(|| {
            let mut aws_calls = w.base_calls.clone();
            for (k, v) in w.stats.snapshot() {
                *aws_calls.entry(k).or_default() += v;
            }
            OperationStats { aws_calls, throttled: w.base_throttled + w.stats.throttled() }
        });
        let batch = Batch {
            rows: latest.into_values().collect(),
            events: events.iter().map(|e| EventRow { sequence: e.sequence, payload: records::encode(e) }).collect(),
            stats,
            end,
        };
        if !batch.rows.is_empty() || !batch.events.is_empty() {
            persist(&w, batch, &healthy).await;
        }
        for e in events {
            let _ = w.live.send(Arc::new(e));
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
}

/// Persists `batch`, retrying with backoff until the journal takes it.
async fn persist(w: &Writer, batch: Batch, healthy: &AtomicBool) {
    let mut backoff = crate::backoff::Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    loop {
        let began = std::time::Instant::now();
        match w.journal.persist(&w.operation, batch.clone()).await {
            Ok(()) => {
                healthy.store(true, Ordering::Relaxed);
                if let Ok(mut m) = w.metrics.lock() {
                    m.journal_write(began.elapsed().as_secs_f64());
                }
                return;
            }
            Err(e) => {
                if healthy.swap(false, Ordering::Relaxed) {
                    tracing::error!(
                        operation = w.operation,
                        error = %e,
                        "the journal refuses writes: no new account starts and no event is published until it \
                         takes them again"
                    );
                }
                backoff.wait().await;
            }
        }
    }
}
