//! crossrole's AWS side: Organizations discovery, STS credentials, IAM reconcile, the trusted side and verify.
//!
//! Everything AWS sits behind narrow traits that speak crossrole-core's types; the real implementations wrap the AWS
//! SDK for Rust, and in-memory fakes serve unit tests and benchmarks.
