//! How many accounts at once: the spec's limit when it sets one, else as many as AWS's quotas keep busy.
//!
//! By Little's law, the accounts in flight equal the throughput times the time each takes. The throughput AWS allows
//! a rollout is bounded by the one quota every account shares: crossroled's own STS bucket, one AssumeRole per
//! account (IAM's quotas are each account's own, so they bound the time an account takes, not the throughput). So
//! the automatic concurrency is `sts_rate × time per account`, with a margin for the spread of account times; it
//! starts from an estimate and follows the measured time per account (a moving average) as accounts finish, never
//! above crossroled's own ceiling (`max_concurrency` in its configuration, which bounds memory) nor below a floor.

use std::time::Duration;

use crossrole_aws::calls::Rates;
use crossrole_core::spec::Limit;

/// Fewest accounts at once when automatic.
const FLOOR: usize = 4;
/// Time per account assumed until one is measured.
const FIRST_ESTIMATE: Duration = Duration::from_secs(1);
/// Margin over Little's law, for the spread of account times.
const MARGIN: f64 = 1.25;
/// Weight of the newest account time in the moving average.
const ALPHA: f64 = 0.1;

/// The concurrency of one operation.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    limit: Option<Limit>,
    fixed: Option<usize>,
    ceiling: usize,
    /// Accounts per second the shared quota allows; infinite when unlimited.
    throughput: f64,
    /// Moving average of the time an account takes, seconds.
    per_account: f64,
}

impl Pace {
    /// The pace for `targets` accounts under `limit` (the spec's), `ceiling` (crossroled's) and `rates`.
    pub(crate) fn new(limit: Option<Limit>, targets: usize, ceiling: usize, rates: Rates) -> Pace {
        let sts = rates.sts.per_second;
        Pace {
            limit,
            fixed: limit.map(|l| l.concurrency(targets)),
            ceiling: ceiling.max(1),
            throughput: if sts > 0.0 { sts } else { f64::INFINITY },
            per_account: FIRST_ESTIMATE.as_secs_f64(),
        }
    }

    /// Accounts at once now.
    pub(crate) fn concurrency(&self) -> usize {
        let wanted = match self.fixed {
            Some(n) => n,
            None if self.throughput.is_infinite() => self.ceiling,
            None => ((self.throughput * self.per_account * MARGIN).ceil() as usize).max(FLOOR),
        };
        wanted.clamp(1, self.ceiling)
    }

    /// The operation knows `targets` accounts now (they are found as the organization is read): a limit that is a
    /// percentage follows; the concurrency that follows.
    pub(crate) fn targets(&mut self, targets: usize) -> usize {
        self.fixed = self.limit.map(|l| l.concurrency(targets));
        self.concurrency()
    }

    /// An account took `took`: the concurrency that follows.
    pub(crate) fn observe(&mut self, took: Duration) -> usize {
        self.per_account = (1.0 - ALPHA) * self.per_account + ALPHA * took.as_secs_f64();
        self.concurrency()
    }
}

#[cfg(test)]
mod tests {
    use crossrole_aws::calls::Rate;

    use super::*;

    fn rates(sts: f64) -> Rates {
        Rates { sts: Rate { per_second: sts, burst: 1 }, ..Rates::UNLIMITED }
    }

    #[test]
    fn a_limit_in_the_spec_is_kept_under_crossroleds_ceiling() {
        assert_eq!(Pace::new(Some(Limit::Count(7)), 100, 256, rates(100.0)).concurrency(), 7);
        assert_eq!(Pace::new(Some(Limit::Percent(50)), 100, 20, rates(100.0)).concurrency(), 20);
        let mut p = Pace::new(Some(Limit::Count(7)), 100, 256, rates(100.0));
        assert_eq!(p.observe(Duration::from_secs(30)), 7, "a fixed limit does not follow the account times");
        let mut p = Pace::new(Some(Limit::Percent(10)), 20, 256, rates(100.0));
        assert_eq!(p.concurrency(), 2);
        assert_eq!(p.targets(500), 50, "a percentage follows the targets found");
    }

    #[test]
    fn automatic_follows_littles_law() {
        // 100 AssumeRole/s and 1 s per account: 125 at once (with the margin).
        let mut p = Pace::new(None, 10_000, 1024, rates(100.0));
        assert_eq!(p.concurrency(), 125);
        // Accounts take 2 s: it climbs toward 250.
        for _ in 0..100 {
            p.observe(Duration::from_secs(2));
        }
        assert_eq!(p.concurrency(), 250);
        // Never above crossroled's ceiling, never under the floor.
        assert_eq!(Pace::new(None, 10_000, 64, rates(100.0)).concurrency(), 64);
        let mut slow_quota = Pace::new(None, 10, 256, rates(0.5));
        assert_eq!(slow_quota.observe(Duration::from_millis(100)), FLOOR);
        assert_eq!(Pace::new(None, 10, 300, Rates::UNLIMITED).concurrency(), 300);
    }
}
