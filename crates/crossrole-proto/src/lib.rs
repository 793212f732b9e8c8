//! The crossrole v1 gRPC API: prost messages and tonic clients and servers.
//!
//! Everything under [`v1`] is generated from `proto/crossrole/v1/` by `cargo xtask codegen` and checked in; the
//! `.proto` files are the source of truth and their comments are these docs. A test fails when the checked-in code
//! drifts from `proto/`.
//!
//! This crate owns only the wire types. Validation and the domain model live in `crossrole-core`.

pub mod codec;
#[cfg(any(test, feature = "codegen"))]
pub mod codegen;

/// The `crossrole.v1` package: messages, enums, service clients and servers.
#[allow(missing_docs, unreachable_pub, rust_2018_idioms, clippy::all, clippy::pedantic, clippy::unwrap_used)]
pub mod v1 {
    include!("generated/crossrole.v1.rs");
}

/// The encoded `FileDescriptorSet` of the API (with its imports), for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("generated/descriptor_set.bin");

pub use prost_types;
