//! The fence on AWS writes: no write leaves a process whose lease on the journal may have lapsed.
//!
//! A crossroled that shares its journal's work (or a PostgreSQL journal's one writer, which a standby can take
//! over) may run its operations only while no other crossroled may: while its lease holds. The journal refuses its
//! writes once the lease has lapsed, but AWS does not know about leases: a replica whose database link was cut, or
//! that was paused, would otherwise go on retrying `CreateRole` and undo the work of the replica that took over.
//!
//! So the coordination keeps a deadline on this process's monotonic clock, moved forward only by a renewal the
//! database confirmed (the time the renewal was *sent*, plus a fraction of the lease), and the call layer checks
//! it before every write attempt — the first try and each retry — and again every time the attempt's future is
//! polled, so an attempt waiting for a connection when the deadline passes is abandoned before its request
//! leaves. A write attempt also has a time limit of its own: whatever was sent before the deadline has reached
//! AWS, or been given up, well before another crossroled may start. The inequality that makes this safe, with its
//! margins, is the coordination's (`crossrole_store::LeaseDeadline`).
//!
//! Reads are never fenced: they change nothing.

use std::{future::Future, pin::pin, task::Poll, time::Duration};

use tokio::{sync::watch, time::Instant};

use crate::error::{AwsError, ErrorKind};

/// When this process must stop writing to AWS. [`Fence::open`] never closes (one crossroled holding its data
/// directory: nothing can take its work while it runs).
#[derive(Clone, Debug, Default)]
pub struct Fence {
    lease: Option<Lease>,
}

#[derive(Clone, Debug)]
struct Lease {
    /// No write attempt starts, or goes on, at or after this instant.
    until: watch::Receiver<Instant>,
    /// A write attempt still unanswered this long after it started is given up (as a transient failure).
    attempt: Duration,
}

impl Fence {
    /// A fence that never closes.
    pub fn open() -> Fence {
        Fence::default()
    }

    /// A fence that closes at the instant `until` holds (moved forward by each confirmed renewal), whose write
    /// attempts are given up after `attempt`.
    pub fn lease(until: watch::Receiver<Instant>, attempt: Duration) -> Fence {
        Fence { lease: Some(Lease { until, attempt }) }
    }

    /// The instant writes stop, if they ever do.
    pub fn deadline(&self) -> Option<Instant> {
        self.lease.as_ref().map(|l| *l.until.borrow())
    }

    /// Whether the deadline has passed.
    pub fn lapsed_now(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Refuses a write of `call` (`service:Operation`) once the deadline has passed.
    pub fn check(&self, call: &str) -> Result<(), AwsError> {
        if self.lapsed_now() {
            return Err(AwsError {
                call: call.to_string(),
                code: None,
                message: "not sent: this crossroled's lease on the journal may have lapsed, so another may run its \
                          work now; it writes nothing more to AWS"
                    .into(),
                kind: ErrorKind::Fenced,
            });
        }
        Ok(())
    }

    /// Resolves once the deadline has passed (never for an open fence). A deadline that moves forward while this
    /// waits is waited for anew.
    pub async fn lapsed(&self) {
        let Some(lease) = &self.lease else { return std::future::pending().await };
        let mut until = lease.until.clone();
        loop {
            let deadline = *until.borrow_and_update();
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                // The renewals ended: the deadline stands where it is.
                changed = until.changed() => if changed.is_err() {
                    let last = *until.borrow();
                    tokio::time::sleep_until(last).await;
                    return;
                },
            }
        }
    }

    /// Runs one write attempt of `call`: refused at the deadline, also part-way (its future is not polled again,
    /// so a request still waiting for a connection never leaves), and given up after the attempt's limit.
    pub(crate) async fn attempt<T>(
        &self,
        call: &str,
        attempt: impl Future<Output = Result<T, AwsError>>,
    ) -> Result<T, AwsError> {
        let Some(lease) = &self.lease else { return attempt.await };
        self.check(call)?;
        let give_up = Instant::now() + lease.attempt;
        let mut attempt = pin!(attempt);
        loop {
            let wake = give_up.min(*lease.until.borrow());
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(wake) => {
                    self.check(call)?;
                    if Instant::now() >= give_up {
                        return Err(AwsError::transport(
                            call,
                            format!("no answer within {:?}, the limit of a write attempt", lease.attempt),
                        ));
                    }
                }
                polled = std::future::poll_fn(|cx| match self.check(call) {
                    Err(e) => Poll::Ready(Err(e)),
                    Ok(()) => attempt.as_mut().poll(cx),
                }) => return polled,
            }
        }
    }
}

/// Whether `operation` (an AWS API name, `CreateRole`) may change anything in AWS: everything but reads and
/// taking a session. Writes are fenced; reads never are.
pub fn is_write(operation: &str) -> bool {
    const READS: [&str; 5] = ["Get", "List", "Describe", "Receive", "Simulate"];
    !(READS.iter().any(|r| operation.starts_with(r)) || operation == "AssumeRole")
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[test]
    fn reads_and_sessions_are_not_writes() {
        for read in ["GetRole", "ListRoleTags", "DescribeAccount", "ReceiveMessage", "AssumeRole", "GetCallerIdentity"]
        {
            assert!(!is_write(read), "{read}");
        }
        for write in ["CreateRole", "TagRole", "PutRolePermissionsBoundary", "DeleteRole", "DeleteMessage"] {
            assert!(is_write(write), "{write}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_fence_never_closes() {
        let fence = Fence::open();
        assert!(fence.check("iam:CreateRole").is_ok());
        assert!(tokio::time::timeout(Duration::from_secs(3600), fence.lapsed()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn writes_stop_at_the_deadline_and_a_renewal_moves_it() {
        let (renew, until) = watch::channel(Instant::now() + Duration::from_secs(9));
        let fence = Fence::lease(until, Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(fence.check("iam:CreateRole").is_ok());
        renew.send(Instant::now() + Duration::from_secs(9)).unwrap();
        tokio::time::advance(Duration::from_secs(8)).await;
        assert!(fence.check("iam:CreateRole").is_ok(), "a confirmed renewal moved the deadline");
        let lapsed = tokio::spawn({
            let fence = fence.clone();
            async move { fence.lapsed().await }
        });
        tokio::time::advance(Duration::from_secs(1)).await;
        let refused = fence.check("iam:CreateRole").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Fenced);
        assert!(!refused.kind.is_retryable());
        lapsed.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_still_waiting_at_the_deadline_is_never_carried_out() {
        let (_renew, until) = watch::channel(Instant::now() + Duration::from_secs(2));
        let fence = Fence::lease(until, Duration::from_secs(5));
        let sent = Arc::new(AtomicU32::new(0));
        // The request would leave after 3 s (a slow connection): the deadline comes first.
        let attempt = {
            let sent = sent.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                sent.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let r = fence.attempt("iam:CreateRole", attempt).await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Fenced);
        assert_eq!(sent.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_attempt_unanswered_past_its_limit_is_given_up_as_transient() {
        let (renew, until) = watch::channel(Instant::now() + Duration::from_secs(9));
        let fence = Fence::lease(until, Duration::from_secs(5));
        let keep_renewing = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let _ = renew.send(Instant::now() + Duration::from_secs(9));
            }
        });
        let started = Instant::now();
        let r: Result<(), _> = fence.attempt("iam:CreateRole", std::future::pending()).await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Transient);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        keep_renewing.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_process_paused_past_its_deadline_sends_nothing_when_it_resumes() {
        let (_renew, until) = watch::channel(Instant::now() + Duration::from_secs(9));
        let fence = Fence::lease(until, Duration::from_secs(5));
        // Time jumps, as it does for a process stopped with SIGSTOP and continued: the first poll is refused.
        tokio::time::advance(Duration::from_secs(25)).await;
        let r = fence.attempt("iam:CreateRole", async { Ok(()) }).await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Fenced);
    }
}
