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
//! Tests on emulators may shorten the hold ([`Revoke::HeldAtMost`]): IAM's shortest session is an hour, too long
//! for a real-time test to see the deny go. The keep-until written, and the plan, say the shortened time and the
//! setting that asked for it; crossroled refuses that setting unless its AWS endpoints are an emulator's.

use std::{
    collections::BTreeSet,
    time::{Duration, UNIX_EPOCH},
};

use serde_json::json;

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
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": format!("{SID_PREFIX}{}", compact(self.keep_until)),
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": { "DateLessThan": { "aws:TokenIssueTime": iso8601(self.issued_before) } },
            }],
        })
        .to_string()
    }

    /// The revocation a document read from IAM (URL-encoded or not) holds: its latest `DateLessThan` on
    /// `aws:TokenIssueTime` in a `Deny` of everything, kept until the time in crossrole's `Sid`, or for
    /// [`LONGEST_SESSION_SECS`] after its instant when it has none (the console's). `None` when it holds no such
    /// deny, or its time does not parse: crossrole cannot date it, and never removes it.
    pub fn parse(observed: &str) -> Option<Revocation> {
        let doc = PolicyDocument::parse_observed(observed).ok()?;
        let mut found: Option<Revocation> = None;
        for s in doc.statements() {
            let everything = |v: &Option<BTreeSet<String>>| v.as_ref().is_some_and(|v| v.contains("*"));
            if s.effect != Effect::Deny || !everything(&s.action) || !everything(&s.resource) {
                continue;
            }
            let Some(instants) = s.condition.get("DateLessThan").and_then(|c| c.get("aws:tokenissuetime")) else {
                continue;
            };
            let Some(issued_before) = instants.iter().filter_map(|t| parse_time(t)).max() else { continue };
            let dated = s.sid.as_deref().and_then(|sid| sid.strip_prefix(SID_PREFIX)).and_then(parse_compact);
            let keep_until = dated.unwrap_or(issued_before + i64::from(LONGEST_SESSION_SECS) * 1000);
            let r = Revocation { issued_before, keep_until: keep_until.max(issued_before) };
            found = Some(found.map_or(r, |f| f.merge(r)));
        }
        found
    }
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
    let revocation = existing.and_then(|e| Revocation::parse(e)).map_or(new, |e| e.merge(new));
    let revoke = Change::RevokeSessions { before: existing.map(|e| normalized(e)), revocation, keep_for, reason };
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

/// The plan with a revocation whose time is over deleted, when the role holds one and nothing else deletes it.
fn with_expired_removed(plan: AccountPlan, observed: Option<&ObservedRole>, now: Millis) -> AccountPlan {
    let Some(o) = observed else { return plan };
    let Some(doc) = o.inline_policies.get(POLICY_NAME) else { return plan };
    if !Revocation::parse(doc).is_some_and(|r| r.expired(now)) {
        return plan;
    }
    let delete = Change::DeleteInlinePolicy { name: POLICY_NAME.to_string(), before: normalized(doc) };
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
