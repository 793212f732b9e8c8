//! `--output json`: typed views of the API's messages, serialized with serde. Enum values by their short name
//! (`changed`, `in sync`), times in RFC 3339 (`null` when unset), field names stable across releases.

use std::collections::BTreeMap;

use crossrole_client::proto;
use serde::Serialize;

use crate::views::{self, time};

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print(value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

/// A change.
#[derive(Serialize)]
pub(crate) struct Change<'a> {
    kind: String,
    subject: &'a str,
    before: &'a str,
    after: &'a str,
}

impl<'a> From<&'a proto::Change> for Change<'a> {
    fn from(c: &'a proto::Change) -> Self {
        Change { kind: views::change_kind(c.kind), subject: &c.subject, before: &c.before, after: &c.after }
    }
}

fn changes(c: &[proto::Change]) -> Vec<Change<'_>> {
    c.iter().map(Change::from).collect()
}

/// Why an account failed, was skipped or was not started.
#[derive(Serialize)]
pub(crate) struct AccountError<'a> {
    code: &'a str,
    message: &'a str,
    aws_error_code: &'a str,
    phase: String,
}

fn error(e: &Option<proto::AccountError>) -> Option<AccountError<'_>> {
    e.as_ref().map(|e| AccountError {
        code: &e.code,
        message: &e.message,
        aws_error_code: &e.aws_error_code,
        phase: views::phase(e.phase),
    })
}

/// Accounts by outcome.
#[derive(Serialize)]
pub(crate) struct Counts {
    total: u32,
    pending: u32,
    running: u32,
    changed: u32,
    unchanged: u32,
    failed: u32,
    skipped: u32,
    not_started: u32,
    drifted: u32,
}

impl From<&proto::OperationCounts> for Counts {
    fn from(c: &proto::OperationCounts) -> Self {
        Counts {
            total: c.total,
            pending: c.pending,
            running: c.running,
            changed: c.changed,
            unchanged: c.unchanged,
            failed: c.failed,
            skipped: c.skipped,
            not_started: c.not_started,
            drifted: c.drifted,
        }
    }
}

/// An apply's operation, with the end of the access it applies (`null`: the access lasts).
#[derive(Serialize)]
pub(crate) struct Applied<'a> {
    #[serde(flatten)]
    operation: Operation<'a>,
    expires_at: Option<String>,
}

impl<'a> Applied<'a> {
    /// `operation`, applying access that ends at `end`.
    pub(crate) fn new(operation: &'a proto::Operation, end: &Option<prost_types::Timestamp>) -> Applied<'a> {
        Applied { operation: Operation::from(operation), expires_at: time(end) }
    }
}

/// An operation.
#[derive(Serialize)]
pub(crate) struct Operation<'a> {
    id: &'a str,
    kind: String,
    state: String,
    spec: Option<&'a str>,
    message: &'a str,
    created_by: &'a str,
    create_time: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    counts: Counts,
    aws_calls: BTreeMap<&'a str, u64>,
    throttled_calls: u64,
    last_sequence: u64,
    dry_run: bool,
    idempotency_key: &'a str,
    binding: &'a str,
    /// Why crossroled cannot read it, when it cannot (left out otherwise).
    #[serde(skip_serializing_if = "str::is_empty")]
    unreadable: &'a str,
}

impl<'a> From<&'a proto::Operation> for Operation<'a> {
    fn from(o: &'a proto::Operation) -> Self {
        Operation {
            id: &o.id,
            kind: views::kind(o.kind),
            state: views::state(o.state),
            spec: o.spec.as_ref().map(|s| s.name.as_str()),
            message: &o.message,
            created_by: &o.created_by,
            create_time: time(&o.create_time),
            start_time: time(&o.start_time),
            end_time: time(&o.end_time),
            counts: (&o.counts.unwrap_or_default()).into(),
            aws_calls: o.aws_calls.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
            throttled_calls: o.throttled_calls,
            last_sequence: o.last_sequence,
            dry_run: o.dry_run,
            idempotency_key: &o.idempotency_key,
            binding: &o.binding_name,
            unreadable: &o.unreadable,
        }
    }
}

/// The live check, in short.
#[derive(Serialize)]
pub(crate) struct VerifySummary<'a> {
    passed: bool,
    assumed_account_id: &'a str,
    attempts: u32,
    error: &'a str,
}

/// An account's result.
#[derive(Serialize)]
pub(crate) struct AccountResult<'a> {
    account_id: &'a str,
    account_name: &'a str,
    outcome: String,
    action: String,
    role_arn: &'a str,
    changes: Vec<Change<'a>>,
    error: Option<AccountError<'a>>,
    verify: Option<VerifySummary<'a>>,
    /// Why crossroled cannot read it, when it cannot (left out otherwise).
    #[serde(skip_serializing_if = "str::is_empty")]
    unreadable: &'a str,
}

impl<'a> From<&'a proto::AccountResult> for AccountResult<'a> {
    fn from(r: &'a proto::AccountResult) -> Self {
        AccountResult {
            account_id: &r.account_id,
            account_name: &r.account_name,
            outcome: views::outcome(r.outcome),
            action: views::action(r.action),
            role_arn: &r.role_arn,
            changes: changes(&r.changes),
            error: error(&r.error),
            verify: r.verify.as_ref().map(|v| VerifySummary {
                passed: v.passed,
                assumed_account_id: &v.assumed_account_id,
                attempts: v.attempts,
                error: &v.error,
            }),
            unreadable: &r.unreadable,
        }
    }
}

/// What an event says, by kind.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Detail<'a> {
    /// The operation changed state.
    State { state: String, message: &'a str, counts: Option<Counts> },
    /// The targets are resolved.
    Targets { targets: u32, skipped: u32, cleanup: u32 },
    /// An account entered a phase.
    Phase { phase: String },
    /// A change was applied.
    Change(Option<Change<'a>>),
    /// An AWS call is retried.
    Retry { call: &'a str, aws_error_code: &'a str, attempt: u32, delay_ms: u64 },
    /// An account finished.
    Finished(Option<AccountResult<'a>>),
    /// An event this CLI does not know.
    Unknown,
}

/// An event of an operation.
#[derive(Serialize)]
pub(crate) struct Event<'a> {
    sequence: u64,
    time: Option<String>,
    account_id: &'a str,
    event: &'static str,
    detail: Detail<'a>,
}

impl<'a> From<&'a proto::OperationEvent> for Event<'a> {
    fn from(e: &'a proto::OperationEvent) -> Self {
        use proto::operation_event::Event as E;
        let (event, detail) = match &e.event {
            Some(E::StateChanged(s)) => (
                "state_changed",
                Detail::State {
                    state: views::state(s.state),
                    message: &s.message,
                    counts: s.counts.as_ref().map(Counts::from),
                },
            ),
            Some(E::TargetsResolved(t)) => (
                "targets_resolved",
                Detail::Targets { targets: t.target_count, skipped: t.skipped_count, cleanup: t.cleanup_count },
            ),
            Some(E::PhaseStarted(p)) => ("phase_started", Detail::Phase { phase: views::phase(p.phase) }),
            Some(E::ChangeApplied(c)) => ("change_applied", Detail::Change(c.change.as_ref().map(Change::from))),
            Some(E::CallRetried(r)) => (
                "call_retried",
                Detail::Retry {
                    call: &r.call,
                    aws_error_code: &r.aws_error_code,
                    attempt: r.attempt,
                    delay_ms: r.delay_ms,
                },
            ),
            Some(E::AccountFinished(f)) => {
                ("account_finished", Detail::Finished(f.result.as_ref().map(AccountResult::from)))
            }
            None => ("unknown", Detail::Unknown),
        };
        Event { sequence: e.sequence, time: time(&e.time), account_id: &e.account_id, event, detail }
    }
}

/// A skipped account, by id.
#[derive(Serialize)]
pub(crate) struct Skipped<'a> {
    account_id: Option<&'a str>,
    reason: &'a str,
}

fn skipped(s: &[proto::SkippedAccount]) -> Vec<Skipped<'_>> {
    s.iter().map(|s| Skipped { account_id: s.account.as_ref().map(|a| a.id.as_str()), reason: &s.reason }).collect()
}

/// `crossrole validate`.
#[derive(Serialize)]
pub(crate) struct Validation<'a> {
    /// Always true: an invalid spec is an error.
    pub(crate) valid: bool,
    /// Findings, one line each.
    pub(crate) findings: Vec<String>,
    /// The trust policy the spec makes.
    pub(crate) trust_policy: &'a str,
}

/// One account's plan.
#[derive(Serialize)]
pub(crate) struct AccountPlan<'a> {
    account_id: &'a str,
    account_name: &'a str,
    role_arn: &'a str,
    status: String,
    changes: Vec<Change<'a>>,
    findings: Vec<String>,
    error: Option<AccountError<'a>>,
}

/// The trusted side's plan.
#[derive(Serialize)]
pub(crate) struct GrantPlan<'a> {
    account_id: &'a str,
    policy_arn: &'a str,
    changes: Vec<Change<'a>>,
    error: Option<AccountError<'a>>,
}

/// `crossrole plan`.
#[derive(Serialize)]
pub(crate) struct Plan<'a> {
    findings: Vec<String>,
    accounts: Vec<AccountPlan<'a>>,
    grant: Option<GrantPlan<'a>>,
    skipped: Vec<Skipped<'a>>,
    accounts_with_changes: u32,
    total_changes: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    external_id_note: &'a str,
    /// When the organization the targets were selected from was read.
    organization_read_time: Option<String>,
    /// When the oldest account tags a tag condition looked at were read (null without tag conditions).
    tags_read_time: Option<String>,
    /// What the plan found, for `crossrole apply --plan` to apply as it is, or not at all.
    fingerprint: &'a str,
}

impl<'a> Plan<'a> {
    /// The plan, findings written as lines by `finding`.
    pub(crate) fn new(plan: &'a proto::AccessPlan, finding: impl Fn(&proto::Finding) -> String) -> Plan<'a> {
        Plan {
            findings: plan.findings.iter().map(&finding).collect(),
            accounts: plan
                .accounts
                .iter()
                .map(|a| AccountPlan {
                    account_id: &a.account_id,
                    account_name: &a.account_name,
                    role_arn: &a.role_arn,
                    status: views::plan_status(a.status),
                    changes: changes(&a.changes),
                    findings: a.findings.iter().map(&finding).collect(),
                    error: error(&a.error),
                })
                .collect(),
            grant: plan.grant.as_ref().map(|g| GrantPlan {
                account_id: &g.account_id,
                policy_arn: &g.policy_arn,
                changes: changes(&g.changes),
                error: error(&g.error),
            }),
            skipped: skipped(&plan.skipped),
            accounts_with_changes: plan.accounts_with_changes,
            total_changes: plan.total_changes,
            external_id_note: &plan.external_id_note,
            organization_read_time: time(&plan.organization_read_time),
            tags_read_time: time(&plan.tags_read_time),
            fingerprint: &plan.fingerprint,
        }
    }
}

/// `crossrole apply` when there is nothing to do.
#[derive(Serialize)]
pub(crate) struct NoChanges {
    /// Always 0.
    pub(crate) changes: u32,
}

/// The live check.
#[derive(Serialize)]
pub(crate) struct AssumeCheck<'a> {
    outcome: String,
    caller_arn: &'a str,
    assumed_arn: &'a str,
    assumed_account_id: &'a str,
    attempts: u32,
    error: &'a str,
}

/// One static check.
#[derive(Serialize)]
pub(crate) struct TrustCheck<'a> {
    principal: &'a str,
    outcome: String,
    reason: &'a str,
}

/// One account's verification.
#[derive(Serialize)]
pub(crate) struct AccountVerification<'a> {
    account_id: &'a str,
    account_name: &'a str,
    role_arn: &'a str,
    conformance: String,
    drift: Vec<Change<'a>>,
    assume: Option<AssumeCheck<'a>>,
    trust_checks: Vec<TrustCheck<'a>>,
    error: Option<AccountError<'a>>,
}

/// `crossrole verify`.
#[derive(Serialize)]
pub(crate) struct Verification<'a> {
    accounts: Vec<AccountVerification<'a>>,
    skipped: Vec<Skipped<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    external_id_note: &'a str,
}

impl<'a> From<&'a proto::VerifyAccessResponse> for Verification<'a> {
    fn from(r: &'a proto::VerifyAccessResponse) -> Self {
        Verification {
            external_id_note: &r.external_id_note,
            accounts: r
                .accounts
                .iter()
                .map(|a| AccountVerification {
                    account_id: &a.account_id,
                    account_name: &a.account_name,
                    role_arn: &a.role_arn,
                    conformance: views::conformance(a.conformance),
                    drift: changes(&a.drift),
                    assume: a.assume.as_ref().map(|c| AssumeCheck {
                        outcome: views::check(c.outcome),
                        caller_arn: &c.caller_arn,
                        assumed_arn: &c.assumed_arn,
                        assumed_account_id: &c.assumed_account_id,
                        attempts: c.attempts,
                        error: &c.error,
                    }),
                    trust_checks: a
                        .trust_checks
                        .iter()
                        .map(|c| TrustCheck {
                            principal: &c.principal_arn,
                            outcome: views::check(c.outcome),
                            reason: &c.reason,
                        })
                        .collect(),
                    error: error(&a.error),
                })
                .collect(),
            skipped: skipped(&r.skipped),
        }
    }
}

/// A Switch Role link.
#[derive(Serialize)]
pub(crate) struct Link<'a> {
    account_id: &'a str,
    account_name: &'a str,
    role_arn: &'a str,
    url: &'a str,
    unusable_reason: &'a str,
    applied: bool,
}

impl<'a> From<&'a proto::SwitchRoleLink> for Link<'a> {
    fn from(l: &'a proto::SwitchRoleLink) -> Self {
        Link {
            account_id: &l.account_id,
            account_name: &l.account_name,
            role_arn: &l.role_arn,
            url: &l.url,
            unusable_reason: &l.unusable_reason,
            applied: l.applied,
        }
    }
}

/// An OU and what is under it.
#[derive(Serialize)]
pub(crate) struct Unit<'a> {
    id: &'a str,
    name: &'a str,
    path: &'a str,
    account_ids: &'a [String],
    children: Vec<Unit<'a>>,
}

impl<'a> From<&'a proto::OrganizationalUnit> for Unit<'a> {
    fn from(u: &'a proto::OrganizationalUnit) -> Self {
        Unit {
            id: &u.id,
            name: &u.name,
            path: &u.path,
            account_ids: &u.account_ids,
            children: u.children.iter().map(Unit::from).collect(),
        }
    }
}

/// `crossrole org`.
#[derive(Serialize)]
pub(crate) struct Organization<'a> {
    id: &'a str,
    arn: &'a str,
    management_account_id: &'a str,
    account_count: u32,
    root: Option<Unit<'a>>,
}

impl<'a> From<&'a proto::Organization> for Organization<'a> {
    fn from(o: &'a proto::Organization) -> Self {
        Organization {
            id: &o.id,
            arn: &o.arn,
            management_account_id: &o.management_account_id,
            account_count: o.account_count,
            root: o.root.as_ref().map(Unit::from),
        }
    }
}

/// An account.
#[derive(Serialize)]
pub(crate) struct Account<'a> {
    id: &'a str,
    name: &'a str,
    email: &'a str,
    state: String,
    path: &'a str,
    tags: &'a BTreeMap<String, String>,
}

/// A skipped account in `crossrole accounts`.
#[derive(Serialize)]
pub(crate) struct SkippedById<'a> {
    id: Option<&'a str>,
    reason: &'a str,
}

/// `crossrole accounts`.
#[derive(Serialize)]
pub(crate) struct Accounts<'a> {
    accounts: Vec<Account<'a>>,
    skipped: Vec<SkippedById<'a>>,
}

impl<'a> Accounts<'a> {
    /// The selected accounts and the ones skipped.
    pub(crate) fn new(accounts: &'a [proto::Account], skipped: &'a [proto::SkippedAccount]) -> Accounts<'a> {
        Accounts {
            accounts: accounts
                .iter()
                .map(|a| Account {
                    id: &a.id,
                    name: &a.name,
                    email: &a.email,
                    state: views::account_state(a.state),
                    path: &a.parent_path,
                    tags: &a.tags,
                })
                .collect(),
            skipped: skipped
                .iter()
                .map(|s| SkippedById { id: s.account.as_ref().map(|a| a.id.as_str()), reason: &s.reason })
                .collect(),
        }
    }
}

/// A binding, as `crossrole bindings apply` stored it.
#[derive(Serialize)]
pub(crate) struct BindingStored<'a> {
    name: &'a str,
    version: u64,
    mode: String,
    interval: String,
    /// When its access ends (left out: it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

impl<'a> From<&'a proto::Binding> for BindingStored<'a> {
    fn from(b: &'a proto::Binding) -> Self {
        BindingStored {
            name: &b.name,
            version: b.version,
            mode: views::mode(b.mode),
            interval: views::interval(b),
            expires_at: time(&b.expires_at),
        }
    }
}

/// A binding in `crossrole bindings list`.
#[derive(Serialize)]
pub(crate) struct BindingRow<'a> {
    name: &'a str,
    version: u64,
    mode: String,
    interval: String,
    in_sync: u32,
    drifted: u32,
    failed: u32,
    pending: u32,
    /// Accounts whose role its end removed.
    removed: u32,
    last_reconcile_time: Option<String>,
    /// When its access ends (left out: it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    /// Why crossroled cannot read it, when it cannot (left out otherwise).
    #[serde(skip_serializing_if = "str::is_empty")]
    unreadable: &'a str,
}

impl<'a> From<&'a proto::Binding> for BindingRow<'a> {
    fn from(b: &'a proto::Binding) -> Self {
        let s = status(b);
        BindingRow {
            name: &b.name,
            version: b.version,
            mode: views::mode(b.mode),
            interval: views::interval(b),
            in_sync: s.in_sync,
            drifted: s.drifted,
            failed: s.failed,
            pending: s.pending,
            removed: s.removed,
            last_reconcile_time: time(&s.last_reconcile_time),
            expires_at: time(&b.expires_at),
            unreadable: &b.unreadable,
        }
    }
}

/// One account of a binding's status.
#[derive(Serialize)]
pub(crate) struct BindingAccount<'a> {
    account_id: &'a str,
    account_name: &'a str,
    state: String,
    changes: Vec<Change<'a>>,
    error: Option<AccountError<'a>>,
    last_reconcile_time: Option<String>,
}

/// `crossrole bindings status`.
#[derive(Serialize)]
pub(crate) struct BindingStatus<'a> {
    name: &'a str,
    version: u64,
    mode: String,
    interval: String,
    last_reconcile_time: Option<String>,
    next_reconcile_time: Option<String>,
    last_operation_id: &'a str,
    running_operation_id: &'a str,
    /// When its access ends (left out: it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    /// The destroy its end started (left out: it has not expired).
    #[serde(skip_serializing_if = "str::is_empty")]
    expiry_operation_id: &'a str,
    accounts: Vec<BindingAccount<'a>>,
}

impl<'a> From<&'a proto::Binding> for BindingStatus<'a> {
    fn from(b: &'a proto::Binding) -> Self {
        let s = status(b);
        BindingStatus {
            name: &b.name,
            version: b.version,
            mode: views::mode(b.mode),
            interval: views::interval(b),
            last_reconcile_time: time(&s.last_reconcile_time),
            next_reconcile_time: time(&s.next_reconcile_time),
            last_operation_id: &s.last_operation_id,
            running_operation_id: &s.running_operation_id,
            expires_at: time(&b.expires_at),
            expiry_operation_id: &s.expiry_operation_id,
            accounts: s
                .accounts
                .iter()
                .map(|a| BindingAccount {
                    account_id: &a.account_id,
                    account_name: &a.account_name,
                    state: views::sync(a.state),
                    changes: changes(&a.changes),
                    error: error(&a.error),
                    last_reconcile_time: time(&a.last_reconcile_time),
                })
                .collect(),
        }
    }
}

/// A binding's status; none yet reads as an empty one.
fn status(b: &proto::Binding) -> &proto::BindingStatus {
    static EMPTY: std::sync::LazyLock<proto::BindingStatus> = std::sync::LazyLock::new(proto::BindingStatus::default);
    b.status.as_ref().unwrap_or(&EMPTY)
}
