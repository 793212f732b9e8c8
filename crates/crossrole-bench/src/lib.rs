//! crossrole's benchmarks (run by `cargo xtask bench`).
//!
//! Part A ([`model`]): the engine against a model of AWS — the in-memory AWS with per-call latency and a token
//! bucket per service that answers `Throttling` over its rate, as AWS does — on tokio's paused clock, so the wall
//! time is virtual (what real AWS would take under the model) and deterministic, while CPU time and memory are real.
//! [`org_wide`]: the inventory and `crossrole revoke` in the same model, each against its own floor.
//! Part B (`e2e`, in main.rs): crossroled on the emulators against the AWS SDK at its best concurrency and boto3.

pub mod model;
pub mod org_wide;
pub mod proc;
