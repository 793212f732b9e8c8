//! Records crossroled cannot read — a damaged payload, a record version newer than it, a sealed value another key
//! made — as a listing shows them: what the journal's own columns still say, and why the rest cannot be read. One
//! such record never hides the others.

use crate::{
    binding::BindingView,
    ops::{AccountResult, Millis, Operation, OperationKind, OperationState, Outcome},
};

/// One item of a listing: read, or shown as far as it can be with the reason it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed<T, U> {
    /// Read whole.
    Read(T),
    /// Not readable: what is known of it, and why.
    Unreadable(U),
}

impl<T, U> Listed<T, U> {
    /// The item, if it was read.
    pub fn read(self) -> Option<T> {
        match self {
            Listed::Read(t) => Some(t),
            Listed::Unreadable(_) => None,
        }
    }

    /// The item, if it was read.
    pub fn as_read(&self) -> Option<&T> {
        match self {
            Listed::Read(t) => Some(t),
            Listed::Unreadable(_) => None,
        }
    }
}

/// A listed operation.
pub type ListedOperation = Listed<Operation, UnreadableOperation>;
/// A listed account result.
pub type ListedResult = Listed<AccountResult, UnreadableResult>;
/// A listed binding.
pub type ListedBinding = Listed<BindingView, UnreadableBinding>;

/// An operation whose record cannot be read: its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableOperation {
    /// Its id.
    pub id: String,
    /// What it does, when this crossroled knows the kind.
    pub kind: Option<OperationKind>,
    /// Where it is, when this crossroled knows the state.
    pub state: Option<OperationState>,
    /// The name of the spec it runs.
    pub spec_name: String,
    /// The binding that started it.
    pub binding_name: Option<String>,
    /// The token that started it.
    pub created_by: String,
    /// When it was created.
    pub create_time: Millis,
    /// When it started running.
    pub start_time: Option<Millis>,
    /// When it ended.
    pub end_time: Option<Millis>,
    /// Why it failed or stopped early, as recorded.
    pub message: String,
    /// The latest event's sequence number.
    pub last_sequence: u64,
    /// Why it cannot be read.
    pub reason: String,
}

/// An account's result that cannot be read: its row's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableResult {
    /// The account.
    pub account_id: String,
    /// Its position in the operation's targets.
    pub index: u32,
    /// Where it stands, when this crossroled knows the outcome.
    pub outcome: Option<Outcome>,
    /// Why it cannot be read.
    pub reason: String,
}

/// A binding whose record cannot be read: its row's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableBinding {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: u64,
    /// When it was created.
    pub create_time: Millis,
    /// When it was last updated.
    pub update_time: Millis,
    /// Why it cannot be read.
    pub reason: String,
}
