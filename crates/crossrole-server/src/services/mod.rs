//! The v1 services.

pub mod access;
pub mod audit;
pub mod binding;
mod exports;
pub mod inventory;
pub mod operation;
pub mod organization;
