//! The runtime: the loops a crossroled runs besides answering requests, in one place (the idea of kube-rs's
//! `runtime`: the binary builds it and serves the API; the loops live here).
//!
//! Each loop is a small type with its own tick ([`Loop`]): the bindings' schedule ([`schedule`]), the
//! Organizations events reader ([`org_events`]), retention ([`retention`]) — the work only one replica may do,
//! started under one leadership guard, once the coordination says this replica leads — and, on a journal shared
//! by several replicas, the claims of what dead replicas left ([`replicas`]), which every replica runs.
//! [`Runtime::stop`] stops every loop between two ticks and lets each shut down.

pub mod org_events;
mod replicas;
mod retention;
mod schedule;

use std::{sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{Engine, Retention, bindings::Bindings};

pub use org_events::{EventCounters, ORGANIZATIONS_EVENTS};

/// What the runtime runs, and how often.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The bindings' schedule looks for due bindings this often (and at once after a change).
    pub reconcile_tick: Duration,
    /// How long finished operations and audit entries stay.
    pub retention: Retention,
    /// The Organizations events queue, if one is configured.
    pub organization_events: Option<QueueConfig>,
    /// On a shared journal, how often a replica looks for work dead replicas left and cancels asked elsewhere.
    pub share_every: Duration,
}

/// The Organizations events queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Its URL.
    pub queue_url: String,
    /// How long one receive waits for a message (long polling, at most 20 s).
    pub wait: Duration,
}

/// A long-running loop: a round of work, then a wait.
#[async_trait::async_trait]
pub(crate) trait Loop: Send + 'static {
    /// Its name, for logs.
    fn name(&self) -> &'static str;
    /// One round; returns how long to wait before the next.
    async fn tick(&mut self) -> Duration;
    /// Woken early by this, if anything (a change that makes work due).
    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
    /// What to do when the runtime stops, after the last tick.
    async fn shutdown(&mut self) {}
}

/// The running loops.
pub struct Runtime {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    leading: watch::Receiver<bool>,
    events: Arc<EventCounters>,
}

impl Runtime {
    /// Starts the loops of `engine` (with its `bindings`): the claims at once on a shared journal; the loops only
    /// one replica runs once this one leads.
    pub fn start(engine: Engine, bindings: Bindings, config: RuntimeConfig) -> Runtime {
        let stop = CancellationToken::new();
        let (leads, leading) = watch::channel(false);
        let events = Arc::new(EventCounters::default());
        let mut tasks = Vec::new();
        if engine.coordination().shares_work() {
            let claims = replicas::Claims::new(engine.clone(), config.share_every);
            tasks.push(("replicas", tokio::spawn(run(claims, stop.clone()))));
        }
        let mut once: Vec<Box<dyn FnOnce(CancellationToken) -> JoinHandle<()> + Send>> = Vec::new();
        let schedule = schedule::Schedule::new(bindings.clone(), config.reconcile_tick);
        once.push(Box::new(move |stop| tokio::spawn(run(schedule, stop))));
        if let Some(period) = config.retention.period() {
            let keep = retention::Keep::new(engine.clone(), config.retention, period);
            once.push(Box::new(move |stop| tokio::spawn(run(keep, stop))));
        }
        if let Some(queue) = &config.organization_events {
            let reader = org_events::Reader::new(engine.clone(), bindings, queue, events.clone());
            once.push(Box::new(move |stop| tokio::spawn(run(reader, stop))));
        }
        // The leadership guard: the loops only one replica may run start when the coordination says this one leads.
        let guard = {
            let (engine, stop) = (engine.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = engine.coordination().leader() => {}
                }
                tracing::info!("this replica runs the bindings' schedule, the events reader and retention");
                let _ = leads.send(true);
                let handles: Vec<JoinHandle<()>> = once.into_iter().map(|start| start(stop.clone())).collect();
                for h in handles {
                    let _ = h.await;
                }
            })
        };
        tasks.push(("leader", guard));
        Runtime { stop, tasks, leading, events }
    }

    /// Whether this replica runs the loops only one may run (it does once the coordination says it leads).
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// What the Organizations events reader saw.
    pub fn event_counters(&self) -> Arc<EventCounters> {
        self.events.clone()
    }

    /// Stops every loop (each between two ticks, then its shutdown) and waits for them.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for (name, task) in std::mem::take(&mut self.tasks) {
            if let Err(e) = task.await {
                tracing::warn!(r#loop = name, error = %e, "a loop did not stop cleanly");
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Runs `l` until `stop`: a tick, then its wait (cut short by its wake), again. A tick in flight when the
/// runtime stops is dropped: every loop's round is safe to cut (what it did is kept, what it did not is done by the
/// next crossroled).
async fn run(mut l: impl Loop, stop: CancellationToken) {
    let wake = l.wake();
    loop {
        let wait = tokio::select! {
            _ = stop.cancelled() => break,
            wait = l.tick() => wait,
        };
        let woken = async {
            match &wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = woken => {}
        }
    }
    tracing::debug!(r#loop = l.name(), "stopping");
    l.shutdown().await;
}
