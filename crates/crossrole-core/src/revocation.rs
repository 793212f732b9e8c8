//! Revoking a role's sessions: the inline deny IAM's console writes for "Revoke active sessions", when crossrole
//! writes it, and when it takes it away.
//!
//! A role's temporary credentials stay valid until they expire, whatever happens to its trust policy afterwards.
//! IAM's answer is an inline policy named `AWSRevokeOlderSessions` that denies everything to every session whose
//! `aws:TokenIssueTime` is before an instant. crossrole writes the same policy, under the same name, when a change
//! takes access away: right after a narrowed trust is written, and before a role is removed (the deny stays until
//! the role goes); a console-written one on a role crossrole owns is merged with crossrole's (the later instant
//! wins) rather than replaced.
//!
//! The instant is taken when the deny is written (the apply's clock), not when it was planned: a principal the
//! narrowing removes that is issued a session after the plan, before the new trust is written, is denied too. What
//! is left is IAM's eventual consistency: for a few seconds after the trust is written, IAM may still issue a
//! session under the old one; a session issued after the deny's instant is not denied by it.
//!
//! The deny must stay until the longest session issued before it has expired: the role's maximum session duration
//! (the larger of before and after when a change moves it; sessions from role chaining last at most an hour, never
//! more than that). crossrole records that time in the statement's `Sid` (`CrossroleKeepUntil20261205T101500Z`:
//! IAM allows only letters and digits there), and a later plan (a reconcile) deletes the policy once it has passed.
//! A revocation without crossrole's `Sid` (the console's) is kept for the longest session IAM issues, 12 hours.
//!
//! A person may have put other statements in a policy of that name. They are not crossrole's: writing the
//! revocation replaces only the revocation statements (the console's and crossrole's, merged: the later instant
//! wins) and keeps every other statement as written ([`Others`]); removing it later takes only the revocation
//! statement away, and deletes the policy only when nothing else is left in it. The plan shows both. A role's inline
//! policies together may hold at most [`INLINE_POLICIES_SIZE`] characters: a revocation that would not fit beside
//! what is kept is refused when planned ([`over_quota`]), rather than written over the person's statements.
//!
//! Tests on emulators may shorten the hold ([`Revoke::HeldAtMost`]): IAM's shortest session is an hour, too long
//! for a real-time test to see the deny go. The keep-until written, and the plan, say the shortened time and the
//! setting that asked for it; crossroled refuses that setting unless its AWS endpoints are an emulator's.

use std::{
    collections::BTreeSet,
    time::{Duration, UNIX_EPOCH},
};

use serde_json::{Value, json};

use crate::{
    ops::Millis,
    plan::{AccountPlan, Change, ObservedRole},
    policy::{Effect, PolicyDocument, Principals, Statement},
    spec::{OWNER_TAG_KEY, SPEC_TAG_KEY},
};

/// The inline policy's name: the one IAM's console uses, so that either side sees the other's.
pub const POLICY_NAME: &str = "AWSRevokeOlderSessions";

/// The longest session IAM issues for a role (12 hours), in seconds: how long a revocation crossrole cannot date
/// is kept.
pub const LONGEST_SESSION_SECS: u32 = 43_200;

/// The most characters (whitespace aside) IAM allows a role's inline policies together: 10,240.
pub const INLINE_POLICIES_SIZE: usize = 10_240;

const SID_PREFIX: &str = "CrossroleKeepUntil";

/// A revocation: every session issued before `issued_before` is denied; the deny is kept until `keep_until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Sessions whose `aws:TokenIssueTime` is before this instant are denied (Unix ms, a whole second).
    pub issued_before: Millis,
    /// When the last session issued before it has expired, and the deny may go (Unix ms).
    pub keep_until: Millis,
}

impl Revocation {
    /// A revocation made at `now` (rounded up to the second: a session issued in the same second as the write is
    /// denied too) for a role whose sessions last at most `max_session_secs`.
    pub fn at(now: Millis, max_session_secs: u32) -> Revocation {
        let issued_before = now.div_euclid(1000) * 1000 + if now.rem_euclid(1000) == 0 { 0 } else { 1000 };
        Revocation { issued_before, keep_until: issued_before + i64::from(max_session_secs) * 1000 }
    }

    /// The revocation a planned one writes when it is written at `now` (the apply's clock, not the plan's) for a
    /// role whose sessions last at most `keep_for` seconds: the later instant, so that a session issued between the
    /// plan and the write (after the narrowing was planned, before it was written) is denied too.
    pub fn written_at(self, now: Millis, keep_for: u32) -> Revocation {
        self.merge(Revocation::at(now, keep_for))
    }

    /// This revocation and `other` as one: the later instant, kept for the later of the two.
    pub fn merge(self, other: Revocation) -> Revocation {
        Revocation {
            issued_before: self.issued_before.max(other.issued_before),
            keep_until: self.keep_until.max(other.keep_until),
        }
    }

    /// Whether it may be removed at `now`: every session it denies has expired.
    pub fn expired(&self, now: Millis) -> bool {
        now >= self.keep_until
    }

    /// The policy document IAM is sent, as IAM's console writes it, with the keep-until in its `Sid`.
    pub fn document(&self) -> String {
        self.document_keeping(&Others::default())
    }

    /// The policy document IAM is sent: the revocation statement, as IAM's console writes it with the keep-until in
    /// its `Sid`, followed by `others` as they were written (under the `Version` they were written under).
    pub fn document_keeping(&self, others: &Others) -> String {
        let mut statements = vec![json!({
            "Sid": format!("{SID_PREFIX}{}", compact(self.keep_until)),
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": { "DateLessThan": { "aws:TokenIssueTime": iso8601(self.issued_before) } },
        })];
        statements.extend(others.statements.iter().cloned());
        others.with_statements(statements)
    }

    /// The revocation a document read from IAM (URL-encoded or not) holds: its latest `DateLessThan` on
    /// `aws:TokenIssueTime` in a revocation statement (see [`split`]), kept until the time in crossrole's `Sid`, or
    /// for [`LONGEST_SESSION_SECS`] after its instant when it has none (the console's). `None` when it holds no such
    /// deny, or its time does not parse: crossrole cannot date it, and never removes it.
    pub fn parse(observed: &str) -> Option<Revocation> {
        split(observed).0
    }

    /// The revocation `s` makes, when it is a revocation statement: a `Deny` of every action on every resource,
    /// for no principal in particular, whose only condition is `DateLessThan` on `aws:TokenIssueTime` (what the
    /// console and crossrole write). A statement with anything more denies less, or other things: it is a person's.
    fn of_statement(s: &Statement) -> Option<Revocation> {
        let everything = |v: &Option<BTreeSet<String>>| v.as_ref().is_some_and(|v| v.len() == 1 && v.contains("*"));
        let only_issue_time = s.condition.len() == 1 && s.condition.get("DateLessThan").is_some_and(|c| c.len() == 1);
        if s.effect != Effect::Deny
            || !everything(&s.action)
            || !everything(&s.resource)
            || s.principal.is_some()
            || s.not_principal.is_some()
            || s.not_action.is_some()
            || s.not_resource.is_some()
            || !only_issue_time
        {
            return None;
        }
        let instants = s.condition.get("DateLessThan").and_then(|c| c.get("aws:tokenissuetime"))?;
        let issued_before = instants.iter().filter_map(|t| parse_time(t)).max()?;
        let dated = s.sid.as_deref().and_then(|sid| sid.strip_prefix(SID_PREFIX)).and_then(parse_compact);
        let keep_until = dated.unwrap_or(issued_before + i64::from(LONGEST_SESSION_SECS) * 1000);
        Some(Revocation { issued_before, keep_until: keep_until.max(issued_before) })
    }
}

/// The statements of an `AWSRevokeOlderSessions` policy that are not revocations (a person's), as written, and the
/// `Version` the policy was written under: crossrole keeps them whenever it writes or removes its revocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Others {
    /// The policy's `Version` as read (`None`: none was written, or no policy was there).
    version: Option<Value>,
    /// Every statement that is not a revocation, in the order read.
    statements: Vec<Value>,
}

impl Others {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// How the plan names them: each `Sid`, or the statement's place when it has none.
    pub fn named(&self) -> Vec<String> {
        self.statements
            .iter()
            .enumerate()
            .map(|(i, s)| match s.get("Sid").and_then(Value::as_str) {
                Some(sid) if !sid.is_empty() => sid.to_string(),
                _ => format!("statement {} (no Sid)", i + 1),
            })
            .collect()
    }

    /// The policy with only these statements: what is left once the revocation goes.
    pub fn document(&self) -> String {
        self.with_statements(self.statements.clone())
    }

    fn with_statements(&self, statements: Vec<Value>) -> String {
        let version = self.version.clone().unwrap_or_else(|| json!("2012-10-17"));
        let mut top = serde_json::Map::new();
        // A `Version` the person left out stays left out: IAM reads it as 2008-10-17, where `${…}` is no variable.
        if self.version.is_some() || self.statements.is_empty() {
            top.insert("Version".into(), version);
        }
        top.insert("Statement".into(), Value::Array(statements));
        Value::Object(top).to_string()
    }
}

/// A policy named [`POLICY_NAME`] as read from IAM (URL-encoded or not), split: the revocation its revocation
/// statements make together (the latest instant, kept the longest), and every other statement, as written. A
/// document that is not JSON (IAM stores none) has neither.
pub fn split(observed: &str) -> (Option<Revocation>, Others) {
    let decoded = if observed.trim_start().starts_with('{') {
        observed.to_string()
    } else {
        percent_encoding::percent_decode_str(observed).decode_utf8_lossy().into_owned()
    };
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(&decoded) else {
        return (None, Others::default());
    };
    let version = top.get("Version").cloned();
    let statements = match top.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let mut found: Option<Revocation> = None;
    let mut others = Others { version, statements: Vec::new() };
    for raw in statements {
        let alone = json!({ "Version": "2012-10-17", "Statement": [raw.clone()] });
        let revocation = PolicyDocument::from_value(alone, crate::policy::DocumentKind::Observed)
            .ok()
            .and_then(|d| d.statements().first().and_then(Revocation::of_statement));
        match revocation {
            Some(r) => found = Some(found.map_or(r, |f| f.merge(r))),
            None => others.statements.push(raw),
        }
    }
    (found, others)
}

/// Why `plan` cannot be applied as it is: the revocation it writes, beside the statements it keeps and the
/// role's other inline policies, would take the role's inline policies over IAM's [`INLINE_POLICIES_SIZE`]. IAM
/// would refuse it after the narrowing is written; crossrole refuses the account's plan before anything is, and
/// never makes room by dropping a person's statements. `None` when it fits, or writes no revocation.
pub fn over_quota(plan: &AccountPlan, observed: Option<&ObservedRole>) -> Option<String> {
    let o = observed?;
    let Some(Change::RevokeSessions { others, .. }) =
        plan.changes().iter().find(|c| matches!(c, Change::RevokeSessions { .. }))
    else {
        return None;
    };
    let after = crate::plan::simulate(crate::Partition::Aws, "000000000000", Some(o.clone()), plan.changes())?;
    let size = |doc: &str| PolicyDocument::parse_observed(doc).map_or(doc.chars().count(), |d| d.size());
    let total: usize = after.inline_policies.values().map(|d| size(d)).sum();
    if total <= INLINE_POLICIES_SIZE {
        return None;
    }
    let kept = if others.is_empty() {
        String::new()
    } else {
        format!(" with the statements a person put in it ({}) kept", others.named().join(", "))
    };
    Some(format!(
        "the revocation of older sessions cannot be written: inline policy {POLICY_NAME}{kept}, beside the role's \
         other inline policies, would make them {total} characters together, over IAM's {INLINE_POLICIES_SIZE} per \
         role; nothing was changed. Make room in {POLICY_NAME} or the role's other inline policies, or turn \
         revocation off (role.revoke_sessions_on_narrowing: false, or the request's keep_sessions)"
    ))
}

/// Whether a revocation is written when a change takes access away, and if not, who said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoke {
    /// Revoke the sessions issued before the change (the default).
    On,
    /// Revoke them, but keep the deny at most `secs` seconds, however long the role's sessions last: a setting
    /// for tests on emulators (`by` names it, for the plan to say), where a real-time test cannot wait an hour to
    /// see the deny go. Against AWS it would leave sessions issued before the change valid once the deny is gone;
    /// crossroled refuses it there.
    HeldAtMost {
        /// The longest the deny is kept, in seconds.
        secs: u32,
        /// The setting that shortened it.
        by: String,
    },
    /// Do not; the field or request option that turned it off, for the plan to say.
    Off(String),
}

/// `plan` with the revocation its changes call for at `now`, from the role read (`observed`): a change that takes
/// access away (a trust that allows less than before, a role deleted) brings a [`Change::RevokeSessions`] unless
/// `revoke` is off, and then a [`Change::SessionsNotRevoked`] that says so (it writes nothing); a revocation whose
/// time is over, and no new one needed, is deleted. A narrowed trust is revoked right after the trust is written
/// (the instant is taken again when the deny is written: see [`Revocation::written_at`]); a role deleted is
/// revoked first, after the ceiling's boundary and an adoption's claim (IAM refuses writes to a role before those
/// under the ceiling), and its deny goes just before the role.
pub fn with_revocation(
    plan: AccountPlan,
    observed: Option<&ObservedRole>,
    now: Millis,
    revoke: &Revoke,
) -> AccountPlan {
    let (AccountPlan::Changes(mut changes), Some(o)) = (plan.clone(), observed) else {
        return with_expired_removed(plan, observed, now);
    };
    let Some(reason) = takes_away(&changes) else { return with_expired_removed(plan, observed, now) };
    let first = changes.iter().position(|c| !before_revocation(c)).unwrap_or(changes.len());
    if let Revoke::Off(by) = revoke {
        let why = format!(
            "{reason}: sessions issued before it stay valid until they expire, because {by} turned revocation off"
        );
        changes.insert(first, Change::SessionsNotRevoked { reason: why });
        return AccountPlan::Changes(changes);
    }
    let longest = changes
        .iter()
        .filter_map(|c| match c {
            Change::UpdateMaxSessionDuration { after, .. } => Some(*after),
            _ => None,
        })
        .fold(o.attributes.max_session_duration, u32::max);
    // The plan says the truth about a shortened hold: the keep-until written is the shortened one, and why.
    let (keep_for, reason) = match revoke {
        Revoke::HeldAtMost { secs, by } if *secs < longest => (
            *secs,
            format!(
                "{reason} (kept {secs}s, not the role's longest session of {longest}s, by {by}: for tests on emulators only)"
            ),
        ),
        _ => (longest, reason),
    };
    let existing = o.inline_policies.get(POLICY_NAME);
    let new = Revocation::at(now, keep_for);
    let (held, others) = existing.map(|e| split(e)).unwrap_or_default();
    let revocation = held.map_or(new, |e| e.merge(new));
    let revoke =
        Change::RevokeSessions { before: existing.map(|e| as_written(e)), revocation, keep_for, reason, others };
    // After the narrowing: a session issued before the new trust is written is denied by an instant taken when the
    // deny is written. Before it, a removed principal could still be issued one the deny does not cover.
    let narrowed =
        changes.iter().position(|c| matches!(c, Change::UpdateTrustPolicy { before, after } if !widens(before, after)));
    let deleted = changes.iter().any(|c| matches!(c, Change::DeleteRole { .. }));
    changes.insert(narrowed.filter(|_| !deleted).map_or(first, |i| i + 1), revoke);
    // A role being deleted keeps the deny until its last policy goes, just before the role (which IAM deletes
    // only without inline policies: the deny written here among them).
    if let Some(at) = changes.iter().position(|c| matches!(c, Change::DeleteRole { .. })) {
        let before = PolicyDocument::parse_observed(&revocation.document()).map(|d| d.normalized_json());
        let deny = match changes.iter().position(is_revocation_deleted) {
            Some(i) => changes.remove(i),
            None => Change::DeleteInlinePolicy { name: POLICY_NAME.to_string(), before: before.unwrap_or_default() },
        };
        let at = changes.iter().position(|c| matches!(c, Change::DeleteRole { .. })).unwrap_or(at);
        changes.insert(at, deny);
    }
    AccountPlan::Changes(changes)
}

/// Why `changes` take access away, when they do: a role deleted, or a trust that allows less than the one before.
pub fn takes_away(changes: &[Change]) -> Option<String> {
    for c in changes {
        match c {
            Change::DeleteRole { name } => return Some(format!("role {name} is deleted")),
            Change::UpdateTrustPolicy { before, after } if !widens(before, after) => {
                return Some("the trust policy allows less than before".to_string());
            }
            _ => {}
        }
    }
    None
}

/// Whether the trust policy `after` allows at least everyone and everything `before` allows (only widening).
/// A document that does not parse is taken as narrowing: crossrole revokes when it cannot tell.
pub fn widens(before: &str, after: &str) -> bool {
    let (Ok(before), Ok(after)) = (PolicyDocument::parse_observed(before), PolicyDocument::parse_observed(after))
    else {
        return false;
    };
    let denies = |d: &PolicyDocument| -> BTreeSet<Statement> {
        d.statements()
            .iter()
            .filter(|s| s.effect == Effect::Deny)
            .map(|s| Statement { sid: None, ..s.clone() })
            .collect()
    };
    if !denies(&after).is_subset(&denies(&before)) {
        return false;
    }
    let allows: Vec<&Statement> = after.statements().iter().filter(|s| s.effect == Effect::Allow).collect();
    before.statements().iter().filter(|s| s.effect == Effect::Allow).all(|old| {
        if old.not_principal.is_some() || old.not_action.is_some() {
            return allows
                .iter()
                .any(|new| Statement { sid: None, ..(*new).clone() } == Statement { sid: None, ..old.clone() });
        }
        principals(old).into_iter().all(|p| allows.iter().any(|new| covers(new, old, &p)))
    })
}

/// One principal of a statement: `None` for `*`.
type OnePrincipal = Option<(String, String)>;

fn principals(s: &Statement) -> Vec<OnePrincipal> {
    match &s.principal {
        None | Some(Principals::Any) => vec![None],
        Some(Principals::Typed(by_type)) => {
            by_type.iter().flat_map(|(t, ps)| ps.iter().map(move |p| Some((t.clone(), p.clone())))).collect()
        }
    }
}

/// Whether `new` allows principal `p` of `old` everything `old` allows it, under conditions no stricter.
fn covers(new: &Statement, old: &Statement, p: &OnePrincipal) -> bool {
    let principal = match (&new.principal, p) {
        (Some(Principals::Any), _) => true,
        (Some(Principals::Typed(by_type)), Some((t, v))) => by_type.get(t).is_some_and(|ps| ps.contains(v)),
        _ => false,
    };
    let actions = match (&new.action, &old.action) {
        (Some(n), Some(o)) => n.contains("*") || o.is_subset(n),
        (n, o) => n == o,
    };
    // Every condition of the new statement is one the old one had, with at least its values (several values of a
    // positive operator are alternatives: more of them allow more; a negated one must stay as it was).
    let conditions = new.condition.iter().all(|(op, keys)| {
        keys.iter().all(|(key, values)| {
            old.condition
                .get(op)
                .and_then(|k| k.get(key))
                .is_some_and(|was| if op.contains("Not") { was == values } else { was.is_subset(values) })
        })
    });
    principal
        && actions
        && new.not_principal.is_none()
        && new.not_action.is_none()
        && new.resource == old.resource
        && new.not_resource == old.not_resource
        && conditions
}

/// The plan with a revocation whose time is over taken away, when the role holds one and nothing else deletes
/// it: the policy deleted when nothing else is in it, or else written again with only the other statements.
fn with_expired_removed(plan: AccountPlan, observed: Option<&ObservedRole>, now: Millis) -> AccountPlan {
    let Some(o) = observed else { return plan };
    let Some(doc) = o.inline_policies.get(POLICY_NAME) else { return plan };
    let (held, others) = split(doc);
    if !held.is_some_and(|r| r.expired(now)) {
        return plan;
    }
    let name = POLICY_NAME.to_string();
    let delete = if others.is_empty() {
        Change::DeleteInlinePolicy { name, before: normalized(doc) }
    } else {
        Change::PutInlinePolicy { name, before: Some(as_written(doc)), after: others.document() }
    };
    match plan {
        AccountPlan::InSync => AccountPlan::Changes(vec![delete]),
        AccountPlan::Changes(mut c) => {
            if !c.iter().any(is_revocation_deleted) {
                let at = c.iter().position(|c| !before_revocation(c)).unwrap_or(c.len());
                c.insert(at, delete);
            }
            AccountPlan::Changes(c)
        }
        conflict => conflict,
    }
}

fn is_revocation_deleted(c: &Change) -> bool {
    matches!(c, Change::DeleteInlinePolicy { name, .. } if name == POLICY_NAME)
}

/// Changes that must precede any other write to the role: a boundary where there was none (the ceiling's) and an
/// adoption's claim of the ownership tags.
fn before_revocation(c: &Change) -> bool {
    match c {
        Change::PutPermissionsBoundary { before: None, .. } => true,
        Change::TagRole { tags, .. } => tags.contains_key(OWNER_TAG_KEY) || tags.contains_key(SPEC_TAG_KEY),
        _ => false,
    }
}

/// A document read from IAM as it was written (URL-decoded, pretty-printed), every `Sid` and key as the person
/// wrote it: what a plan shows of the policy it rewrites.
pub fn as_written(doc: &str) -> String {
    let decoded = if doc.trim_start().starts_with('{') {
        doc.to_string()
    } else {
        percent_encoding::percent_decode_str(doc).decode_utf8_lossy().into_owned()
    };
    serde_json::from_str::<Value>(&decoded).ok().and_then(|v| serde_json::to_string_pretty(&v).ok()).unwrap_or(decoded)
}

fn normalized(doc: &str) -> String {
    PolicyDocument::parse_observed(doc).map_or_else(|_| doc.to_string(), |d| d.normalized_json())
}

/// ISO 8601 in UTC to the second: `2026-12-05T10:15:00Z`.
pub fn iso8601(ms: Millis) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn parse_time(s: &str) -> Option<Millis> {
    let t = humantime::parse_rfc3339_weak(s.trim_end_matches('Z').trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_millis() as Millis)
}

/// `20261205T101500Z`: the ISO 8601 basic form, letters and digits only (what a `Sid` may hold).
fn compact(ms: Millis) -> String {
    iso8601(ms).replace(['-', ':'], "")
}

fn parse_compact(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    parse_time(&format!("{}-{}-{}T{}:{}:{}Z", &s[0..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15]))
}

#[cfg(test)]
mod tests;
