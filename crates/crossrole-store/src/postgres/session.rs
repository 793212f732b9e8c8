//! The session a crossroled holds its place on: the one writer's lock, or a replica's lease. It is a connection
//! of its own (a busy pool cannot starve it), renewed every heartbeat, and with it the deadline this process may
//! write until ([`LeaseTimes`]): moved forward only by a renewal the database confirmed, counted from when the
//! renewal was sent. A renewal that has not come back by the deadline is given up, and the process stops writing
//! (the journal, and AWS through the call layer's fence) with the reason, once.
//!
//! The database drops what a dead session held (the writer lock, the scheduler lock) only when it sees the
//! session end: the session asks the server for TCP keep-alives every heartbeat, so a link that was cut is noticed
//! within seconds, not the operating system's two hours.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{sync::watch, time::Instant};

use crate::{LeaseDeadline, LeaseTimes, StoreError};

/// What a renewal found.
pub(super) enum Renewal {
    /// The database confirmed it.
    Confirmed,
    /// The place is gone (the lease lapsed before the renewal reached the database): why.
    Lost(String),
}

/// The session: its connection, and this process's place.
pub(super) struct Session {
    pub(super) client: Arc<tokio_postgres::Client>,
    pub(super) place: Place,
}

/// Whether, and until when, this process may write. Cloned into whoever must know (the journal, the connection's
/// watcher, the renewals); it never holds the connection, so dropping the session ends it.
#[derive(Clone)]
pub(super) struct Place {
    /// Whether this process may still write the journal.
    pub(super) writer: Arc<AtomicBool>,
    /// Told when it may no longer.
    pub(super) lost: watch::Receiver<bool>,
    lost_tx: Arc<watch::Sender<bool>>,
    /// Why it may no longer, once it may not.
    pub(super) why: Arc<Mutex<Option<String>>>,
    deadline: Arc<watch::Sender<Instant>>,
    /// Whether a renewal was ever confirmed: until then the deadline (the session's opening) is no lapse.
    opened: Arc<AtomicBool>,
    pub(super) times: LeaseTimes,
}

impl Session {
    /// Connects the session, asks for keep-alives, and watches the connection: when it ends, writing stops.
    pub(super) async fn open(
        config: &tokio_postgres::Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
        name: Arc<str>,
        times: LeaseTimes,
    ) -> Result<Session, StoreError> {
        let (client, connection) =
            config.connect(tls).await.map_err(|e| StoreError::Io(format!("cannot reach the journal {name}: {e}")))?;
        let place = Place::new(times);
        {
            let (place, name) = (place.clone(), name.clone());
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::error!(journal = %name, error = %e, "lost the connection this crossroled holds its place on");
                }
                place.stop(format!("the connection it holds its place in the journal {name} on ended"));
            });
        }
        let client = Arc::new(client);
        let idle = times.heartbeat().as_secs().max(1);
        client
            .batch_execute(&format!(
                "SET tcp_keepalives_idle = {idle}; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 3"
            ))
            .await?;
        Ok(Session { client, place })
    }
}

impl Place {
    /// Stops writing, with why (the first reason is kept).
    pub(super) fn stop(&self, reason: String) {
        if self.writer.swap(false, Ordering::SeqCst) {
            tracing::error!(%reason, "this crossroled stops writing: the journal and AWS");
        }
        if let Ok(mut w) = self.why.lock() {
            w.get_or_insert(reason);
        }
        // Nothing more leaves, though the deadline may be later.
        self.deadline.send_replace(Instant::now());
        let _ = self.lost_tx.send(true);
    }

    /// A place not yet confirmed: nothing may be written until the first renewal is.
    fn new(times: LeaseTimes) -> Place {
        let (lost_tx, lost) = watch::channel(false);
        let (deadline, _) = watch::channel(Instant::now());
        Place {
            writer: Arc::new(AtomicBool::new(true)),
            lost,
            lost_tx: Arc::new(lost_tx),
            why: Arc::default(),
            deadline: Arc::new(deadline),
            opened: Arc::new(AtomicBool::new(false)),
            times,
        }
    }

    /// Why it stopped writing, if it has.
    pub(super) fn why(&self) -> Option<String> {
        self.why.lock().ok().and_then(|w| w.clone())
    }

    /// Whether it may write now: not stopped, and before the deadline.
    pub(super) fn may_write(&self) -> bool {
        self.writer.load(Ordering::SeqCst) && Instant::now() < *self.deadline.borrow()
    }

    /// A renewal sent at `sent` was confirmed: writing may go on until the fence after it — unless the deadline has
    /// passed already. A deadline that passed stays passed: whoever saw the lapse stopped for good (the engine stops
    /// its operations), and another replica may be taking the work; a renewal answered just before the deadline but
    /// read just after it ends the place instead of reopening it. (The first confirmation opens the place.)
    pub(super) fn confirmed(&self, sent: Instant) {
        if !self.writer.load(Ordering::SeqCst) {
            return;
        }
        let first = !self.opened.swap(true, Ordering::SeqCst);
        self.deadline.send_if_modified(|d| {
            if !first && Instant::now() >= *d {
                return false;
            }
            let next = sent + self.times.fence();
            let later = next > *d;
            if later {
                *d = next;
            }
            later
        });
    }

    /// The deadline, for the call layer's fence.
    pub(super) fn fence(&self) -> LeaseDeadline {
        LeaseDeadline { until: self.deadline.subscribe(), write_attempt: self.times.write_attempt() }
    }

    /// Renews every heartbeat with `renew` until the place is lost or a renewal does not come back by the
    /// deadline. `also` runs after each confirmed renewal (a replica asks for the scheduler's lock), bounded by
    /// the deadline too.
    pub(super) async fn keep<R, RFut, A, AFut>(self, mut renew: R, mut also: A)
    where
        R: FnMut() -> RFut,
        RFut: Future<Output = Result<Renewal, StoreError>>,
        A: FnMut() -> AFut,
        AFut: Future<Output = ()>,
    {
        let mut last_confirmed = Instant::now();
        loop {
            tokio::time::sleep(self.times.heartbeat()).await;
            if !self.writer.load(Ordering::SeqCst) {
                return;
            }
            let deadline = *self.deadline.borrow();
            let sent = Instant::now();
            match tokio::time::timeout_at(deadline, renew()).await {
                Ok(Ok(Renewal::Confirmed)) => {
                    self.confirmed(sent);
                    last_confirmed = sent;
                }
                Ok(Ok(Renewal::Lost(why))) => return self.stop(why),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot renew this crossroled's place in the journal; trying again")
                }
                Err(_) => {}
            }
            if Instant::now() >= *self.deadline.borrow() {
                return self.stop(format!(
                    "no renewal was confirmed for {:.1}s (it may write for {:.1}s after one; the lease is {:.1}s): \
                     another crossroled may take its work soon",
                    last_confirmed.elapsed().as_secs_f64(),
                    self.times.fence().as_secs_f64(),
                    self.times.lease.as_secs_f64()
                ));
            }
            let deadline = *self.deadline.borrow();
            let _ = tokio::time::timeout_at(deadline, also()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_that_passed_stays_passed_whatever_renewal_is_confirmed_after_it() {
        let times = LeaseTimes::of(Duration::from_secs(10));
        let place = Place::new(times);
        // The first confirmation opens the place, however late it comes.
        tokio::time::sleep(Duration::from_secs(30)).await;
        place.confirmed(Instant::now());
        assert!(place.may_write());
        // A renewal sent before the deadline, its answer read only after it: the place does not reopen.
        let sent = Instant::now() + times.fence() - Duration::from_millis(100);
        tokio::time::sleep(times.fence()).await;
        assert!(!place.may_write(), "the deadline passed");
        place.confirmed(sent);
        assert!(!place.may_write(), "a lapsed place reopened");
    }

    #[tokio::test(start_paused = true)]
    async fn renewals_that_come_back_after_the_deadline_stop_the_place() {
        let times = LeaseTimes::of(Duration::from_secs(10));
        let place = Place::new(times);
        place.confirmed(Instant::now());
        // Each renewal is answered in full, but the first one past the deadline is read too late to count.
        let slow = times.fence() + Duration::from_millis(10);
        let renew = move || async move {
            tokio::time::sleep(slow).await;
            Ok(Renewal::Confirmed)
        };
        let keep = tokio::spawn(place.clone().keep(renew, || async {}));
        tokio::time::timeout(times.lease * 2, keep).await.expect("the place stops").unwrap();
        assert!(!place.may_write());
        assert!(*place.lost.borrow(), "writer_lost is told");
    }
}
