//! crossrole rollouts: fan-out over accounts with bounded concurrency, failure tolerance, rate limits, retries,
//! cancellation and per-account events.
