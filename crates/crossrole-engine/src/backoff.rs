//! The one backoff for the engine's waits on the journal and its own loops (AWS calls wait in
//! `crossrole_aws::calls`, and nowhere else): capped exponential, doubling from `base` up to `cap`, starting over
//! after a success. The sleeps use tokio's clock, so tests on a paused clock cost no time.

use std::time::Duration;

/// Capped exponential backoff.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `base`, doubles up to `cap`.
    pub(crate) fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap, next: base }
    }

    /// The wait before the next try, then the one after is longer (up to the cap).
    pub(crate) fn delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.cap);
        now
    }

    /// Waits the next delay.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.delay()).await;
    }

    /// A success: the next failure waits `base` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_starts_over_after_a_success() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let waits: Vec<u128> = (0..5).map(|_| b.delay().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.delay(), Duration::from_millis(100));
    }
}
