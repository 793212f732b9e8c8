//! The closed sets, both ways: each domain enum and its API enum, value by value. The API's numbers are read
//! with [`choice`] (left out, known, or a number this version does not know) or [`need`] (required).

use crossrole_core::{
    binding::{BindingMode, SyncState},
    guardrails::Severity,
    inventory::{EntrantKind, FindingKind, Severity as InventorySeverity},
    ops::{
        Action, ChangeKind, CheckOutcome, Conformance, ErrorCode, OperationKind, OperationState, OrganizationRead,
        Outcome, Phase, PlanStatus,
    },
    spec::{AccountState, Choice, Guardrail, PrincipalMatch},
};

use crate::{Error, ToWire, pb};

/// A domain enum read from the API's number; `None` for UNSPECIFIED and numbers this version does not know.
pub trait Known: Sized {
    /// The value for `number`.
    fn known(number: i32) -> Option<Self>;
}

/// An enum field as given: left out (0), a known value, or an unknown number (validation reports it).
pub fn choice<T: Known>(number: i32) -> Choice<T> {
    match (number, T::known(number)) {
        (0, _) => Choice::Unspecified,
        (_, Some(v)) => Choice::Is(v),
        (n, None) => Choice::Unknown(n),
    }
}

/// A required enum field.
pub(crate) fn need<T: Known>(field: &str, number: i32) -> Result<T, Error> {
    match (number, T::known(number)) {
        (_, Some(v)) => Ok(v),
        (0, None) => Err(Error::missing(field)),
        (n, None) => Err(Error::new(field, format!("{n} is not a value this version knows"))),
    }
}

/// The API's number for a domain value.
pub fn number<T>(value: T) -> i32
where
    T: ToWire,
    T::Wire: Into<i32>,
{
    value.to_wire().into()
}

/// A domain `Choice` as the API's number (0 for left out, the number itself when unknown).
pub(crate) fn choice_number<T>(c: Choice<T>) -> i32
where
    T: ToWire + Copy,
    T::Wire: Into<i32>,
{
    match c {
        Choice::Unspecified => 0,
        Choice::Is(v) => number(v),
        Choice::Unknown(n) => n,
    }
}

macro_rules! both_ways {
    ($domain:ident <=> $wire:ident { $($d:ident = $w:ident),+ $(,)? }) => {
        impl ToWire for $domain {
            type Wire = pb::$wire;
            fn to_wire(&self) -> pb::$wire {
                match self {
                    $($domain::$d => pb::$wire::$w,)+
                }
            }
        }

        impl Known for $domain {
            fn known(number: i32) -> Option<Self> {
                match pb::$wire::try_from(number).ok()? {
                    $(pb::$wire::$w => Some($domain::$d),)+
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

both_ways!(Guardrail <=> Guardrail {
    WildcardPrincipal = WildcardPrincipal,
    ExternalPrincipalUnguarded = ExternalPrincipalUnguarded,
    AdminAccess = AdminAccess,
    TrustPolicySize = TrustPolicySize,
    InlinePolicySize = InlinePolicySize,
    ManagedPolicyCount = ManagedPolicyCount,
    WeakExternalId = WeakExternalId,
    UnownedRole = UnownedRole,
});

both_ways!(AccountState <=> AccountState {
    PendingActivation = PendingActivation,
    Active = Active,
    Suspended = Suspended,
    PendingClosure = PendingClosure,
    Closed = Closed,
});

both_ways!(PrincipalMatch <=> PrincipalMatch { Condition = Condition, Direct = Direct });

both_ways!(Severity <=> FindingSeverity { Error = Error, Warning = Warning });

both_ways!(ChangeKind <=> ChangeKind {
    CreateRole = CreateRole,
    UpdateTrustPolicy = UpdateTrustPolicy,
    UpdateDescription = UpdateDescription,
    UpdateMaxSessionDuration = UpdateMaxSessionDuration,
    PutPermissionsBoundary = PutPermissionsBoundary,
    DeletePermissionsBoundary = DeletePermissionsBoundary,
    AttachManagedPolicy = AttachManagedPolicy,
    DetachManagedPolicy = DetachManagedPolicy,
    PutInlinePolicy = PutInlinePolicy,
    DeleteInlinePolicy = DeleteInlinePolicy,
    TagRole = TagRole,
    UntagRole = UntagRole,
    DeleteRole = DeleteRole,
    CreateGrantPolicy = CreateGrantPolicy,
    UpdateGrantPolicy = UpdateGrantPolicy,
    AttachGrantPolicy = AttachGrantPolicy,
    DetachGrantPolicy = DetachGrantPolicy,
    DeleteGrantPolicy = DeleteGrantPolicy,
    RevokeSessions = RevokeSessions,
    SessionsNotRevoked = SessionsNotRevoked,
    FormerGrantReleased = FormerGrantReleased,
});

both_ways!(Phase <=> AccountPhase {
    Queued = Queued,
    Assume = Assume,
    Read = Read,
    Plan = Plan,
    Apply = Apply,
    Verify = Verify,
    Done = Done,
});

both_ways!(Outcome <=> AccountOutcome {
    Pending = Pending,
    Running = Running,
    Changed = Changed,
    Unchanged = Unchanged,
    Failed = Failed,
    Skipped = Skipped,
    NotStarted = NotStarted,
    Drifted = Drifted,
});

both_ways!(Action <=> AccountAction { Ensure = Ensure, Remove = Remove });

both_ways!(ErrorCode <=> AccountErrorReason {
    NotOwned = NotOwned,
    AccountNotActive = AccountNotActive,
    BootstrapRoleUnavailable = BootstrapRoleUnavailable,
    AccessDenied = AccessDenied,
    AwsUnavailable = AwsUnavailable,
    AwsError = AwsError,
    Invalid = Invalid,
    Cancelled = Cancelled,
    VerifyFailed = VerifyFailed,
    NotStarted = NotStarted,
    OutsideCeiling = OutsideCeiling,
    PlanChanged = PlanChanged,
});

both_ways!(OrganizationRead <=> OrganizationRead { Cached = Cached, AsApply = AsApply, Fresh = Fresh });

both_ways!(OperationKind <=> OperationKind {
    Apply = Apply,
    Destroy = Destroy,
    Reconcile = Reconcile,
    Inventory = Inventory,
    Revoke = Revoke,
});

both_ways!(OperationState <=> OperationState {
    Pending = Pending,
    Running = Running,
    Cancelling = Cancelling,
    Succeeded = Succeeded,
    Failed = Failed,
    Cancelled = Cancelled,
});

both_ways!(CheckOutcome <=> CheckOutcome { Passed = Passed, Failed = Failed, Skipped = Skipped });

both_ways!(Conformance <=> RoleConformance {
    InSync = InSync,
    Drifted = Drifted,
    Missing = Missing,
    NotOwned = NotOwned,
    Unknown = Unknown,
});

both_ways!(PlanStatus <=> AccountPlanStatus { InSync = InSync, Changes = Changes, Conflict = Conflict, Failed = Failed });

both_ways!(BindingMode <=> BindingMode { Enforce = Enforce, Detect = Detect });

both_ways!(SyncState <=> SyncState {
    Pending = Pending,
    InSync = InSync,
    Drifted = Drifted,
    Failed = Failed,
    Removed = Removed
});

both_ways!(EntrantKind <=> EntrantKind {
    OrganizationAccount = OrganizationAccount,
    OutsideAccount = OutsideAccount,
    FormerMember = FormerMember,
    Service = Service,
    Federated = Federated,
    Anyone = Anyone,
    UnresolvableId = UnresolvableId,
    Other = Other,
});

both_ways!(FindingKind <=> InventoryFindingKind {
    AnyoneCanEnter = AnyoneCanEnter,
    OutsideWithoutExternalId = OutsideWithoutExternalId,
    OutsideAccountRoot = OutsideAccountRoot,
    BrokenPrincipal = BrokenPrincipal,
    Unused = Unused,
    FormerMember = FormerMember,
    Drifted = Drifted,
    UnreadableTrust = UnreadableTrust,
});

both_ways!(InventorySeverity <=> InventorySeverity {
    Info = Info,
    Low = Low,
    Medium = Medium,
    High = High,
    Critical = Critical,
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of every API enum but UNSPECIFIED has its domain value, and back: a value added to the API and
    /// not here fails this test.
    fn covers<T: Known + ToWire + Copy + PartialEq + std::fmt::Debug>(name: &str, numbers: std::ops::Range<i32>)
    where
        T::Wire: Into<i32>,
    {
        for n in numbers {
            let v = T::known(n).unwrap_or_else(|| panic!("{name} {n} has no domain value"));
            assert_eq!(number(v), n, "{name} {v:?}");
        }
        assert!(T::known(0).is_none(), "{name}: UNSPECIFIED is no value");
    }

    #[test]
    fn every_api_value_has_its_domain_value_and_back() {
        covers::<Guardrail>("Guardrail", 1..9);
        covers::<AccountState>("AccountState", 1..6);
        covers::<PrincipalMatch>("PrincipalMatch", 1..3);
        covers::<Severity>("FindingSeverity", 1..3);
        covers::<ChangeKind>("ChangeKind", 1..22);
        covers::<Phase>("AccountPhase", 1..8);
        covers::<Outcome>("AccountOutcome", 1..9);
        covers::<Action>("AccountAction", 1..3);
        covers::<ErrorCode>("AccountErrorReason", 1..13);
        covers::<OrganizationRead>("OrganizationRead", 1..4);
        covers::<OperationKind>("OperationKind", 1..4);
        covers::<OperationKind>("OperationKind", 5..7);
        covers::<EntrantKind>("EntrantKind", 1..9);
        covers::<FindingKind>("InventoryFindingKind", 1..9);
        covers::<InventorySeverity>("InventorySeverity", 1..6);
        covers::<OperationState>("OperationState", 1..7);
        covers::<CheckOutcome>("CheckOutcome", 1..4);
        covers::<Conformance>("RoleConformance", 1..6);
        covers::<PlanStatus>("AccountPlanStatus", 1..5);
        covers::<BindingMode>("BindingMode", 1..3);
        covers::<SyncState>("SyncState", 1..6);
        // And no API enum has a value past those: the next number is unknown to prost too.
        assert!(pb::ChangeKind::try_from(22).is_err() && pb::AccountErrorReason::try_from(13).is_err());
        assert!(pb::AccountOutcome::try_from(9).is_err() && pb::Guardrail::try_from(9).is_err());
    }

    #[test]
    fn an_error_codes_text_is_its_api_name() {
        for code in ErrorCode::ALL {
            let name = code.to_wire().as_str_name().trim_start_matches("ACCOUNT_ERROR_REASON_").to_ascii_lowercase();
            assert_eq!(code.as_str(), name);
            assert_eq!(ErrorCode::parse(&name), Some(code));
        }
    }

    #[test]
    fn unknown_numbers_are_kept_and_named() {
        assert_eq!(choice::<Guardrail>(0), Choice::Unspecified);
        assert_eq!(choice::<Guardrail>(3), Choice::Is(Guardrail::AdminAccess));
        assert_eq!(choice::<Guardrail>(77), Choice::Unknown(77));
        assert_eq!(choice_number(Choice::<Guardrail>::Unknown(77)), 77);
        assert_eq!(need::<Outcome>("result.outcome", 0).unwrap_err().to_string(), "result.outcome: required");
        assert_eq!(
            need::<Outcome>("result.outcome", 42).unwrap_err().to_string(),
            "result.outcome: 42 is not a value this version knows"
        );
    }
}
