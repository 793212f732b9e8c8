//! The engine's clock for what happens at a time of day: the ends of access that expires (`crate::expiries`,
//! `Bindings`). The system's clock in crossroled; a clock the test moves by hand in tests, so that an end comes
//! when the test says and not before (a paused tokio clock moves `Instant`s, not the time of day).

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use crossrole_core::ops::Millis;

/// The time of day, in milliseconds since the Unix epoch.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that shows `at` until it is moved ([`Clock::set`], [`Clock::advance`]).
    pub fn manual(at: Millis) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(at))))
    }

    /// Now.
    pub fn now(&self) -> Millis {
        match &self.0 {
            None => crate::now_ms(),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock to `at` (the system's clock is not moved).
    pub fn set(&self, at: Millis) {
        if let Some(t) = &self.0 {
            t.store(at, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock on by `ms`.
    pub fn advance(&self, ms: Millis) {
        if let Some(t) = &self.0 {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::system"),
            Some(t) => write!(f, "Clock::manual({})", t.load(Ordering::SeqCst)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_moved_and_its_clones_see_it() {
        let c = Clock::manual(1_000);
        let seen = c.clone();
        assert_eq!(seen.now(), 1_000);
        c.advance(500);
        assert_eq!(seen.now(), 1_500);
        c.set(10);
        assert_eq!(seen.now(), 10);
        assert!(Clock::system().now() > 1_700_000_000_000);
    }
}
