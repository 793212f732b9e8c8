//! The v1 services.

pub mod access;
pub mod binding;
pub mod operation;
pub mod organization;
