//! What the journal's integer columns hold, typed: an operation's kind and state, an account's outcome.
//!
//! The columns keep their integers (the numbers the first journals used; changing one would misread every journal
//! written before). Each enum names the values this crossroled knows and keeps any other as `Unknown(code)`, so
//! that a journal a newer crossroled wrote still reads, and a row written back keeps the code it had. Values
//! compare by code: `Unknown(3)` is `Succeeded`. The engine maps its domain's kinds, states and outcomes to and
//! from these (`crossrole_engine::records`).

use std::{
    cmp::Ordering,
    hash::{Hash, Hasher},
};

macro_rules! stored {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A code this crossroled does not know (a newer one wrote it), kept as it is.
            Unknown(i32),
        }

        impl $name {
            /// Every value this crossroled knows.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// Its code in the journal's column.
            pub const fn code(self) -> i32 {
                match self {
                    $($name::$variant => $code,)+
                    $name::Unknown(code) => code,
                }
            }

            /// The value a column's code stands for; `Unknown` for a code this crossroled does not know.
            pub const fn from_code(code: i32) -> $name {
                match code {
                    $($code => $name::$variant,)+
                    other => $name::Unknown(other),
                }
            }

            /// Whether this crossroled knows it.
            pub const fn is_known(self) -> bool {
                !matches!($name::from_code(self.code()), $name::Unknown(_))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.code() == other.code()
            }
        }

        impl Eq for $name {}

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.code().hash(state);
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &$name) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &$name) -> Ordering {
                self.code().cmp(&other.code())
            }
        }
    };
}

stored!(
    /// What an operation does (`operations.kind`).
    StoredKind {
        /// Make the role (and the grant) as the spec says.
        Apply = 1,
        /// Take them away.
        Destroy = 2,
        /// A binding's reconcile.
        Reconcile = 3,
        /// An inventory of the organization's roles (reads only).
        Inventory = 5,
        /// A revocation of a role's sessions, for an incident.
        Revoke = 6,
    }
);

stored!(
    /// Where an operation is (`operations.state`).
    StoredState {
        /// Written, not started.
        Pending = 1,
        /// Started.
        Running = 2,
        /// Ended: done.
        Succeeded = 3,
        /// Ended: failed.
        Failed = 4,
        /// A cancel was asked; still running.
        Cancelling = 5,
        /// Ended: cancelled.
        Cancelled = 6,
    }
);

stored!(
    /// Where an account of an operation is (`account_results.outcome`).
    StoredOutcome {
        /// Not worked on yet.
        Pending = 1,
        /// Being worked on.
        Running = 2,
        /// Changed.
        Changed = 3,
        /// Already as the spec says.
        Unchanged = 4,
        /// Failed.
        Failed = 5,
        /// Left alone, with a reason.
        Skipped = 6,
        /// Never started (the operation stopped first).
        NotStarted = 7,
        /// Differs from the spec (a detect-only run).
        Drifted = 8,
    }
);

impl StoredState {
    /// The states an operation ends in. An operation in any other (an unknown one included) is unfinished.
    pub const FINAL: [StoredState; 3] = [StoredState::Succeeded, StoredState::Failed, StoredState::Cancelled];

    /// Whether an operation in this state has ended.
    pub fn is_final(self) -> bool {
        StoredState::FINAL.contains(&self)
    }
}

/// Codes as a SQL list (`1,2,3`): they are integers, so inlining them is safe.
pub(crate) fn sql_list(codes: impl IntoIterator<Item = i32>) -> String {
    codes.into_iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_ones_journals_hold() {
        let kinds = [
            (StoredKind::Apply, 1),
            (StoredKind::Destroy, 2),
            (StoredKind::Reconcile, 3),
            (StoredKind::Inventory, 5),
            (StoredKind::Revoke, 6),
        ];
        let states = [
            (StoredState::Pending, 1),
            (StoredState::Running, 2),
            (StoredState::Succeeded, 3),
            (StoredState::Failed, 4),
            (StoredState::Cancelling, 5),
            (StoredState::Cancelled, 6),
        ];
        let outcomes = [
            (StoredOutcome::Pending, 1),
            (StoredOutcome::Running, 2),
            (StoredOutcome::Changed, 3),
            (StoredOutcome::Unchanged, 4),
            (StoredOutcome::Failed, 5),
            (StoredOutcome::Skipped, 6),
            (StoredOutcome::NotStarted, 7),
            (StoredOutcome::Drifted, 8),
        ];
        // Compared by variant, not by code (values compare by code).
        let same = |a: String, b: String| assert_eq!(a, b);
        for (k, n) in kinds {
            assert_eq!(k.code(), n);
            same(format!("{:?}", StoredKind::from_code(n)), format!("{k:?}"));
        }
        for (s, n) in states {
            assert_eq!(s.code(), n);
            same(format!("{:?}", StoredState::from_code(n)), format!("{s:?}"));
        }
        for (o, n) in outcomes {
            assert_eq!(o.code(), n);
            same(format!("{:?}", StoredOutcome::from_code(n)), format!("{o:?}"));
        }
        let lens = (StoredKind::KNOWN.len(), StoredState::KNOWN.len(), StoredOutcome::KNOWN.len());
        assert_eq!(lens, (kinds.len(), states.len(), outcomes.len()), "every known value has its code here");
    }

    #[test]
    fn an_unknown_code_is_kept_and_compares_by_code() {
        for code in [-1, 0, 9, 42, i32::MAX] {
            assert_eq!(StoredOutcome::from_code(code).code(), code);
            assert!(!StoredOutcome::from_code(code).is_known());
        }
        assert_eq!(StoredKind::from_code(99), StoredKind::Unknown(99));
        assert!(matches!(StoredKind::from_code(99), StoredKind::Unknown(99)));
        assert_eq!(StoredState::Unknown(3), StoredState::Succeeded, "a known code spelt as unknown is the same");
        assert!(StoredState::Unknown(3).is_known());
        assert!(StoredOutcome::Pending < StoredOutcome::Drifted && StoredOutcome::Drifted < StoredOutcome::Unknown(9));
    }

    #[test]
    fn an_operation_ends_in_succeeded_failed_or_cancelled() {
        let ended: Vec<StoredState> = StoredState::KNOWN.iter().copied().filter(|s| s.is_final()).collect();
        assert_eq!(ended, StoredState::FINAL);
        assert!(!StoredState::Unknown(42).is_final(), "an unknown state is unfinished, as it always was");
        assert_eq!(sql_list(StoredState::FINAL.map(StoredState::code)), "3,4,6");
    }
}
