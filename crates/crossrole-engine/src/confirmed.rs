//! The plan a person confirmed, carried to the apply (Terraform's saved-plan rule: the plan applied is the plan
//! confirmed, or nothing).
//!
//! A plan hands out a fingerprint of what it found: the spec, every target account with what the operation does
//! there (keep the role, or remove it), and each account's changes. An apply that carries it is checked twice:
//!
//! - **At its start**, before anything is written ([`Fingerprint::check_spec`], [`Fingerprint::check_targets`]):
//!   the spec must be the one planned, and the targets, read as an apply reads them, the plan's — else the apply is
//!   refused, naming each account that moved into or out of the targets. So an apply with a confirmed plan finds
//!   all its targets before it starts any account.
//! - **In each account, as it is read** ([`Fingerprint::check_account`]): an account is changed only when its
//!   changes now are the ones the plan showed for it. One where the plan found nothing to change, or that the plan
//!   could not read, and that now needs changes — or whose changes differ (its role changed since the plan) — is
//!   left untouched and says why (`plan_changed`). An account that needs no change is left as it is either way.
//!
//! The trusted side's policy is written, as always, from what the accounts reached: it names the roles in place.
//! What the plan showed of cutting it (from principals, or from roles that stay) is held, though
//! ([`Fingerprint::check_grant`]): from whom it is cut and whether the sessions are revoked. A cut the plan did
//! not show — the policy attached by hand to someone since, say — leaves the trusted side untouched and fails the
//! apply, saying why.
//!
//! The fingerprint is text: `cp1.` then how the plan took the spec's ExternalId ([`ExternalIds`]: `t` compared,
//! for a caller who may read ExternalIds; `b` each role's own kept, or `w` the spec's written to every role, for one
//! who may not), the spec's digest, the accounts grouped by what the plan found in them (`e`/`r` for keep/remove, then
//! `n` nothing to change, `u` not read, or `c` and the digest of its changes), then the trusted side's cut (`g` and
//! `n`, `u` or `c` and its digest; a fingerprint made before it has none, and holds no cut), and a keyed digest of
//! all that (keyed from the journal key: good across restarts and on every replica). The changes' digest leaves marks of
//! ExternalIds out (`<redacted>`): a plan for a caller who may not read ExternalIds shows marks keyed for that answer
//! alone. The apply of such a plan is planned as the plan was (each role's own ExternalId kept, or the spec's
//! written to every role), and its spec's digest leaves the ExternalId's value out — so that no apply outcome tells
//! that caller whether the ExternalId it sent is the one in AWS; a plan made for a caller who may read them is
//! refused for one who may not, and a plan that kept the ExternalIds for an apply that writes them, or the reverse.

use std::collections::{BTreeMap, BTreeSet};

use crossrole_core::{
    grant::cut::GrantCut,
    ops::{Action, ChangeKind, ShownChange},
    org::OrgTree,
    secret::Redactor,
    spec::RawSpec,
};

use crate::{Error, ExternalIds, account::Target, records};

/// The fingerprints' version prefix.
const PREFIX: &str = "cp1";

/// The most accounts a refusal names (then "and N more").
const NAMED: usize = 5;

/// What a plan found in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing to change (in sync, or a role crossrole does not own).
    Nothing,
    /// The account could not be read.
    Unread,
    /// These changes (their digest).
    Changes(String),
}

/// A plan's fingerprint, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// How the plan took the spec's ExternalId (for a caller who may not read them: kept or written).
    pub(crate) external_ids: ExternalIds,
    spec: String,
    accounts: BTreeMap<String, (Action, Found)>,
    /// What the plan found of the grant being cut from principals (`None`: a fingerprint from before it held that).
    grant: Option<Found>,
}

/// The key fingerprints are made and checked with.
pub(crate) fn key(journal_key: &crossrole_store::JournalKey) -> Redactor {
    Redactor::new(journal_key.derive("crossrole confirmed plans v1"))
}

/// The digest of `spec` as a plan that took its ExternalId as `external_ids` says compares it (the ExternalId's value
/// left out unless compared).
fn spec_digest(key: &Redactor, spec: &RawSpec, external_ids: ExternalIds) -> String {
    let blind = external_ids != ExternalIds::Compared;
    let mut spec = spec.clone();
    if let (true, Some(trust)) = (blind, spec.role.as_mut().and_then(|r| r.trust.as_mut()))
        && !trust.external_id.is_empty()
    {
        trust.external_id = "<set>".into();
    }
    let mut data = b"spec\0".to_vec();
    data.extend_from_slice(&records::encode(&spec));
    key.digest(&data)[..32].to_string()
}

/// Every ExternalId mark in `text` as `<redacted>`: marks may be keyed for one answer.
fn unmarked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("<redacted:") {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let len = "<redacted:12345678>".len();
        if candidate.len() >= len && Redactor::is_mark(&candidate[..len]) {
            out.push_str("<redacted>");
            rest = &candidate[len..];
        } else {
            out.push_str("<redacted:");
            rest = &candidate["<redacted:".len()..];
        }
    }
    out.push_str(rest);
    out
}

/// What a plan found in an account with these changes (shown, for people).
pub(crate) fn found(key: &Redactor, action: Action, changes: &[ShownChange]) -> Found {
    if changes.is_empty() {
        return Found::Nothing;
    }
    let mut data = Vec::new();
    let mut field = |text: &str| {
        data.extend_from_slice(&(text.len() as u64).to_le_bytes());
        data.extend_from_slice(text.as_bytes());
    };
    field(action_code(action));
    for c in changes {
        field(kind_code(c.kind));
        field(&c.subject);
        field(&unmarked(&c.before));
        field(&unmarked(&c.after));
    }
    Found::Changes(key.digest(&data)[..16].to_string())
}

/// What a plan found of the trusted side being cut and of the former grants it released (`released`: their
/// accounts; none, as a plan made before releases were found).
pub(crate) fn grant_found_releasing(key: &Redactor, cut: Option<&GrantCut>, released: &BTreeSet<String>) -> Found {
    if released.is_empty() {
        return grant_found(key, cut);
    }
    let cut = cut.map(GrantCut::pinned).unwrap_or_default();
    let released = released.iter().map(String::as_str).collect::<Vec<_>>().join(",");
    Found::Changes(key.digest(format!("grant cut\0{cut}\0released\0{released}").as_bytes())[..16].to_string())
}

/// What a plan found of the trusted side being cut: `cut`, or none (a spec without a grant, or nothing cut).
pub(crate) fn grant_found(key: &Redactor, cut: Option<&GrantCut>) -> Found {
    match cut {
        None => Found::Nothing,
        Some(cut) => Found::Changes(key.digest(format!("grant cut\0{}", cut.pinned()).as_bytes())[..16].to_string()),
    }
}

fn found_code(found: &Found) -> String {
    match found {
        Found::Nothing => "n".to_string(),
        Found::Unread => "u".to_string(),
        Found::Changes(digest) => format!("c{digest}"),
    }
}

fn found_of(code: &str) -> Option<Found> {
    match code {
        "n" => Some(Found::Nothing),
        "u" => Some(Found::Unread),
        c if c.starts_with('c') && c.len() > 1 => Some(Found::Changes(c[1..].to_string())),
        _ => None,
    }
}

fn action_code(action: Action) -> &'static str {
    match action {
        Action::Ensure => "e",
        Action::Remove => "r",
    }
}

fn kind_code(kind: ChangeKind) -> &'static str {
    kind.describe()
}

impl Fingerprint {
    /// The fingerprint of a plan of `spec`, its ExternalId taken as `external_ids` says, that found `accounts`.
    pub(crate) fn new(
        key: &Redactor,
        spec: &RawSpec,
        external_ids: ExternalIds,
        accounts: impl IntoIterator<Item = (String, Action, Found)>,
    ) -> Fingerprint {
        Fingerprint {
            external_ids,
            spec: spec_digest(key, spec, external_ids),
            accounts: accounts.into_iter().map(|(id, action, found)| (id, (action, found))).collect(),
            grant: None,
        }
    }

    /// The fingerprint with what the plan found of the trusted side being cut ([`grant_found`], or
    /// [`Found::Unread`] when the plan could not read the trusted side).
    pub(crate) fn with_grant(self, grant: Found) -> Fingerprint {
        Fingerprint { grant: Some(grant), ..self }
    }

    /// The fingerprint as text, keyed.
    pub(crate) fn encode(&self, key: &Redactor) -> String {
        let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (id, (action, found)) in &self.accounts {
            groups.entry(format!("{}{}", action_code(*action), found_code(found))).or_default().push(id);
        }
        let groups: Vec<String> = groups.into_iter().map(|(k, ids)| format!("{k}:{}", ids.join(","))).collect();
        let taken = match self.external_ids {
            ExternalIds::Compared => "t",
            ExternalIds::Kept => "b",
            ExternalIds::Written => "w",
        };
        let mut body = format!("{PREFIX}.{taken}.{}.{}", self.spec, groups.join(";"));
        if let Some(grant) = &self.grant {
            body.push_str(&format!(".g{}", found_code(grant)));
        }
        let mac = &key.digest(body.as_bytes())[..32];
        format!("{body}.{mac}")
    }

    /// A fingerprint crossroled made, read; INVALID_ARGUMENT naming `plan_fingerprint` for anything else.
    pub(crate) fn decode(key: &Redactor, text: &str) -> Result<Fingerprint, Error> {
        let refused = || {
            Error::Invalid(crossrole_core::Error::invalid(
                "plan_fingerprint",
                "not a plan fingerprint crossroled made: send the fingerprint of the plan as it was given",
            ))
        };
        let (body, mac) = text.rsplit_once('.').ok_or_else(refused)?;
        if !equal(&key.digest(body.as_bytes()).as_bytes()[..32], mac.as_bytes()) {
            return Err(refused());
        }
        let mut parts = body.splitn(4, '.');
        let (Some(PREFIX), Some(audience), Some(spec), Some(groups)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused());
        };
        let external_ids = match audience {
            "t" => ExternalIds::Compared,
            "b" => ExternalIds::Kept,
            "w" => ExternalIds::Written,
            _ => return Err(refused()),
        };
        let (groups, grant) = match groups.split_once('.') {
            None => (groups, None),
            Some((groups, grant)) => {
                let found = grant.strip_prefix('g').and_then(found_of).ok_or_else(refused)?;
                (groups, Some(found))
            }
        };
        let mut accounts = BTreeMap::new();
        for group in groups.split(';').filter(|g| !g.is_empty()) {
            let (what, ids) = group.split_once(':').ok_or_else(refused)?;
            let action = match what.get(..1) {
                Some("e") => Action::Ensure,
                Some("r") => Action::Remove,
                _ => return Err(refused()),
            };
            let found = what.get(1..).and_then(found_of).ok_or_else(refused)?;
            for id in ids.split(',') {
                accounts.insert(id.to_string(), (action, found.clone()));
            }
        }
        Ok(Fingerprint { external_ids, spec: spec.to_string(), accounts, grant })
    }

    /// Whether the trusted side may be written: the grant is cut now (`cut`) from whom the plan showed, with their
    /// sessions revoked or kept as it showed; else why not. A grant cut from no one now always may (no one loses
    /// it), and so may any when the fingerprint is from before it held the cut.
    pub(crate) fn check_grant(&self, key: &Redactor, cut: Option<&GrantCut>) -> Result<(), String> {
        let (Some(planned), Some(now)) = (&self.grant, cut) else { return Ok(()) };
        let who = now.principals.join(", ");
        let sessions = if now.revokes() { "revoked" } else { "kept" };
        let why = match planned {
            Found::Changes(_) if *planned == grant_found(key, Some(now)) => return Ok(()),
            Found::Changes(_) => format!(
                "the grant would now be cut from {who}, their sessions {sessions}, which is not what the plan showed \
                 (the policy's attachments changed since the plan)"
            ),
            Found::Nothing => format!(
                "the plan cut the grant from no one, and now it would be cut from {who}, their sessions {sessions} \
                 (the policy was attached to someone since the plan)"
            ),
            Found::Unread => {
                format!("the plan could not read the trusted side, so cutting the grant from {who} was not confirmed")
            }
        };
        Err(format!("{why}; the trusted side was left untouched: plan again"))
    }

    /// [`Fingerprint::check_grant`], for an apply that releases the former grants in `released` (their accounts;
    /// [`crossrole_core::grant::former::Release`]): the plan must have shown those released, and the same cut.
    pub(crate) fn check_grant_releasing(
        &self,
        key: &Redactor,
        cut: Option<&GrantCut>,
        released: &BTreeSet<String>,
    ) -> Result<(), String> {
        if released.is_empty() {
            return self.check_grant(key, cut);
        }
        if self.grant.as_ref() == Some(&grant_found_releasing(key, cut, released)) {
            return Ok(());
        }
        let accounts = released.iter().map(String::as_str).collect::<Vec<_>>().join(", ");
        Err(format!(
            "the plan did not show the former grants in {accounts} released, with the grant cut as it would be now; \
             the trusted side was left untouched: plan again with the same release_former_grants"
        ))
    }

    /// How an apply that carries this plan takes the spec's ExternalId, asked as `asked` by a caller who is
    /// `audience`: as the plan did — refused (why) for a plan that compared them, for a caller who may not read
    /// them, and for a plan that kept them for an apply that asks them written, or the reverse.
    pub(crate) fn taken_for(&self, asked: ExternalIds, audience: crate::Audience) -> Result<ExternalIds, String> {
        let blind = audience == crate::Audience::Blind || asked != ExternalIds::Compared;
        match (self.external_ids, asked) {
            (ExternalIds::Compared, _) if blind => Err("the plan was made for a token that may read ExternalIds, and \
                 this one may not: plan with the token that applies; nothing was done"
                .into()),
            (ExternalIds::Kept, ExternalIds::Written) => {
                Err("the plan kept each role's ExternalId, and this apply asks \
                 write_external_id: plan with write_external_id, and confirm that plan; nothing was done"
                    .into())
            }
            (ExternalIds::Written, ExternalIds::Kept) => Err("the plan wrote the spec's ExternalId to every role \
                 (write_external_id), and this apply does not ask it: plan without write_external_id, or apply with \
                 it; nothing was done"
                .into()),
            (planned, _) => Ok(planned),
        }
    }

    /// Whether `spec` is the spec the plan was made for.
    pub(crate) fn check_spec(&self, key: &Redactor, spec: &RawSpec) -> Result<(), String> {
        if spec_digest(key, spec, self.external_ids) == self.spec {
            return Ok(());
        }
        Err("the spec is not the one the plan was made for (it was edited since, or crossroled's ceiling now bounds \
             it otherwise); nothing was done: plan again with this spec"
            .into())
    }

    /// Whether `targets` (read as an apply reads them, from `tree`) are the plan's: else why, naming each account
    /// that moved into or out of them (by the names `tree`, or else `known`, a tree read before, gives them).
    pub(crate) fn check_targets(
        &self,
        targets: &[Target],
        tree: &OrgTree,
        known: Option<&OrgTree>,
    ) -> Result<(), String> {
        let now: BTreeMap<&str, (Action, &str)> =
            targets.iter().map(|t| (t.account_id.as_str(), (t.action, t.account_name.as_str()))).collect();
        let mut came = Vec::new();
        let mut to_remove = Vec::new();
        let mut kept = Vec::new();
        for (id, (action, name)) in &now {
            match (self.accounts.get(*id).map(|(a, _)| *a), action) {
                (None, Action::Ensure) => came.push(named(id, Some(name), tree, known, false)),
                (None, Action::Remove) | (Some(Action::Ensure), Action::Remove) => {
                    to_remove.push(named(id, Some(name), tree, known, false))
                }
                (Some(Action::Remove), Action::Ensure) => kept.push(named(id, Some(name), tree, known, false)),
                _ => {}
            }
        }
        let left: Vec<String> = self
            .accounts
            .iter()
            .filter(|(id, (action, _))| *action == Action::Ensure && !now.contains_key(id.as_str()))
            .map(|(id, _)| named(id, None, tree, known, true))
            .collect();
        let not_removed: Vec<String> = self
            .accounts
            .iter()
            .filter(|(id, (action, _))| *action == Action::Remove && !now.contains_key(id.as_str()))
            .map(|(id, _)| named(id, None, tree, known, true))
            .collect();
        let mut what = Vec::new();
        let mut say = |accounts: Vec<String>, verb: &str| {
            if accounts.is_empty() {
                return;
            }
            let n = accounts.len();
            let mut shown: Vec<String> = accounts.into_iter().take(NAMED).collect();
            if n > NAMED {
                shown.push(format!("and {} more", n - NAMED));
            }
            what.push(format!("{} {verb} ({})", crate::rollout::accounts(n), shown.join("; ")));
        };
        say(came, "moved into the targets");
        say(left, "left the targets");
        say(to_remove, "would now have the role removed");
        say(kept, "would now keep the role the plan removed");
        say(not_removed, "would no longer have the role removed");
        if what.is_empty() {
            return Ok(());
        }
        Err(format!("the organization changed since the plan: {}; nothing was done: plan again", what.join("; ")))
    }

    /// Whether an account may be changed: `changes` (those it needs now, as a plan for this fingerprint's caller
    /// would show them) are the ones the plan showed for it; else why not. An account that needs no change always
    /// may (nothing is written).
    pub(crate) fn check_account(
        &self,
        key: &Redactor,
        account: &str,
        action: Action,
        changes: &[ShownChange],
    ) -> Result<(), String> {
        if changes.is_empty() {
            return Ok(());
        }
        let n = if changes.len() == 1 { "1 change".to_string() } else { format!("{} changes", changes.len()) };
        let why = match self.accounts.get(account) {
            None => format!("it was not among the plan's targets, and it needs {n} now"),
            Some((planned, _)) if *planned != action => match action {
                Action::Ensure => format!("the plan removed its role, and now it would keep it ({n})"),
                Action::Remove => format!("the plan kept its role, and now it would be removed ({n})"),
            },
            Some((_, Found::Nothing)) => {
                format!("the plan found nothing to change in it, and it needs {n} now (its role changed since)")
            }
            Some((_, Found::Unread)) => format!("the plan could not read it, so none of its {n} were confirmed"),
            Some((_, Found::Changes(digest))) => {
                if found(key, action, changes) == Found::Changes(digest.clone()) {
                    return Ok(());
                }
                format!("its changes are not the ones the plan showed (its role changed since the plan): {n} now")
            }
        };
        Err(format!("{why}; it was left untouched: plan again"))
    }
}

/// An account for a refusal: its id, its name, and where it is now if it left (when `tree` knows).
fn named(id: &str, name: Option<&str>, tree: &OrgTree, known: Option<&OrgTree>, gone: bool) -> String {
    let now = tree.accounts.get(id);
    let before = known.and_then(|k| k.accounts.get(id));
    let name = name.filter(|n| !n.is_empty()).or(now.or(before).map(|a| a.name.as_str())).unwrap_or_default();
    let mut out = if name.is_empty() { id.to_string() } else { format!("{id} {name}") };
    if gone && let Some(a) = now {
        if a.state != crossrole_core::spec::AccountState::Active {
            out.push_str(&format!(", now {}", a.state.as_str()));
        } else if tree.units.contains_key(&a.parent_id) {
            out.push_str(&format!(", now in {}", tree.path_of(&a.parent_id)));
        }
    }
    out
}

/// Compares in time independent of where they differ.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossrole_core::org::fixture::TreeBuilder;

    fn key() -> Redactor {
        Redactor::new([7; 32])
    }

    fn change(after: &str) -> ShownChange {
        ShownChange {
            kind: ChangeKind::UpdateTrustPolicy,
            subject: String::new(),
            before: String::new(),
            after: after.into(),
        }
    }

    fn target(id: &str, action: Action) -> Target {
        Target {
            index: 0,
            account_id: id.into(),
            account_name: format!("n-{id}"),
            joined_at: None,
            action,
            prior: None,
        }
    }

    fn fingerprint() -> Fingerprint {
        let k = key();
        Fingerprint::new(
            &k,
            &RawSpec::default(),
            ExternalIds::Compared,
            [
                ("111111111111".to_string(), Action::Ensure, found(&k, Action::Ensure, &[change("a")])),
                ("222222222222".to_string(), Action::Ensure, Found::Nothing),
                ("333333333333".to_string(), Action::Remove, Found::Unread),
            ],
        )
    }

    #[test]
    fn a_fingerprint_reads_back_as_made_and_nothing_else_reads() {
        let (k, f) = (key(), fingerprint());
        let text = f.encode(&k);
        assert_eq!(Fingerprint::decode(&k, &text).unwrap(), f);
        let tampered = text.replacen("en:222222222222", "en:222222222223", 1);
        assert!(Fingerprint::decode(&k, &tampered).is_err(), "{tampered}");
        assert!(Fingerprint::decode(&Redactor::new([8; 32]), &text).is_err(), "another crossroled's");
        assert!(Fingerprint::decode(&k, "").is_err());
        let empty = Fingerprint::new(&k, &RawSpec::default(), ExternalIds::Kept, []);
        assert_eq!(Fingerprint::decode(&k, &empty.encode(&k)).unwrap(), empty);
    }

    fn cut(names: &[&str], revoke: crossrole_core::revocation::Revoke) -> GrantCut {
        let changes: Vec<crossrole_core::grant::GrantChange> = names
            .iter()
            .map(|n| crossrole_core::grant::GrantChange::Detach {
                kind: crossrole_core::spec::PrincipalKind::User,
                name: n.to_string(),
            })
            .collect();
        GrantCut::of(&changes, "Audit", ["111111111111".to_string()].into(), &Default::default(), revoke).unwrap()
    }

    #[test]
    fn the_trusted_side_is_cut_only_as_the_plan_showed() {
        use crossrole_core::revocation::Revoke;
        let k = key();
        let alice = cut(&["alice"], Revoke::On);
        let f = fingerprint().with_grant(grant_found(&k, Some(&alice)));
        let text = f.encode(&k);
        assert!(text.contains(".gc"), "{text}");
        let f = Fingerprint::decode(&k, &text).unwrap();
        assert_eq!(f.check_grant(&k, Some(&alice)), Ok(()));
        // Nothing cut now: no one loses the grant, nothing to refuse.
        assert_eq!(f.check_grant(&k, None), Ok(()));
        let more = f.check_grant(&k, Some(&cut(&["alice", "bob"], Revoke::On))).unwrap_err();
        assert!(more.contains("cut from user alice, user bob") && more.contains("left untouched"), "{more}");
        let kept = f.check_grant(&k, Some(&cut(&["alice"], Revoke::Off("keep_sessions".into())))).unwrap_err();
        assert!(kept.contains("their sessions kept"), "{kept}");

        let none = Fingerprint::decode(&k, &fingerprint().with_grant(Found::Nothing).encode(&k)).unwrap();
        assert!(none.check_grant(&k, Some(&alice)).unwrap_err().contains("the plan cut the grant from no one"));
        let unread = Fingerprint::decode(&k, &fingerprint().with_grant(Found::Unread).encode(&k)).unwrap();
        assert!(unread.check_grant(&k, Some(&alice)).unwrap_err().contains("could not read the trusted side"));
        // A fingerprint made before the cut was held holds none.
        let before = Fingerprint::decode(&k, &fingerprint().encode(&k)).unwrap();
        assert_eq!(before.check_grant(&k, Some(&alice)), Ok(()));
        // An empty plan with a cut reads back too.
        let empty = Fingerprint::new(&k, &RawSpec::default(), ExternalIds::Compared, []).with_grant(Found::Nothing);
        assert_eq!(Fingerprint::decode(&k, &empty.encode(&k)).unwrap(), empty);
    }

    #[test]
    fn targets_that_moved_are_named() {
        let tree = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
            .unit("r-root", "ou-root-sandboxx", "Sandbox")
            .account("ou-root-sandboxx", "222222222222", "moved", crossrole_core::spec::AccountState::Active)
            .build();
        let f = fingerprint();
        let same = [
            target("111111111111", Action::Ensure),
            target("222222222222", Action::Ensure),
            target("333333333333", Action::Remove),
        ];
        assert_eq!(f.check_targets(&same, &tree, None), Ok(()));
        let changed = [
            target("111111111111", Action::Ensure),
            target("333333333333", Action::Remove),
            target("444444444444", Action::Ensure),
        ];
        assert_eq!(
            f.check_targets(&changed, &tree, None).unwrap_err(),
            "the organization changed since the plan: 1 account moved into the targets (444444444444 n-444444444444); \
             1 account left the targets (222222222222 moved, now in /Root/Sandbox); nothing was done: plan again"
        );
    }

    #[test]
    fn an_account_is_changed_only_as_the_plan_showed() {
        let (k, f) = (key(), fingerprint());
        let check = |id: &str, action, changes: &[ShownChange]| f.check_account(&k, id, action, changes);
        assert_eq!(check("111111111111", Action::Ensure, &[change("a")]), Ok(()));
        // Marks keyed for one answer are not compared.
        let marked = fingerprint_with(&k, "{\"sts:ExternalId\":\"<redacted:0a0b0c0d>\"}");
        assert_eq!(
            marked.check_account(
                &k,
                "111111111111",
                Action::Ensure,
                &[change("{\"sts:ExternalId\":\"<redacted:99887766>\"}")]
            ),
            Ok(())
        );
        assert!(
            check("111111111111", Action::Ensure, &[change("b")]).unwrap_err().contains("not the ones the plan showed")
        );
        assert!(check("222222222222", Action::Ensure, &[change("a")]).unwrap_err().contains("found nothing to change"));
        assert!(check("333333333333", Action::Remove, &[change("a")]).unwrap_err().contains("could not read it"));
        assert!(
            check("444444444444", Action::Ensure, &[change("a")]).unwrap_err().contains("not among the plan's targets")
        );
        // Nothing to write: nothing to refuse.
        assert_eq!(check("444444444444", Action::Ensure, &[]), Ok(()));
        assert_eq!(check("222222222222", Action::Ensure, &[]), Ok(()));
    }

    fn fingerprint_with(k: &Redactor, after: &str) -> Fingerprint {
        Fingerprint::new(
            k,
            &RawSpec::default(),
            ExternalIds::Kept,
            [("111111111111".to_string(), Action::Ensure, found(k, Action::Ensure, &[change(after)]))],
        )
    }

    #[test]
    fn a_plan_for_a_caller_who_may_not_read_external_ids_leaves_their_value_out_of_the_spec() {
        let k = key();
        let with = |external_id: &str| {
            let mut spec = RawSpec { role: Some(Default::default()), ..Default::default() };
            if let Some(role) = spec.role.as_mut() {
                role.trust =
                    Some(crossrole_core::spec::raw::RawTrust { external_id: external_id.into(), ..Default::default() });
            }
            spec
        };
        let (a, b) = (with("guess-one"), with("guess-two"));
        let blind = Fingerprint::new(&k, &a, ExternalIds::Kept, []);
        assert_eq!(blind.check_spec(&k, &b), Ok(()));
        let trusted = Fingerprint::new(&k, &a, ExternalIds::Compared, []);
        assert!(trusted.check_spec(&k, &b).is_err());
        assert_eq!(trusted.check_spec(&k, &a), Ok(()));
        // A plan that writes the spec's ExternalId to every role leaves it out too, and says it writes it.
        let written = Fingerprint::new(&k, &a, ExternalIds::Written, []);
        assert_eq!(written.check_spec(&k, &b), Ok(()));
        let text = written.encode(&k);
        assert!(text.starts_with("cp1.w."), "{text}");
        assert_eq!(Fingerprint::decode(&k, &text).unwrap(), written);
        assert_ne!(Fingerprint::decode(&k, &blind.encode(&k)).unwrap().external_ids, ExternalIds::Written);
    }
}
