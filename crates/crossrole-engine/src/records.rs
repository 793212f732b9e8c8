//! The journal's own records: what the engine writes into the journal's payload columns, independent of the API's
//! messages. Changing the API does not change the journal, and the other way round.
//!
//! Every payload is JSON in a versioned envelope, `{"v":1,"record":…}`, of a domain type (crossrole-core) that
//! serializes with serde: the spec an operation runs ([`RawSpec`], its ExternalId sealed), each account's result
//! ([`AccountResult`]), each event ([`OperationEvent`]), a binding ([`BindingRecord`], its ExternalId sealed) and
//! its status ([`BindingStatus`]). The columns the journal filters by (an operation's kind and state, an account's
//! outcome) hold the journal's own values ([`StoredKind`], [`StoredState`], [`StoredOutcome`]: codes that keep
//! the numbers the first journals used); the domain's kinds, states and outcomes map to and from them here.
//!
//! An operation's spec record may carry, beside it in the envelope, `accounts`: the only accounts the operation
//! works on (a binding's reconcile of the accounts an Organizations event named); and `confirmed_plan`: the
//! fingerprint of the plan an apply carries (`crate::confirmed`); `end`: the end an apply asked for, as given;
//! `released_former_grants`: the trusted accounts whose former grants the request gave up on, and who asked;
//! `former_grants_cut`: the operation was made by a
//! crossroled that removes the spec's former grants (`crate::rollout::former`), so one that succeeded leaves none
//! of them behind; for an inventory, `unused_after_days`: the days after which a role is reported unused, when its
//! request gave them.
//!
//! Evolving a record: a field added with `#[serde(default)]` is read from older records as is (version 1 stays);
//! anything else bumps [`VERSION`], and `decode` learns to read the old version into the new type. A record newer
//! than this crossroled is refused by name, never guessed at. Journals written before the records existed hold
//! the API's protobuf messages; crossroled upgrades them once, when it starts (see `crossrole_server::upgrade` and
//! docs/operators-guide.md, "Upgrading the journal").

use crossrole_core::{
    binding::BindingMode,
    expiry::RawEnd,
    grant::former::Release,
    inventory::InventoryRole,
    ops::{AccountResult, OperationKind, OperationState, Outcome},
    spec::RawSpec,
};
use std::collections::BTreeSet;

use crossrole_store::{AccountRow, StoredKind, StoredOutcome, StoredState};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::Error;

/// The records' version this crossroled writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Envelope<'a, T> {
    v: u32,
    record: &'a T,
}

#[derive(Deserialize)]
struct Version {
    v: u32,
}

#[derive(Deserialize)]
struct Body<T> {
    record: T,
}

/// A record as the journal keeps it.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serializing plain data (strings, numbers, maps with string keys) into memory cannot fail.
    serde_json::to_vec(&Envelope { v: VERSION, record }).unwrap_or_default()
}

/// The spec an operation runs as the journal keeps it, with the accounts it is limited to (if it is): those go
/// into the envelope beside the record, as `accounts`, so that records without them read as unlimited.
pub fn encode_operation_spec(spec: &RawSpec, accounts: Option<&BTreeSet<String>>) -> Vec<u8> {
    encode_operation(spec, Beside { accounts, ..Beside::default() })
}

/// What an operation's record holds beside its spec, each read as absent from records without it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Beside<'a> {
    /// The only accounts it works on, as `accounts`.
    pub accounts: Option<&'a BTreeSet<String>>,
    /// The fingerprint of the plan the apply carries, as `confirmed_plan`.
    pub confirmed: Option<&'a str>,
    /// The end the apply asked for, as given (`expires_at` or `expires_in`), as `end`: to tell a retry of its
    /// idempotency key from a request with another end, and say which.
    pub end: Option<&'a RawEnd>,
    /// The former grants the request gives up on, and who asks, as `released_former_grants`.
    pub release: Option<&'a Release>,
    /// What the operation does with the spec's ExternalId in roles that exist, as `external_ids` (`kept` or
    /// `written`; left out when compared, as records from before it read).
    pub external_ids: crate::ExternalIds,
}

/// [`encode_operation_spec`], with what else the request asked ([`Beside`]).
pub fn encode_operation(spec: &RawSpec, beside: Beside<'_>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Scoped<'a> {
        v: u32,
        record: &'a RawSpec,
        #[serde(skip_serializing_if = "Option::is_none")]
        accounts: Option<&'a BTreeSet<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        confirmed_plan: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        end: Option<&'a RawEnd>,
        #[serde(skip_serializing_if = "Option::is_none")]
        released_former_grants: Option<&'a Release>,
        former_grants_cut: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        external_ids: Option<&'static str>,
    }
    let end = beside.end.filter(|e| !e.is_empty());
    let released_former_grants = beside.release.filter(|r| !r.is_empty());
    let Beside { accounts, confirmed, external_ids, .. } = beside;
    let external_ids = match external_ids {
        crate::ExternalIds::Compared => None,
        crate::ExternalIds::Kept => Some("kept"),
        crate::ExternalIds::Written => Some("written"),
    };
    let scoped = Scoped {
        v: VERSION,
        record: spec,
        accounts,
        confirmed_plan: confirmed,
        end,
        released_former_grants,
        former_grants_cut: true,
        external_ids,
    };
    serde_json::to_vec(&scoped).unwrap_or_default()
}

/// The former grants an operation gives up on and who asked, from its spec's record (none: it released none).
pub fn operation_release(bytes: &[u8]) -> Release {
    #[derive(Deserialize)]
    struct Released {
        #[serde(default)]
        released_former_grants: Release,
    }
    serde_json::from_slice::<Released>(bytes).map(|r| r.released_former_grants).unwrap_or_default()
}

/// What an operation does with the spec's ExternalId in roles that exist, from its spec's record (compared: a record
/// that says nothing, or something this crossroled does not know).
pub fn operation_external_ids(bytes: &[u8]) -> crate::ExternalIds {
    #[derive(Deserialize)]
    struct Taken {
        external_ids: Option<String>,
    }
    match serde_json::from_slice::<Taken>(bytes).ok().and_then(|t| t.external_ids).as_deref() {
        Some("kept") => crate::ExternalIds::Kept,
        Some("written") => crate::ExternalIds::Written,
        _ => crate::ExternalIds::Compared,
    }
}

/// The end an apply asked for, from its spec's record (none: it asked for none, or its record is from before ends
/// were kept there).
pub fn operation_end(bytes: &[u8]) -> RawEnd {
    #[derive(Deserialize)]
    struct End {
        #[serde(default)]
        end: RawEnd,
    }
    serde_json::from_slice::<End>(bytes).map(|e| e.end).unwrap_or_default()
}

/// Whether the operation was made by a crossroled that removes the spec's former grants (records without
/// `former_grants_cut` were not).
pub fn operation_cuts_former_grants(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Cuts {
        #[serde(default)]
        former_grants_cut: bool,
    }
    serde_json::from_slice::<Cuts>(bytes).is_ok_and(|c| c.former_grants_cut)
}

/// An inventory's record: [`encode_operation_spec`]'s, with the days after which a role is reported unused when its
/// request gave them (`unused_after_days`, beside the record: records without it read as the default).
pub fn encode_inventory(
    spec: &RawSpec,
    accounts: Option<&BTreeSet<String>>,
    unused_after_days: Option<u32>,
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Inventory<'a> {
        v: u32,
        record: &'a RawSpec,
        #[serde(skip_serializing_if = "Option::is_none")]
        accounts: Option<&'a BTreeSet<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        unused_after_days: Option<u32>,
    }
    serde_json::to_vec(&Inventory { v: VERSION, record: spec, accounts, unused_after_days }).unwrap_or_default()
}

/// The days after which an inventory reports a role unused, from its spec's record (`None`: the request gave
/// none; `crossrole_core::inventory::DEFAULT_UNUSED_AFTER_DAYS`).
pub fn operation_unused_after_days(bytes: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct Days {
        unused_after_days: Option<u32>,
    }
    serde_json::from_slice::<Days>(bytes).ok()?.unused_after_days
}

/// The fingerprint of the plan an apply carries, from its spec's record (`None`: it carries none).
pub fn operation_confirmed_plan(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Confirmed {
        confirmed_plan: Option<String>,
    }
    serde_json::from_slice::<Confirmed>(bytes).ok()?.confirmed_plan
}

/// The accounts an operation is limited to, from its spec's record (`None`: every account its spec selects).
pub fn operation_scope(bytes: &[u8]) -> Option<BTreeSet<String>> {
    #[derive(Deserialize)]
    struct Scope {
        accounts: Option<BTreeSet<String>>,
    }
    serde_json::from_slice::<Scope>(bytes).ok()?.accounts
}

/// A record from the journal; `what` names it in errors (`the result of account 1 of operation …`).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    if bytes.first() != Some(&b'{') {
        return Err(Error::Corrupt(format!(
            "{what} is not a journal record (a journal from before crossrole's own records is upgraded when \
             crossroled starts)"
        )));
    }
    let version: Version = serde_json::from_slice(bytes).map_err(|e| undecodable(what, &e))?;
    if version.v != VERSION {
        return Err(Error::Corrupt(format!(
            "{what} is a version {} record; this crossroled reads version {VERSION}: run the crossroled that wrote it",
            version.v
        )));
    }
    let body: Body<T> = serde_json::from_slice(bytes).map_err(|e| undecodable(what, &e))?;
    Ok(body.record)
}

/// A record that does not decode, named, and where: not what it holds (the message goes to callers).
fn undecodable(what: &str, e: &serde_json::Error) -> Error {
    use serde_json::error::Category;
    let problem = match e.classify() {
        Category::Syntax | Category::Eof => "is not well-formed JSON",
        Category::Data => "does not fit the record this crossroled reads",
        Category::Io => "cannot be read",
    };
    Error::Corrupt(format!("{what} {problem} (at line {}, column {})", e.line(), e.column()))
}

/// An account's result as the journal keeps it: its row, with the outcome in the column the journal counts and
/// filters by.
pub fn account_row(result: &AccountResult) -> AccountRow {
    AccountRow {
        index: result.index,
        account_id: result.account_id.clone(),
        outcome: stored_outcome(result.outcome),
        result: encode(result),
    }
}

/// An account's result from its row; the row's outcome column, which the journal counts and filters by, is the
/// outcome.
pub fn account_result(row: &AccountRow, operation: &str) -> Result<AccountResult, Error> {
    let mut result: AccountResult =
        decode(&row.result, &format!("the result of account {} of operation {operation}", row.account_id))?;
    result.outcome = outcome_of(row.outcome).ok_or_else(|| {
        Error::Corrupt(format!(
            "account {} of operation {operation} has outcome {}, unknown",
            row.account_id,
            row.outcome.code()
        ))
    })?;
    Ok(result)
}

/// An inventory's account as the journal keeps it: the account's result with, beside its fields, `roles`: every
/// role read there, classified. An account's row reads as its result alone too ([`account_result`]), so the
/// operation's listings show it as any other; [`inventory_roles`] reads its roles.
pub fn inventory_account_row(result: &AccountResult, roles: &[InventoryRole]) -> AccountRow {
    #[derive(Serialize)]
    struct WithRoles<'a> {
        #[serde(flatten)]
        result: &'a AccountResult,
        roles: &'a [InventoryRole],
    }
    AccountRow {
        index: result.index,
        account_id: result.account_id.clone(),
        outcome: stored_outcome(result.outcome),
        result: encode(&WithRoles { result, roles }),
    }
}

/// The roles an inventory's account row holds (none for an account not read).
pub fn inventory_roles(row: &AccountRow, operation: &str) -> Result<Vec<InventoryRole>, Error> {
    #[derive(Deserialize)]
    struct Roles {
        #[serde(default)]
        roles: Vec<InventoryRole>,
    }
    let what = format!("the roles of account {} of inventory {operation}", row.account_id);
    Ok(decode::<Roles>(&row.result, &what)?.roles)
}

/// A binding as the journal keeps it: what was asked for, its spec's ExternalId sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    /// The spec, as a valid spec gives itself again ([`RawSpec::from`]).
    pub spec: RawSpec,
    /// What a reconcile does about drift.
    pub mode: BindingMode,
    /// How often it reconciles, in seconds.
    pub reconcile_interval_secs: u64,
    /// When its access ends, if it does (records from before ends read as none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

macro_rules! codes {
    ($(#[$doc:meta])* $ty:ident => $stored:ident, $to:ident, $from:ident { $($v:ident),+ $(,)? }) => {
        $(#[$doc])*
        pub fn $to(value: $ty) -> $stored {
            match value {
                $($ty::$v => $stored::$v,)+
            }
        }

        /// The value for the journal's; `None` for one this crossroled does not know.
        pub fn $from(stored: $stored) -> Option<$ty> {
            match $stored::from_code(stored.code()) {
                $($stored::$v => Some($ty::$v),)+
                _ => None,
            }
        }
    };
}

codes!(
    /// An operation kind as the journal keeps it.
    OperationKind => StoredKind, stored_kind, kind_of { Apply, Destroy, Reconcile, Inventory, Revoke }
);

codes!(
    /// An operation state as the journal keeps it.
    OperationState => StoredState, stored_state, state_of {
        Pending,
        Running,
        Succeeded,
        Failed,
        Cancelling,
        Cancelled,
    }
);

/// The states an operation ends in, as the journal keeps them.
pub fn final_states() -> Vec<StoredState> {
    OperationState::ALL.into_iter().filter(|s| s.is_final()).map(stored_state).collect()
}

codes!(
    /// An account outcome as the journal keeps it.
    Outcome => StoredOutcome, stored_outcome, outcome_of {
        Pending,
        Running,
        Changed,
        Unchanged,
        Failed,
        Skipped,
        NotStarted,
        Drifted,
    }
);

#[cfg(test)]
mod tests {
    use crossrole_core::ops::{AccountError, ErrorCode, Event, OperationEvent, Phase};

    use super::*;

    #[test]
    fn a_record_reads_back_and_says_its_version() {
        let event = OperationEvent {
            sequence: 7,
            time: 1_700_000_000_000,
            account_id: "111111111111".into(),
            event: Event::PhaseStarted { phase: Phase::Apply },
        };
        let bytes = encode(&event);
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"v":1,"record":{"sequence":7,"time":1700000000000,"account_id":"111111111111","event":{"phase_started":{"phase":"apply"}}}}"#
        );
        assert_eq!(decode::<OperationEvent>(&bytes, "event 7").unwrap(), event);
    }

    #[test]
    fn what_is_not_a_record_of_this_version_is_refused_by_name() {
        let newer = br#"{"v":2,"record":{"code":"not_owned"}}"#;
        let e = decode::<AccountError>(newer, "the result of account 3").unwrap_err().to_string();
        assert!(e.contains("the result of account 3 is a version 2 record"), "{e}");
        let protobuf = [0x0a, 0x0c, b'1'];
        let e = decode::<AccountError>(&protobuf, "event 1").unwrap_err().to_string();
        assert!(e.contains("event 1 is not a journal record"), "{e}");
        // Named, with where it breaks, and nothing of what it holds: the message goes to callers.
        let wrong = encode(&ErrorCode::NotOwned);
        let e = decode::<AccountError>(&wrong, "x").unwrap_err().to_string();
        assert!(e.starts_with("x does not fit the record this crossroled reads (at line 1, column "), "{e}");
        assert!(!e.contains("not_owned"), "{e}");
        let cut = br#"{"v":1,"record":{"code":"Wq3vT9zLk2Pp8RmX"#;
        let e = decode::<AccountError>(cut, "x").unwrap_err().to_string();
        assert!(e.starts_with("x is not well-formed JSON") && !e.contains("Wq3v"), "{e}");
    }

    #[test]
    fn the_codes_are_the_journals_own_and_complete() {
        for o in Outcome::ALL {
            assert_eq!(outcome_of(stored_outcome(o)), Some(o));
        }
        for s in OperationState::ALL {
            assert_eq!(state_of(stored_state(s)), Some(s));
        }
        let all = [
            OperationKind::Apply,
            OperationKind::Destroy,
            OperationKind::Reconcile,
            OperationKind::Inventory,
            OperationKind::Revoke,
        ];
        for k in all {
            assert_eq!(kind_of(stored_kind(k)), Some(k));
        }
        let unknown = (StoredOutcome::from_code(0), StoredState::from_code(9), StoredKind::from_code(-1));
        assert_eq!((outcome_of(unknown.0), state_of(unknown.1), kind_of(unknown.2)), (None, None, None));
    }

    #[test]
    fn the_journal_keeps_the_numbers_the_first_journals_used() {
        let kinds = [
            OperationKind::Apply,
            OperationKind::Destroy,
            OperationKind::Reconcile,
            OperationKind::Inventory,
            OperationKind::Revoke,
        ];
        assert_eq!(kinds.map(|k| stored_kind(k).code()), [1, 2, 3, 5, 6]);
        use OperationState::*;
        let states = [Pending, Running, Succeeded, Failed, Cancelling, Cancelled];
        assert_eq!(states.map(|s| stored_state(s).code()), [1, 2, 3, 4, 5, 6]);
        assert_eq!(states.len(), OperationState::ALL.len());
        assert_eq!(Outcome::ALL.map(|o| stored_outcome(o).code()), [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn an_inventory_row_reads_as_its_result_and_as_its_roles() {
        let result = AccountResult {
            account_id: "111111111111".into(),
            account_name: "one".into(),
            index: 3,
            outcome: Outcome::Unchanged,
            phase: crossrole_core::ops::Phase::Done,
            role_arn: String::new(),
            changes: Vec::new(),
            error: None,
            verify: None,
            end_time: Some(1_700_000_000_000),
            action: None,
        };
        let role = InventoryRole {
            account_id: "111111111111".into(),
            name: "Vendor".into(),
            path: "/".into(),
            arn: "arn:aws:iam::111111111111:role/Vendor".into(),
            created: None,
            last_used: None,
            managed_policy_arns: Default::default(),
            inline_policy_names: Default::default(),
            permissions_boundary_arn: None,
            owner: None,
            trust_policy: String::new(),
            entrants: Vec::new(),
            findings: Vec::new(),
        };
        let row = inventory_account_row(&result, std::slice::from_ref(&role));
        assert_eq!((row.index, row.outcome), (3, StoredOutcome::Unchanged));
        assert_eq!(account_result(&row, "op").unwrap(), result);
        assert_eq!(inventory_roles(&row, "op").unwrap(), vec![role]);
        // An account not read holds no roles.
        assert_eq!(inventory_roles(&account_row(&result), "op").unwrap(), vec![]);
    }

    #[test]
    fn the_journal_ends_an_operation_where_the_domain_does() {
        // The journal finds unfinished operations by its own final states; they must be the domain's.
        for s in OperationState::ALL {
            assert_eq!(stored_state(s).is_final(), s.is_final(), "{s:?}");
        }
        assert_eq!(final_states(), StoredState::FINAL);
    }
}
