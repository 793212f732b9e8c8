//! Access bindings: specs crossroled keeps true over time, reconciled on an interval, and where each account
//! stands after the last reconcile.
//!
//! A binding as given ([`RawBinding`]) is validated here into a [`Binding`]; the engine stores it (its ExternalId
//! sealed), reconciles it and turns each finished reconcile into a [`BindingStatus`] with
//! [`BindingStatus::from_results`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    AccessSpec, Error, FieldViolation,
    expiry::{self, RawEnd},
    ops::{AccountError, AccountResult, Action, ErrorCode, Millis, Outcome, ShownChange},
    spec::{Choice, RawDuration, RawSpec},
};

/// Shortest reconcile interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Longest reconcile interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The interval when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Why a binding may not say `role.adopt_existing`: it would take over every role of its name made by hand, in every
/// target account, at every reconcile, scheduled ones with nobody present, without anyone seeing how it differs.
pub const ADOPT_EXISTING_REFUSED: &str = "a binding never takes over roles made by hand on its own: adopt_existing \
     would take over every role of this name made without crossrole, in every target account, now and at every \
     later reconcile, without anyone seeing how it differs from the spec; take them over with `crossrole adopt -f \
     <spec file>` (it shows each diff and asks, account by account), then bind the spec without adopt_existing";

/// What a reconcile does about drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingMode {
    /// Apply the changes that bring each account back to the spec.
    #[default]
    Enforce,
    /// Report drift, change nothing (a dry run).
    Detect,
}

/// A binding as given, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawBinding {
    /// The binding's name; empty for the spec's.
    pub name: String,
    /// The spec it keeps true.
    pub spec: Option<RawSpec>,
    /// Its mode; left out for ENFORCE.
    pub mode: Choice<BindingMode>,
    /// How often it reconciles; left out for 15 minutes.
    pub reconcile_interval: Option<RawDuration>,
    /// When its access ends, if it does: at a time, or after a duration from its creation (or update).
    pub end: RawEnd,
}

/// A valid binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Its name: the spec's.
    pub name: String,
    /// The spec it keeps true.
    pub spec: AccessSpec,
    /// What a reconcile does about drift.
    pub mode: BindingMode,
    /// How often it reconciles, from 10 seconds to 7 days.
    pub reconcile_interval: Duration,
    /// When its access ends (its roles' trust and the trusted side's grant removed), if it does.
    pub expires_at: Option<Millis>,
}

impl Binding {
    /// Validates `raw` at `now` (an end must lie ahead of it: [`expiry::end`]); fields are named under `binding.`
    /// (the spec's under `binding.spec.`). A spec that does not validate is reported alone: the other rules are
    /// about a spec that does.
    pub fn validate(raw: &RawBinding, now: Millis) -> Result<Binding, Error> {
        let spec = raw.spec.as_ref().ok_or_else(|| Error::invalid("binding.spec", "required"))?;
        let spec = AccessSpec::try_from(spec).map_err(|e| e.under("binding.spec"))?;
        let mut violations = Vec::new();
        let name = if raw.name.is_empty() { spec.name.clone() } else { raw.name.clone() };
        if name != spec.name {
            violations.push(FieldViolation::new("binding.name", format!("must be the spec's name ({:?})", spec.name)));
        }
        let mode = match raw.mode {
            Choice::Unspecified => BindingMode::Enforce,
            Choice::Is(m) => m,
            Choice::Unknown(_) => {
                violations.push(FieldViolation::new("binding.mode", "must be ENFORCE or DETECT"));
                BindingMode::Enforce
            }
        };
        let reconcile_interval = match raw.reconcile_interval {
            None => DEFAULT_INTERVAL,
            Some(d) if d.seconds >= MIN_INTERVAL.as_secs() as i64 && d.seconds <= MAX_INTERVAL.as_secs() as i64 => {
                Duration::from_secs(d.seconds as u64)
            }
            Some(d) => {
                violations.push(FieldViolation::new(
                    "binding.reconcile_interval",
                    format!("must be from 10s to 7 days, got {}s", d.seconds),
                ));
                DEFAULT_INTERVAL
            }
        };
        if spec.role.adopt_existing {
            violations.push(FieldViolation::new("binding.spec.role.adopt_existing", ADOPT_EXISTING_REFUSED));
        }
        // An account approved without the role's id would take nothing over, at every reconcile: said now.
        for account in spec.role.adopt_accounts.iter().filter(|a| !spec.role.adopt_role_ids.contains_key(*a)) {
            violations.push(FieldViolation::new(
                "binding.spec.role.adopt_role_ids",
                format!(
                    "no id for the role approved in {account} (role.adopt_accounts lists it): a binding takes over only \
                     the role a person approved, by its id; `crossrole adopt -f <spec file>` shows each role's diff \
                     and records the ids approved"
                ),
            ));
        }
        let expires_at = expiry::end(&raw.end, now, "binding").unwrap_or_else(|v| {
            violations.push(v);
            None
        });
        if !violations.is_empty() {
            return Err(Error::Invalid(violations));
        }
        Ok(Binding { name, spec, mode, reconcile_interval, expires_at })
    }
}

/// A stored binding as callers see it: its spec's ExternalId replaced by its mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingView {
    /// Its name: the spec's.
    pub name: String,
    /// Its version, from 1, one up with every update.
    pub version: u64,
    /// The spec it keeps true.
    pub spec: RawSpec,
    /// What a reconcile does about drift.
    pub mode: BindingMode,
    /// How often it reconciles.
    pub reconcile_interval: Duration,
    /// When it was created.
    pub create_time: Millis,
    /// When it was last updated.
    pub update_time: Millis,
    /// When its access ends, if it does.
    pub expires_at: Option<Millis>,
    /// Where it stands (a listing leaves out the accounts, not their counts).
    pub status: BindingStatus,
}

/// Where an account stands after a binding's last reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Drift found and left (DETECT mode).
    Drifted,
    /// The reconcile failed here, or skipped a role it does not own.
    Failed,
    /// Not reconciled yet (not started, or still running).
    Pending,
    /// As the spec says.
    InSync,
    /// The binding's end came and its role here was removed (by the destroy its expiry started).
    Removed,
}

/// One account of a binding's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingAccountStatus {
    /// The account.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// Where it stands.
    pub state: SyncState,
    /// The changes the last reconcile made (found, in DETECT mode).
    pub changes: Vec<ShownChange>,
    /// Why it failed.
    pub error: Option<AccountError>,
    /// When the last reconcile finished with it.
    pub last_reconcile_time: Millis,
}

/// Where a binding stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingStatus {
    /// When the last reconcile ended; `None` before the first.
    pub last_reconcile_time: Option<Millis>,
    /// The last finished reconcile.
    pub last_operation_id: String,
    /// The reconcile running now, if any.
    pub running_operation_id: String,
    /// When the next reconcile is due; `None`: now.
    pub next_reconcile_time: Option<Millis>,
    /// Per account, drifted and failed first.
    pub accounts: Vec<BindingAccountStatus>,
    /// Accounts by state.
    pub counts: SyncCounts,
    /// The binding version the last reconcile ran; a newer version is reconciled at once.
    pub reconciled_version: u64,
    /// The destroy its end started, once it has ended (empty: it has not, or it has been extended since).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expiry_operation_id: String,
}

/// A binding's accounts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounts {
    /// As the spec says.
    pub in_sync: u32,
    /// Drift found and left.
    pub drifted: u32,
    /// Failed, or a role it does not own.
    pub failed: u32,
    /// Not reconciled yet.
    pub pending: u32,
    /// Its role removed by the binding's end.
    #[serde(default)]
    pub removed: u32,
}

impl SyncCounts {
    fn of(accounts: &[BindingAccountStatus]) -> SyncCounts {
        let count = |s: SyncState| accounts.iter().filter(|a| a.state == s).count() as u32;
        SyncCounts {
            in_sync: count(SyncState::InSync),
            drifted: count(SyncState::Drifted),
            failed: count(SyncState::Failed),
            pending: count(SyncState::Pending),
            removed: count(SyncState::Removed),
        }
    }
}

impl BindingStatus {
    /// The status after the reconcile `operation` ended at `end` with `results`: accounts whose role it removed
    /// and accounts that are not ACTIVE are left out; the next reconcile is due `interval` plus `jitter` later.
    pub fn from_results(
        operation: &str,
        end: Millis,
        results: Vec<AccountResult>,
        interval: Duration,
        jitter: Duration,
        reconciled_version: u64,
    ) -> BindingStatus {
        BindingStatus::of(operation, end, results, interval, jitter, reconciled_version, false)
    }

    /// The status after the destroy the binding's end started (`operation`) ended at `end` with `results`: each
    /// account whose role it removed (or found gone) is [`SyncState::Removed`] as of then, not in sync; one where
    /// it failed, or found a role it does not own, is failed. It names the destroy as the expiry's.
    pub fn after_expiry(
        operation: &str,
        end: Millis,
        results: Vec<AccountResult>,
        reconciled_version: u64,
    ) -> BindingStatus {
        let status =
            BindingStatus::of(operation, end, results, Duration::ZERO, Duration::ZERO, reconciled_version, true);
        BindingStatus { next_reconcile_time: None, expiry_operation_id: operation.to_string(), ..status }
    }

    /// The status while the destroy the binding's end started (`operation`) runs: every account is pending (its
    /// role being removed), none in sync.
    pub fn expiring(mut self, operation: &str) -> BindingStatus {
        for a in &mut self.accounts {
            a.state = SyncState::Pending;
            a.changes.clear();
        }
        self.counts = SyncCounts::of(&self.accounts);
        self.expiry_operation_id = operation.to_string();
        self.running_operation_id = operation.to_string();
        self
    }

    fn of(
        operation: &str,
        end: Millis,
        results: Vec<AccountResult>,
        interval: Duration,
        jitter: Duration,
        reconciled_version: u64,
        expired: bool,
    ) -> BindingStatus {
        let mut accounts: Vec<BindingAccountStatus> = results
            .into_iter()
            .filter(|r| expired || !(r.action == Some(Action::Remove) && r.outcome == Outcome::Changed))
            .filter_map(|r| {
                let state = match r.outcome {
                    Outcome::Changed | Outcome::Unchanged if expired => SyncState::Removed,
                    Outcome::Changed | Outcome::Unchanged => SyncState::InSync,
                    Outcome::Drifted => SyncState::Drifted,
                    Outcome::Failed => SyncState::Failed,
                    Outcome::Skipped if r.error.as_ref().is_some_and(|e| e.code == ErrorCode::AccountNotActive) => {
                        return None;
                    }
                    Outcome::Skipped => SyncState::Failed,
                    Outcome::Pending | Outcome::Running | Outcome::NotStarted => SyncState::Pending,
                };
                Some(BindingAccountStatus {
                    account_id: r.account_id,
                    account_name: r.account_name,
                    state,
                    changes: r.changes,
                    error: r.error,
                    last_reconcile_time: r.end_time.unwrap_or(end),
                })
            })
            .collect();
        accounts.sort_by(|a, b| (a.state, &a.account_id).cmp(&(b.state, &b.account_id)));
        let after = (interval + jitter).as_millis() as i64;
        BindingStatus {
            last_reconcile_time: Some(end),
            last_operation_id: operation.to_string(),
            running_operation_id: String::new(),
            next_reconcile_time: Some(end.saturating_add(after)),
            counts: SyncCounts::of(&accounts),
            accounts,
            reconciled_version,
            expiry_operation_id: String::new(),
        }
    }

    /// The status after a reconcile of only some accounts (`scope`: those an Organizations event named): their
    /// states from `results` replace what the status said of them, the other accounts' stay, and when the next
    /// full reconcile is due and which version was reconciled do not change.
    pub fn merged(
        mut self,
        operation: &str,
        end: Millis,
        scope: &std::collections::BTreeSet<String>,
        results: Vec<AccountResult>,
    ) -> BindingStatus {
        let fresh = BindingStatus::from_results(
            operation,
            end,
            results,
            Duration::ZERO,
            Duration::ZERO,
            self.reconciled_version,
        );
        self.accounts.retain(|a| !scope.contains(&a.account_id));
        self.accounts.extend(fresh.accounts);
        self.accounts.sort_by(|a, b| (a.state, &a.account_id).cmp(&(b.state, &b.account_id)));
        self.counts = SyncCounts::of(&self.accounts);
        self.last_operation_id = operation.to_string();
        self.last_reconcile_time = Some(end);
        self.running_operation_id.clear();
        self
    }

    /// Whether a reconcile is due at `now` for a binding at `version`.
    pub fn due(&self, version: u64, now: Millis) -> bool {
        self.reconciled_version != version || self.next_reconcile_time.unwrap_or(0) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Phase;

    fn raw() -> RawBinding {
        let spec = AccessSpec::from_yaml(
            "name: audit\nrole: {name: Audit, trust: {account_ids: ['111111111111'], external_id: \
             'a-long-enough-external-id'}}\ntargets: {account_ids: ['222222222222']}\n",
        )
        .unwrap();
        RawBinding { spec: Some(RawSpec::from(&spec)), ..Default::default() }
    }

    #[test]
    fn a_binding_takes_its_specs_name_and_the_defaults() {
        let b = Binding::validate(&raw(), 0).unwrap();
        assert_eq!((b.name.as_str(), b.mode, b.reconcile_interval), ("audit", BindingMode::Enforce, DEFAULT_INTERVAL));
        assert_eq!(b.expires_at, None);
        let mut r = raw();
        r.end.expires_in = Some(RawDuration { seconds: 4 * 3600, nanos: 0 });
        assert_eq!(Binding::validate(&r, 5_000).unwrap().expires_at, Some(5_000 + 4 * 3_600_000));
    }

    /// A binding reconciles with nobody present: it never takes over roles nobody approved — not every hand-made
    /// role (adopt_existing), and not an account listed without the id of the role approved there.
    #[test]
    fn a_binding_adopts_only_roles_approved_by_their_id() {
        let adopting = |role: &str| {
            let mut r = raw();
            r.spec = Some(RawSpec::from(
                &AccessSpec::from_yaml(&format!(
                    "name: audit\nrole: {{name: Audit, trust: {{account_ids: ['111111111111'], external_id: \
                     'a-long-enough-external-id'}}, {role}}}\ntargets: {{account_ids: ['222222222222']}}\n"
                ))
                .unwrap(),
            ));
            Binding::validate(&r, 0).map_err(|e| e.to_string())
        };
        let refused = adopting("adopt_existing: true").unwrap_err();
        assert!(refused.contains("binding.spec.role.adopt_existing: a binding never takes over"), "{refused}");
        let refused = adopting("adopt_accounts: ['222222222222']").unwrap_err();
        assert!(
            refused.contains("binding.spec.role.adopt_role_ids: no id for the role approved in 222222222222"),
            "{refused}"
        );
        let approved =
            adopting("adopt_accounts: ['222222222222'], adopt_role_ids: {'222222222222': AROAHANDMADE000000001}");
        assert!(approved.is_ok(), "{approved:?}");
    }

    #[test]
    fn every_field_past_the_rules_is_named() {
        let mut r = raw();
        r.name = "other".into();
        r.mode = Choice::Unknown(9);
        r.reconcile_interval = Some(RawDuration { seconds: 5, nanos: 0 });
        r.end.expires_at = Some(1000);
        let fields: Vec<String> =
            Binding::validate(&r, 1000).unwrap_err().violations().iter().map(|v| v.field.clone()).collect();
        assert_eq!(fields, ["binding.name", "binding.mode", "binding.reconcile_interval", "binding.expires_at"]);
        let mut r = raw();
        r.spec.as_mut().unwrap().role.as_mut().unwrap().name = String::new();
        let e = Binding::validate(&r, 0).unwrap_err();
        assert!(e.violations().iter().all(|v| v.field.starts_with("binding.spec.role")), "{e}");
        let e = Binding::validate(&RawBinding::default(), 0).unwrap_err();
        assert_eq!(e.to_string(), "invalid input: binding.spec: required");
    }

    fn result(account: &str, outcome: Outcome, action: Action, code: Option<ErrorCode>) -> AccountResult {
        AccountResult {
            account_id: account.into(),
            account_name: String::new(),
            index: 0,
            outcome,
            phase: Phase::Done,
            role_arn: String::new(),
            changes: vec![],
            error: code.map(|c| AccountError::new(c, "why", Phase::Queued)),
            verify: None,
            end_time: None,
            action: Some(action),
        }
    }

    #[test]
    fn the_status_puts_drift_and_failures_first_and_leaves_out_removed_and_inactive_accounts() {
        let results = vec![
            result("1", Outcome::Unchanged, Action::Ensure, None),
            result("2", Outcome::Failed, Action::Ensure, Some(ErrorCode::AwsError)),
            result("3", Outcome::Drifted, Action::Ensure, None),
            result("4", Outcome::Changed, Action::Remove, None),
            result("5", Outcome::Skipped, Action::Ensure, Some(ErrorCode::AccountNotActive)),
            result("6", Outcome::Skipped, Action::Ensure, Some(ErrorCode::NotOwned)),
            result("7", Outcome::NotStarted, Action::Ensure, Some(ErrorCode::NotStarted)),
        ];
        let s = BindingStatus::from_results("op", 1000, results, Duration::from_secs(60), Duration::from_secs(3), 2);
        let order: Vec<(&str, SyncState)> = s.accounts.iter().map(|a| (a.account_id.as_str(), a.state)).collect();
        assert_eq!(
            order,
            [
                ("3", SyncState::Drifted),
                ("2", SyncState::Failed),
                ("6", SyncState::Failed),
                ("7", SyncState::Pending),
                ("1", SyncState::InSync)
            ]
        );
        assert_eq!(s.counts, SyncCounts { in_sync: 1, drifted: 1, failed: 2, pending: 1, removed: 0 });
        assert_eq!(s.next_reconcile_time, Some(64_000));
        assert!(!s.due(2, 63_999) && s.due(2, 64_000) && s.due(3, 0));
    }

    /// An outside tester's note: an expired binding's status listed its accounts in sync after the expiry removed
    /// their roles. While the destroy runs they are pending; once it has ended, each is removed as of its end (a
    /// failure stays a failure: its role may be left), and nothing is due.
    #[test]
    fn an_expired_bindings_accounts_are_removed_not_in_sync() {
        let reconciled = vec![
            result("1", Outcome::Unchanged, Action::Ensure, None),
            result("2", Outcome::Changed, Action::Ensure, None),
            result("3", Outcome::Unchanged, Action::Ensure, None),
        ];
        let before = BindingStatus::from_results("r", 1000, reconciled, Duration::from_secs(60), Duration::ZERO, 1);
        assert_eq!(before.counts.in_sync, 3);
        let expiring = before.expiring("x");
        assert_eq!(expiring.counts, SyncCounts { pending: 3, ..Default::default() });
        assert_eq!((expiring.expiry_operation_id.as_str(), expiring.running_operation_id.as_str()), ("x", "x"));

        let mut gone = result("1", Outcome::Changed, Action::Remove, None);
        gone.end_time = Some(5_000);
        let destroyed = vec![
            gone,
            result("2", Outcome::Unchanged, Action::Remove, None),
            result("3", Outcome::Failed, Action::Remove, Some(ErrorCode::AwsError)),
        ];
        let s = BindingStatus::after_expiry("x", 6_000, destroyed, 1);
        let states: Vec<(&str, SyncState, Millis)> =
            s.accounts.iter().map(|a| (a.account_id.as_str(), a.state, a.last_reconcile_time)).collect();
        assert_eq!(
            states,
            [("3", SyncState::Failed, 6_000), ("1", SyncState::Removed, 5_000), ("2", SyncState::Removed, 6_000)]
        );
        assert_eq!(s.counts, SyncCounts { failed: 1, removed: 2, ..Default::default() });
        assert_eq!((s.last_operation_id.as_str(), s.expiry_operation_id.as_str()), ("x", "x"));
        assert_eq!(s.next_reconcile_time, None);
    }

    #[test]
    fn a_reconcile_of_some_accounts_replaces_only_theirs_and_keeps_the_schedule() {
        let results = vec![
            result("1", Outcome::Unchanged, Action::Ensure, None),
            result("2", Outcome::Failed, Action::Ensure, Some(ErrorCode::AwsError)),
            result("3", Outcome::Unchanged, Action::Ensure, None),
        ];
        let full = BindingStatus::from_results("full", 1000, results, Duration::from_secs(60), Duration::ZERO, 2);
        // Account 2 recovered, 3 left the organization (no result), 9 joined.
        let scope: std::collections::BTreeSet<String> = ["2", "3", "9"].map(String::from).into();
        let scoped = vec![
            result("2", Outcome::Changed, Action::Ensure, None),
            result("9", Outcome::Changed, Action::Ensure, None),
        ];
        let s = full.clone().merged("events", 5000, &scope, scoped);
        let order: Vec<(&str, SyncState)> = s.accounts.iter().map(|a| (a.account_id.as_str(), a.state)).collect();
        assert_eq!(order, [("1", SyncState::InSync), ("2", SyncState::InSync), ("9", SyncState::InSync)]);
        assert_eq!(s.counts, SyncCounts { in_sync: 3, ..Default::default() });
        assert_eq!((s.next_reconcile_time, s.reconciled_version), (full.next_reconcile_time, 2));
        assert_eq!((s.last_operation_id.as_str(), s.last_reconcile_time), ("events", Some(5000)));
    }
}
