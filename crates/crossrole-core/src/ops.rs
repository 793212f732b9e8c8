//! Operations as the domain sees them: what an operation is and where it stands, each account's result and the
//! reasons an account failed or was left alone, the events a watcher follows, and the answers of plans and
//! verifications. Plain data: the engine fills them in, the journal keeps them (they serialize with serde), and the
//! edge (crossrole-wire) turns them into the API's messages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{guardrails::Finding, org::AccountInfo};

/// Unix time in milliseconds.
pub type Millis = i64;

/// What a change does. In the order crossrole applies changes when several are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Create the role, with its trust policy, description, session duration, boundary and tags.
    CreateRole,
    /// Replace the trust policy.
    UpdateTrustPolicy,
    /// Change the description.
    UpdateDescription,
    /// Change the maximum session duration.
    UpdateMaxSessionDuration,
    /// Set or replace the permissions boundary.
    PutPermissionsBoundary,
    /// Remove the permissions boundary.
    DeletePermissionsBoundary,
    /// Attach a managed policy.
    AttachManagedPolicy,
    /// Detach a managed policy.
    DetachManagedPolicy,
    /// Create or replace an inline policy.
    PutInlinePolicy,
    /// Delete an inline policy.
    DeleteInlinePolicy,
    /// Add or change tags.
    TagRole,
    /// Remove tags.
    UntagRole,
    /// Delete the role.
    DeleteRole,
    /// Create the trusted side's AssumeRole policy.
    CreateGrantPolicy,
    /// Write a new default version of it.
    UpdateGrantPolicy,
    /// Attach it to a user, group or role.
    AttachGrantPolicy,
    /// Detach it.
    DetachGrantPolicy,
    /// Delete it.
    DeleteGrantPolicy,
    /// Deny the role's sessions issued before now (the `AWSRevokeOlderSessions` inline policy).
    RevokeSessions,
    /// No write: access is taken away and the sessions issued before are not revoked (turned off).
    SessionsNotRevoked,
    /// No write: a former grant crossrole cannot read is given up on, as the request asked: left where it is.
    FormerGrantReleased,
}

impl ChangeKind {
    /// For people: `create role`, `attach managed policy`, …
    pub fn describe(self) -> &'static str {
        match self {
            ChangeKind::CreateRole => "create role",
            ChangeKind::UpdateTrustPolicy => "update trust policy",
            ChangeKind::UpdateDescription => "update description",
            ChangeKind::UpdateMaxSessionDuration => "update max session duration",
            ChangeKind::PutPermissionsBoundary => "put permissions boundary",
            ChangeKind::DeletePermissionsBoundary => "delete permissions boundary",
            ChangeKind::AttachManagedPolicy => "attach managed policy",
            ChangeKind::DetachManagedPolicy => "detach managed policy",
            ChangeKind::PutInlinePolicy => "put inline policy",
            ChangeKind::DeleteInlinePolicy => "delete inline policy",
            ChangeKind::TagRole => "tag role",
            ChangeKind::UntagRole => "untag role",
            ChangeKind::DeleteRole => "delete role",
            ChangeKind::CreateGrantPolicy => "create grant policy",
            ChangeKind::UpdateGrantPolicy => "update grant policy",
            ChangeKind::AttachGrantPolicy => "attach grant policy",
            ChangeKind::DetachGrantPolicy => "detach grant policy",
            ChangeKind::DeleteGrantPolicy => "delete grant policy",
            ChangeKind::RevokeSessions => "revoke active sessions",
            ChangeKind::SessionsNotRevoked => "sessions not revoked",
            ChangeKind::FormerGrantReleased => "former grant released",
        }
    }
}

/// A change as shown to people: what it is about and the values before and after, rendered as text, every
/// ExternalId replaced by its mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShownChange {
    /// What changes.
    pub kind: ChangeKind,
    /// The policy ARN, inline policy name, tag keys or principal it is about; empty when the kind says it all.
    pub subject: String,
    /// The value before; empty when there was none.
    pub before: String,
    /// The value after; empty when there is none.
    pub after: String,
}

/// The phases of the work in one account, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for a slot.
    Queued,
    /// Assuming the bootstrap role.
    Assume,
    /// Reading the role as it is.
    Read,
    /// Planning.
    Plan,
    /// Applying changes.
    Apply,
    /// Verifying.
    Verify,
    /// Finished.
    Done,
}

/// Where an account stands in an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not yet started.
    Pending,
    /// In flight.
    Running,
    /// Changes applied.
    Changed,
    /// Nothing to change.
    Unchanged,
    /// Failed; the error says why.
    Failed,
    /// Left alone; the error says why.
    Skipped,
    /// Not started; the error says why.
    NotStarted,
    /// Drift found and left (a detect-only run).
    Drifted,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 8] = [
        Outcome::Pending,
        Outcome::Running,
        Outcome::Changed,
        Outcome::Unchanged,
        Outcome::Failed,
        Outcome::Skipped,
        Outcome::NotStarted,
        Outcome::Drifted,
    ];

    /// Whether the account is done in this operation (a resumed operation does not run it again).
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Pending | Outcome::Running)
    }

    /// `pending`, `changed`, …: for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Running => "running",
            Outcome::Changed => "changed",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::NotStarted => "not_started",
            Outcome::Drifted => "drifted",
        }
    }
}

/// What an operation does in one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Make the role as the spec says.
    Ensure,
    /// Remove the role (a destroy, or a prune).
    Remove,
}

/// Why an account failed, was skipped or was not started: the full list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A role of that name exists that is not this spec's; it is left untouched.
    NotOwned,
    /// The account is not ACTIVE (or left the organization); it is left alone.
    AccountNotActive,
    /// The bootstrap role is missing, not assumable, or cannot manage IAM.
    BootstrapRoleUnavailable,
    /// AWS refused a call (AccessDenied).
    AccessDenied,
    /// AWS kept throttling or failing beyond crossrole's retries.
    AwsUnavailable,
    /// AWS refused a call for another reason; its code says which.
    AwsError,
    /// Something in the spec does not fit this account.
    Invalid,
    /// The operation was cancelled while the account was in flight.
    Cancelled,
    /// The role was applied but the trusted side cannot assume it.
    VerifyFailed,
    /// The account was not started: the operation was cancelled, the failure tolerance was exceeded, or the
    /// trusted side could not be removed first.
    NotStarted,
    /// The role carries another permissions boundary than the organization's ceiling; it is left untouched.
    OutsideCeiling,
    /// The apply carries a confirmed plan, and what the account needs now is not what that plan showed for it; it
    /// is left untouched.
    PlanChanged,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::NotOwned,
        ErrorCode::AccountNotActive,
        ErrorCode::BootstrapRoleUnavailable,
        ErrorCode::AccessDenied,
        ErrorCode::AwsUnavailable,
        ErrorCode::AwsError,
        ErrorCode::Invalid,
        ErrorCode::Cancelled,
        ErrorCode::VerifyFailed,
        ErrorCode::NotStarted,
        ErrorCode::OutsideCeiling,
        ErrorCode::PlanChanged,
    ];

    /// The stable text code: `not_owned`, `account_not_active`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotOwned => "not_owned",
            ErrorCode::AccountNotActive => "account_not_active",
            ErrorCode::BootstrapRoleUnavailable => "bootstrap_role_unavailable",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::AwsUnavailable => "aws_unavailable",
            ErrorCode::AwsError => "aws_error",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::VerifyFailed => "verify_failed",
            ErrorCode::NotStarted => "not_started",
            ErrorCode::OutsideCeiling => "outside_ceiling",
            ErrorCode::PlanChanged => "plan_changed",
        }
    }

    /// The code for its text.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Why an account failed, was skipped or was not started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountError {
    /// Which reason.
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
    /// AWS's error code, when AWS refused.
    pub aws_error_code: Option<String>,
    /// The phase it happened in.
    pub phase: Phase,
}

impl AccountError {
    /// A reason of crossrole's own (no AWS code).
    pub fn new(code: ErrorCode, message: impl Into<String>, phase: Phase) -> AccountError {
        AccountError { code, message: message.into(), aws_error_code: None, phase }
    }
}

/// The live check's result, in short, inside an account's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySummary {
    /// Whether the trusted side could assume the role.
    pub passed: bool,
    /// The account the assumed credentials act in.
    pub assumed_account_id: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, when it failed or was skipped.
    pub error: String,
}

/// An account's result in an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountResult {
    /// The account.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// Its position in the operation's targets, from 0.
    pub index: u32,
    /// Where it stands.
    pub outcome: Outcome,
    /// The phase reached.
    pub phase: Phase,
    /// The role's ARN there.
    pub role_arn: String,
    /// The changes applied (found, in a detect-only run), before and after a restart; while running, the last may
    /// be in flight.
    pub changes: Vec<ShownChange>,
    /// Why it failed, was skipped or was not started.
    pub error: Option<AccountError>,
    /// The live check, when it ran.
    pub verify: Option<VerifySummary>,
    /// When it finished.
    pub end_time: Option<Millis>,
    /// What the operation does there; `None` for an account matched and skipped, which it does nothing to.
    pub action: Option<Action>,
}

impl AccountResult {
    /// The result of the account `account_id` (`account_name`), at `index` of its operation's targets, as
    /// `outcome` in `phase` with nothing else said: no role, no change, no error, no live check, not finished, and
    /// no action (an organization-wide operation's row; a rollout's says what it does there).
    pub fn new(
        account_id: impl Into<String>,
        account_name: impl Into<String>,
        index: u32,
        outcome: Outcome,
        phase: Phase,
    ) -> AccountResult {
        AccountResult {
            account_id: account_id.into(),
            account_name: account_name.into(),
            index,
            outcome,
            phase,
            role_arn: String::new(),
            changes: Vec::new(),
            error: None,
            verify: None,
            end_time: None,
            action: None,
        }
    }
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Apply a spec.
    Apply,
    /// Remove what a spec made.
    Destroy,
    /// A binding's reconcile.
    Reconcile,
    /// Read every role of the organization's accounts and classify who can enter them; writes nothing to AWS.
    Inventory,
    /// Revoke every session of a spec's role issued before now, in the accounts where it is placed (an incident).
    Revoke,
}

impl OperationKind {
    /// `apply`, `destroy`, `reconcile`, `inventory`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Apply => "apply",
            OperationKind::Destroy => "destroy",
            OperationKind::Reconcile => "reconcile",
            OperationKind::Inventory => "inventory",
            OperationKind::Revoke => "revoke",
        }
    }
}

/// Where an operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Accepted, not started.
    Pending,
    /// Working on its accounts.
    Running,
    /// Cancel asked for; accounts in flight are finishing.
    Cancelling,
    /// Finished, no account failed.
    Succeeded,
    /// Finished, something failed.
    Failed,
    /// Stopped by a cancel; accounts not started say so.
    Cancelled,
}

impl OperationState {
    /// Every state.
    pub const ALL: [OperationState; 6] = [
        OperationState::Pending,
        OperationState::Running,
        OperationState::Cancelling,
        OperationState::Succeeded,
        OperationState::Failed,
        OperationState::Cancelled,
    ];

    /// Whether the operation is over.
    pub fn is_final(self) -> bool {
        matches!(self, OperationState::Succeeded | OperationState::Failed | OperationState::Cancelled)
    }

    /// `pending`, `running`, …: for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::Running => "running",
            OperationState::Cancelling => "cancelling",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
            OperationState::Cancelled => "cancelled",
        }
    }
}

/// Accounts of an operation, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// All of them.
    pub total: u32,
    /// Not yet started.
    pub pending: u32,
    /// In flight.
    pub running: u32,
    /// Changes applied.
    pub changed: u32,
    /// Nothing to change.
    pub unchanged: u32,
    /// Failed; each says why.
    pub failed: u32,
    /// Left alone.
    pub skipped: u32,
    /// Never started (cancel, failure tolerance, trusted side); each says why.
    pub not_started: u32,
    /// Drift found and left.
    pub drifted: u32,
}

impl Counts {
    /// Counts from accounts by outcome.
    pub fn from_outcomes(by_outcome: &BTreeMap<Outcome, u32>) -> Counts {
        let get = |o: Outcome| by_outcome.get(&o).copied().unwrap_or(0);
        Counts {
            total: by_outcome.values().sum(),
            pending: get(Outcome::Pending),
            running: get(Outcome::Running),
            changed: get(Outcome::Changed),
            unchanged: get(Outcome::Unchanged),
            failed: get(Outcome::Failed),
            skipped: get(Outcome::Skipped),
            not_started: get(Outcome::NotStarted),
            drifted: get(Outcome::Drifted),
        }
    }
}

/// An operation as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Its id (a UUID).
    pub id: String,
    /// What it does; `None` for a kind this crossroled does not know (a newer one wrote it), which it does not run.
    pub kind: Option<OperationKind>,
    /// Where it is.
    pub state: OperationState,
    /// The spec it runs, its ExternalId replaced by the mark.
    pub spec: crate::spec::RawSpec,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
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
    /// Its accounts, by outcome.
    pub counts: Counts,
    /// Why it failed or stopped early.
    pub message: String,
    /// AWS calls made, by `service:Operation`, retries included.
    pub aws_calls: BTreeMap<String, u64>,
    /// Calls AWS throttled.
    pub throttled_calls: u64,
    /// The latest event's sequence number.
    pub last_sequence: u64,
    /// Detect only: change nothing.
    pub dry_run: bool,
    /// The only accounts it works on, when limited to some (a reconcile of the accounts an Organizations event
    /// named); empty: every account its spec selects.
    pub account_scope: Vec<String>,
}

/// What happened, in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The operation changed state; the last event of every operation has a final state.
    StateChanged {
        /// The new state.
        state: OperationState,
        /// Why, when it is not obvious.
        message: String,
        /// Counts at that moment.
        counts: Option<Counts>,
    },
    /// The targets are resolved.
    TargetsResolved {
        /// Accounts to work on.
        targets: u32,
        /// Accounts skipped for their state.
        skipped: u32,
        /// Accounts where the spec was applied before and that it no longer selects.
        cleanup: u32,
    },
    /// An account entered a phase.
    PhaseStarted {
        /// The phase.
        phase: Phase,
    },
    /// A change was applied.
    ChangeApplied {
        /// The change.
        change: ShownChange,
    },
    /// An AWS call failed and will be tried again.
    CallRetried {
        /// `service:Operation`.
        call: String,
        /// AWS's error code.
        aws_error_code: String,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The wait before the next, in milliseconds.
        delay_ms: u64,
    },
    /// An account finished.
    AccountFinished {
        /// Its result.
        result: Box<AccountResult>,
    },
}

/// An event of an operation, numbered from 1 without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationEvent {
    /// Its number.
    pub sequence: u64,
    /// When it happened.
    pub time: Millis,
    /// The account it is about; empty for the operation.
    pub account_id: String,
    /// What happened.
    pub event: Event,
}

impl OperationEvent {
    /// Whether it ends the operation.
    pub fn is_final(&self) -> bool {
        matches!(&self.event, Event::StateChanged { state, .. } if state.is_final())
    }
}

/// An account a selector matched and that is not worked on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAccount {
    /// The account.
    pub account: AccountInfo,
    /// Its OU's path.
    pub parent_path: String,
    /// Why.
    pub reason: String,
}

/// How planning an account came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    /// The role is as specified.
    InSync,
    /// Changes are needed.
    Changes,
    /// A role of that name exists that is not this spec's.
    Conflict,
    /// The account could not be read.
    Failed,
}

/// The plan for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPlanView {
    /// The account.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// The role's ARN there.
    pub role_arn: String,
    /// How planning it came out.
    pub status: PlanStatus,
    /// The changes, in the order they would be made.
    pub changes: Vec<ShownChange>,
    /// Findings for it (a role crossrole does not own).
    pub findings: Vec<Finding>,
    /// Why it could not be planned.
    pub error: Option<AccountError>,
    /// IAM's unique id of the role found there; empty when there is none.
    pub role_id: String,
}

/// The trusted side's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPlanView {
    /// The trusted account.
    pub account_id: String,
    /// The AssumeRole policy's ARN.
    pub policy_arn: String,
    /// The changes, in order.
    pub changes: Vec<ShownChange>,
    /// Why it could not be planned.
    pub error: Option<AccountError>,
}

/// What an apply would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPlan {
    /// Findings about the spec (warnings, waived errors).
    pub findings: Vec<Finding>,
    /// One plan per target account.
    pub accounts: Vec<AccountPlanView>,
    /// Accounts matched and skipped.
    pub skipped: Vec<SkippedAccount>,
    /// The trusted side's plan, when the spec has a grant.
    pub grant: Option<GrantPlanView>,
    /// Set when the request's ExternalId was not compared with AWS's (a caller who may not read ExternalIds).
    pub external_id_note: String,
    /// When the organization the targets were selected from was read.
    pub organization_read_time: Option<Millis>,
    /// When the oldest tags the selector's tag conditions looked at were read; `None` without tag conditions.
    pub tags_read_time: Option<Millis>,
    /// What the plan found, for an apply to carry (opaque; crossroled's own).
    pub fingerprint: String,
}

/// How a plan reads the organization to find its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrganizationRead {
    /// From the cached tree and tags (read afresh when the selector names what the tree does not have).
    #[default]
    Cached,
    /// As an apply reads it: the selected part afresh, tags as an apply uses them.
    AsApply,
    /// Everything afresh: the whole organization and the tags the selector looks at.
    Fresh,
}

impl AccessPlan {
    /// Accounts with at least one change.
    pub fn accounts_with_changes(&self) -> usize {
        self.accounts.iter().filter(|a| !a.changes.is_empty()).count()
    }

    /// Changes in all, the trusted side's included.
    pub fn total_changes(&self) -> usize {
        self.accounts.iter().map(|a| a.changes.len()).sum::<usize>()
            + self.grant.as_ref().map(|g| g.changes.len()).unwrap_or(0)
    }
}

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The check passed.
    Passed,
    /// The check failed; the error or reason says why.
    Failed,
    /// Not run; the reason says why.
    Skipped,
}

/// A live AssumeRole as the trusted side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeCheck {
    /// How it came out.
    pub outcome: CheckOutcome,
    /// Who assumed.
    pub caller_arn: String,
    /// The assumed identity's ARN.
    pub assumed_arn: String,
    /// The account the assumed credentials act in.
    pub assumed_account_id: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, or why it was skipped.
    pub error: String,
}

impl AssumeCheck {
    /// A check not run, and why.
    pub fn skipped(reason: impl Into<String>) -> AssumeCheck {
        AssumeCheck {
            outcome: CheckOutcome::Skipped,
            caller_arn: String::new(),
            assumed_arn: String::new(),
            assumed_account_id: String::new(),
            attempts: 0,
            error: reason.into(),
        }
    }
}

/// The trust policy evaluated for one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustCheck {
    /// The principal (and the case, such as "without the ExternalId").
    pub principal_arn: String,
    /// How it came out.
    pub outcome: CheckOutcome,
    /// The statement and condition that decided.
    pub reason: String,
}

/// Whether an account's role is as specified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conformance {
    /// As specified.
    InSync,
    /// Exists, is this spec's, differs.
    Drifted,
    /// The role does not exist in the account.
    Missing,
    /// Exists and is not this spec's.
    NotOwned,
    /// Could not be read.
    Unknown,
}

/// One account's verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountVerification {
    /// The account.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// The role's ARN there.
    pub role_arn: String,
    /// Whether the role is as specified.
    pub conformance: Conformance,
    /// What an apply would change, when drifted.
    pub drift: Vec<ShownChange>,
    /// The live check.
    pub assume: AssumeCheck,
    /// The static checks.
    pub trust_checks: Vec<TrustCheck>,
    /// Why it could not be verified.
    pub error: Option<AccountError>,
}

/// A verification of every target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// One per target account.
    pub accounts: Vec<AccountVerification>,
    /// Accounts matched and skipped.
    pub skipped: Vec<SkippedAccount>,
    /// Set when the request's ExternalId was not compared with AWS's (a caller who may not read ExternalIds).
    pub external_id_note: String,
}
