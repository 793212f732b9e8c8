//! The journal's own records: what the engine writes into the journal's payload columns, independent of the API's
//! messages. Changing the API does not change the journal, and the other way round.
//!
//! Every payload is JSON in a versioned envelope, `{"v":1,"record":…}`, of a domain type (crossrole-core) that
//! serializes with serde: the spec an operation runs ([`RawSpec`], its ExternalId sealed), each account's result
//! ([`AccountResult`]), each event ([`OperationEvent`]), a binding ([`BindingRecord`], its ExternalId sealed) and
//! its status ([`BindingStatus`]). The integer columns the journal filters by (an operation's kind and state, an
//! account's outcome) hold the codes defined here; they are the journal's, and keep the numbers the first
//! journals used.
//!
//! An operation's spec record may carry, beside it in the envelope, `accounts`: the only accounts the operation
//! works on (a binding's reconcile of the accounts an Organizations event named).
//!
//! Evolving a record: a field added with `#[serde(default)]` is read from older records as is (version 1 stays);
//! anything else bumps [`VERSION`], and `decode` learns to read the old version into the new type. A record newer
//! than this crossroled is refused by name, never guessed at. Journals written before the records existed hold
//! the API's protobuf messages; crossroled upgrades them once, when it starts (see `crossrole_server::upgrade` and
//! docs/operators-guide.md, "Upgrading the journal").

use crossrole_core::{
    binding::BindingMode,
    ops::{AccountResult, OperationKind, OperationState, Outcome},
    spec::RawSpec,
};
use std::collections::BTreeSet;

use crossrole_store::AccountRow;
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
    #[derive(Serialize)]
    struct Scoped<'a> {
        v: u32,
        record: &'a RawSpec,
        #[serde(skip_serializing_if = "Option::is_none")]
        accounts: Option<&'a BTreeSet<String>>,
    }
    serde_json::to_vec(&Scoped { v: VERSION, record: spec, accounts }).unwrap_or_default()
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
    let version: Version =
        serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("{what} does not decode: {e}")))?;
    if version.v != VERSION {
        return Err(Error::Corrupt(format!(
            "{what} is a version {} record; this crossroled reads version {VERSION}: run the crossroled that wrote it",
            version.v
        )));
    }
    let body: Body<T> =
        serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("{what} does not decode: {e}")))?;
    Ok(body.record)
}

/// An account's result as the journal keeps it: its row, with the outcome in the column the journal counts and
/// filters by.
pub fn account_row(result: &AccountResult) -> AccountRow {
    AccountRow {
        index: result.index,
        account_id: result.account_id.clone(),
        outcome: outcome_code(result.outcome),
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
            row.account_id, row.outcome
        ))
    })?;
    Ok(result)
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
}

macro_rules! codes {
    ($(#[$doc:meta])* $ty:ident, $to:ident, $from:ident { $($v:ident = $n:literal),+ $(,)? }) => {
        $(#[$doc])*
        pub fn $to(value: $ty) -> i32 {
            match value {
                $($ty::$v => $n,)+
            }
        }

        /// The value for a journal code; `None` for a code this crossroled does not know.
        pub fn $from(code: i32) -> Option<$ty> {
            match code {
                $($n => Some($ty::$v),)+
                _ => None,
            }
        }
    };
}

codes!(
    /// An operation kind's code in the journal.
    OperationKind, kind_code, kind_of { Apply = 1, Destroy = 2, Reconcile = 3 }
);

codes!(
    /// An operation state's code in the journal.
    OperationState, state_code, state_of {
        Pending = 1,
        Running = 2,
        Succeeded = 3,
        Failed = 4,
        Cancelling = 5,
        Cancelled = 6,
    }
);

/// The codes of the states an operation ends in.
pub fn final_state_codes() -> Vec<i32> {
    OperationState::ALL.into_iter().filter(|s| s.is_final()).map(state_code).collect()
}

codes!(
    /// An account outcome's code in the journal.
    Outcome, outcome_code, outcome_of {
        Pending = 1,
        Running = 2,
        Changed = 3,
        Unchanged = 4,
        Failed = 5,
        Skipped = 6,
        NotStarted = 7,
        Drifted = 8,
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
        let wrong = encode(&ErrorCode::NotOwned);
        assert!(decode::<AccountError>(&wrong, "x").unwrap_err().to_string().contains("x does not decode"));
    }

    #[test]
    fn the_codes_are_the_journals_own_and_complete() {
        for o in Outcome::ALL {
            assert_eq!(outcome_of(outcome_code(o)), Some(o));
        }
        for s in OperationState::ALL {
            assert_eq!(state_of(state_code(s)), Some(s));
        }
        for k in [OperationKind::Apply, OperationKind::Destroy, OperationKind::Reconcile] {
            assert_eq!(kind_of(kind_code(k)), Some(k));
        }
        assert_eq!((outcome_of(0), state_of(9), kind_of(-1)), (None, None, None));
    }
}
