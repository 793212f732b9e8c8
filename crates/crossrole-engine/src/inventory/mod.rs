//! The inventory: every role of every ACTIVE account of the organization (or of the accounts asked for), read
//! through the bootstrap role and classified by core's classifier — who can enter, under which conditions, whether
//! crossrole owns it, its findings. It writes nothing to AWS.
//!
//! An inventory is an operation like an apply: written to the journal before it starts, run in the background,
//! cancellable, its progress in events, resumed after a restart, on the organization-wide skeleton
//! ([`crate::sweep`]). Its accounts are put on record (a row each, `pending`) as the organization's pages list
//! them; each is assumed into at once and read once the organization is read to its end (a trusted account is
//! judged inside or outside it), so a resumed run reads only the accounts without a final row. Each account costs one `AssumeRole` and one `GetAccountAuthorizationDetails` per thousand roles; its roles
//! are classified and written with its row when it is done ([`records::inventory_account_row`]), so nothing holds
//! the whole organization's roles. An account that cannot be read (no bootstrap role, a denial) fails alone, with
//! why; the inventory still succeeds, saying how many could not be read. [`listing`] serves the roles back.

mod expected;
mod former;
mod import;
mod listing;
mod run;

pub use import::ImportedRoles;
pub use listing::{InventoryPage, InventoryQuery};
pub(crate) use run::run;

use std::collections::BTreeSet;

use crossrole_core::{
    ops::{Operation, OperationKind, OperationState},
    spec::RawSpec,
};
use crossrole_store::NewOperation;

use crate::{Engine, Error, records};

/// The spec name an inventory is journaled under. No spec can have it (a spec's name is lowercase letters,
/// digits and dashes), so listing operations by it finds inventories and nothing else.
pub const INVENTORY_SPEC_NAME: &str = "(inventory)";

/// The most days an inventory may be asked to wait before it reports a role unused: ten years.
pub const MAX_UNUSED_AFTER_DAYS: u32 = 3650;

/// A request to start an inventory.
#[derive(Debug, Clone, Default)]
pub struct InventoryRequest {
    /// The only accounts to read (`None`: every ACTIVE account of the organization). An account asked for that is
    /// not an ACTIVE member is skipped, with why.
    pub accounts: Option<BTreeSet<String>>,
    /// Days without use after which a role is reported unused (`None`: the default,
    /// [`crossrole_core::inventory::DEFAULT_UNUSED_AFTER_DAYS`]); from 1 to [`MAX_UNUSED_AFTER_DAYS`].
    pub unused_after_days: Option<u32>,
    /// Client idempotency key.
    pub idempotency_key: Option<String>,
    /// Name of the caller's token.
    pub created_by: String,
}

impl Engine {
    /// Starts an inventory (or returns the one its idempotency key already started). It runs in the background;
    /// watch it as any operation.
    pub async fn start_inventory(&self, request: InventoryRequest) -> Result<Operation, Error> {
        if let Some(accounts) = &request.accounts {
            if accounts.is_empty() {
                return Err(Error::Invalid(crossrole_core::Error::invalid(
                    "account_ids",
                    "give at least one account, or none for the whole organization",
                )));
            }
            if let Some(bad) = accounts.iter().find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit())) {
                return Err(Error::Invalid(crossrole_core::Error::invalid(
                    "account_ids",
                    format!("{bad:?} is not an account id (12 digits)"),
                )));
            }
        }
        if let Some(days) = request.unused_after_days
            && !(1..=MAX_UNUSED_AFTER_DAYS).contains(&days)
        {
            return Err(Error::Invalid(crossrole_core::Error::invalid(
                "unused_after_days",
                format!("must be from 1 to {MAX_UNUSED_AFTER_DAYS} days (0 or unset: the default, 90), got {days}"),
            )));
        }
        // The default asked for is the default: one record, one fingerprint.
        let unused_after_days =
            request.unused_after_days.filter(|d| *d != crossrole_core::inventory::DEFAULT_UNUSED_AFTER_DAYS);
        let kind = records::stored_kind(OperationKind::Inventory);
        let raw = RawSpec { name: INVENTORY_SPEC_NAME.into(), ..RawSpec::default() };
        let mut fingerprint = vec![kind.code() as u8];
        for a in request.accounts.iter().flatten() {
            fingerprint.extend_from_slice(a.as_bytes());
            fingerprint.push(0);
        }
        if let Some(days) = unused_after_days {
            fingerprint.extend_from_slice(format!("unused:{days}").as_bytes());
        }
        let (row, created) = self
            .inner
            .journal
            .create_operation(NewOperation {
                id: uuid::Uuid::now_v7().to_string(),
                kind,
                spec_name: INVENTORY_SPEC_NAME.into(),
                spec: records::encode_inventory(&raw, request.accounts.as_ref(), unused_after_days),
                idempotency_key: request.idempotency_key.clone(),
                request_fingerprint: self.inner.redactor.digest(&fingerprint),
                binding_name: None,
                created_by: request.created_by.clone(),
                create_time: crate::now_ms(),
                state: records::stored_state(OperationState::Pending),
                dry_run: false,
            })
            .await
            .map_err(|e| match e {
                crossrole_store::StoreError::IdempotencyConflict(k) => {
                    Error::FailedPrecondition(format!("idempotency key {k:?} was already used for a different request"))
                }
                other => other.into(),
            })?;
        if created {
            self.spawn(row.clone(), crate::Work::Inventory);
        }
        self.operation(&row.id).await
    }
}
