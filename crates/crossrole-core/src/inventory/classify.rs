//! Classifying one role: its trust policy parsed with core's grammar, who can enter under which conditions, and
//! its findings.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    Context, Entrant, EntrantKind, Guards, InventoryRole, NOT_WEIGHED, REDACTED_EXTERNAL_ID, RESTRICTS_NOTHING,
    RoleDetail, findings,
};
use crate::{
    names::{self, Arn},
    policy::{
        Effect, PolicyDocument, Principals, Statement,
        eval::{Miss, conditions_hold, glob},
    },
    secret, spec,
};

/// The `sts:` actions that let a caller into a role.
const ENTRY_ACTIONS: [&str; 3] = ["sts:assumerole", "sts:assumerolewithsaml", "sts:assumerolewithwebidentity"];

/// Classifies `role` in the organization `ctx`.
pub fn classify(role: &RoleDetail, ctx: &Context) -> InventoryRole {
    let mut out = InventoryRole {
        account_id: role.account_id.clone(),
        name: role.name.clone(),
        path: role.path.clone(),
        arn: role.arn.clone(),
        created: role.created,
        last_used: role.last_used.clone(),
        managed_policy_arns: role.managed_policy_arns.clone(),
        inline_policy_names: role.inline_policies.keys().cloned().collect(),
        permissions_boundary_arn: role.permissions_boundary_arn.clone(),
        owner: spec::owner_of(&role.tags).map(str::to_string),
        trust_policy: String::new(),
        entrants: Vec::new(),
        findings: Vec::new(),
    };
    let doc = match PolicyDocument::parse_observed(&role.trust_policy) {
        Ok(doc) => Some(doc),
        Err(violations) => {
            let why: Vec<String> = violations.iter().map(ToString::to_string).collect();
            out.findings.push(findings::unreadable(&why.join("; ")));
            None
        }
    };
    if let Some(doc) = &doc {
        out.trust_policy = redacted_as_returned(&role.trust_policy);
        out.entrants = entrants(doc, ctx);
    }
    out.findings.extend(findings::findings(role, &out, doc.as_ref(), ctx));
    out.findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.kind.cmp(&b.kind)));
    out
}

/// The document as IAM returned it (URL-decoded, pretty-printed, every `Sid`, ARN and key as written: see
/// [`crate::policy::as_returned`]) with every `sts:ExternalId` value replaced by [`REDACTED_EXTERNAL_ID`], but values
/// of wildcards only and a `Null` condition's `"true"` or `"false"`; any other value that repeats an ExternalId (a
/// `Sid` spelling it out) is replaced too.
pub(crate) fn redacted_as_returned(text: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(&crate::policy::as_returned(text)) else { return String::new() };
    let secrets = secret::external_id_values(&value);
    secret::each_external_id_condition(&mut value, &mut |op, values| {
        // `Null` holds "true" or "false" (the key absent or present), no ExternalId: redacted, the document would
        // no longer say which.
        if op.eq_ignore_ascii_case("Null") {
            return;
        }
        let kept = match &*values {
            Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
            one => redacted(one),
        };
        *values = kept;
    });
    secret::redact_repeated(&mut value, &secrets, &|_| REDACTED_EXTERNAL_ID.to_string());
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// One ExternalId value redacted: a value of wildcards only (`*`) is no secret and is kept, so that
/// [`super::can_enter`] decides on the stored policy as on the original (it lets any ExternalId in).
fn redacted(value: &Value) -> Value {
    match value {
        Value::String(v) if !v.is_empty() && v.chars().all(|c| c == '*' || c == '?') => value.clone(),
        _ => Value::String(REDACTED_EXTERNAL_ID.to_string()),
    }
}

/// The entry actions a statement covers, lowercased.
fn entry_actions(s: &Statement) -> BTreeSet<String> {
    ENTRY_ACTIONS
        .iter()
        .filter(|a| match (&s.action, &s.not_action) {
            (Some(actions), _) => actions.iter().any(|p| glob(p, a)),
            (None, Some(not)) => !not.iter().any(|p| glob(p, a)),
            (None, None) => false,
        })
        .map(|a| a.to_string())
        .collect()
}

/// What a statement's conditions mean, by key: a condition counts as a guard only when it restricts (see
/// [`restricts`]); one that keeps nobody out is named in `other_keys` with its operator and [`RESTRICTS_NOTHING`].
/// A Deny's condition guards only when it is the Deny's only one: several are met together, so none of them keeps
/// a caller out alone; they are named with [`NOT_WEIGHED`], and guard nothing.
pub(crate) fn guards_of(condition: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>, deny: bool) -> Guards {
    let mut g = Guards::default();
    let pairs = condition.values().map(BTreeMap::len).sum::<usize>();
    for (op, keys) in condition {
        for (key, values) in keys {
            let r = if deny && pairs > 1 { Restriction::Unknown } else { restricts(op, key, values, deny) };
            match r {
                Restriction::Nothing => {
                    g.other_keys
                        .insert(format!("{key} ({op}{}, {RESTRICTS_NOTHING})", if deny { " in a Deny" } else { "" }));
                    continue;
                }
                // A Deny's condition that cannot be weighed alone (one of several, or an operator the evaluator
                // does not model) is named, never taken for a guard: it may keep nobody out.
                Restriction::Unknown if deny => {
                    g.other_keys.insert(format!("{key} ({op} in a Deny, {NOT_WEIGHED})"));
                    continue;
                }
                Restriction::Unknown => {
                    g.other_keys.insert(key.to_string());
                    continue;
                }
                Restriction::Restricts => {}
            }
            match key.as_str() {
                "sts:externalid" => g.external_id = true,
                "aws:multifactorauthpresent" | "aws:multifactorauthage" => g.mfa = true,
                "aws:principalorgid" => {
                    g.organization.entry("aws:PrincipalOrgID".into()).or_default().extend(values.iter().cloned());
                }
                "aws:principalorgpaths" => {
                    g.organization.entry("aws:PrincipalOrgPaths".into()).or_default().extend(values.iter().cloned());
                }
                "aws:resourceorgid" => {
                    g.organization.entry("aws:ResourceOrgID".into()).or_default().extend(values.iter().cloned());
                }
                "sts:sourceidentity" => g.source_identity = true,
                "aws:principalarn" => g.principal_arns.extend(values.iter().cloned()),
                other => {
                    g.other_keys.insert(other.to_string());
                }
            }
        }
    }
    g
}

/// Whether one condition keeps out a request that lacks the right value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restriction {
    /// An Allow's condition fails (a Deny's holds) both for a request without the key and for one with a wrong
    /// value.
    Restricts,
    /// Some request without the right value gets through: a negated operator, `…IfExists`, `Null`,
    /// `ForAllValues:`, a pattern of wildcards only, `Bool` `"false"` on MFA.
    Nothing,
    /// Not known: an operator the evaluator does not model, or a Deny with several conditions.
    Unknown,
}

/// Whether the condition `op` on `key` (lowercased) with `values` restricts, in an Allow (`deny` false: the
/// request must meet it) or a Deny (the request must not). It is decided with the evaluator that [`super::can_enter`]
/// uses, on a request without the key and on requests with a wrong value: `"false"` for
/// `aws:MultiFactorAuthPresent`, a very old authentication for `aws:MultiFactorAuthAge`, otherwise a string made of
/// a character none of the values holds (ARN-shaped for the `Arn…` operators).
fn restricts(op: &str, key: &str, values: &BTreeSet<String>, deny: bool) -> Restriction {
    let base = op.trim_start_matches("ForAnyValue:").trim_start_matches("ForAllValues:");
    let wildcards_only = |v: &String| !v.is_empty() && v.chars().all(|c| c == '*' || c == '?');
    if !deny && base.contains("Like") && !base.contains("Not") && values.iter().any(wildcards_only) {
        return Restriction::Nothing;
    }
    let wrong = match key {
        "aws:multifactorauthpresent" => "false".to_string(),
        "aws:multifactorauthage" => "99999999999".to_string(),
        _ => {
            let c = ['~', '^', '#', '!', '`', '|']
                .into_iter()
                .find(|c| !values.iter().any(|v| v.contains(*c)))
                .unwrap_or('\u{7f}');
            let g = c.to_string().repeat(12);
            if base.starts_with("Arn") { format!("arn:{g}:{g}:{g}:{g}:{g}") } else { g }
        }
    };
    let condition = BTreeMap::from([(op.to_string(), BTreeMap::from([(key.to_string(), values.clone())]))]);
    let requests = [None, Some(vec![wrong])];
    let mut out = Restriction::Restricts;
    for request in &requests {
        let lookup = |k: &str| if k == key { request.as_ref() } else { None };
        match conditions_hold(&condition, &lookup) {
            Ok(()) if !deny => out = Restriction::Nothing,
            Err(Miss::Failed(_)) if deny => out = Restriction::Nothing,
            Err(Miss::Unsupported(_)) => return Restriction::Unknown,
            _ => {}
        }
    }
    out
}

fn merge(into: &mut Guards, more: &Guards) {
    into.external_id |= more.external_id;
    into.mfa |= more.mfa;
    for (k, v) in &more.organization {
        into.organization.entry(k.clone()).or_default().extend(v.iter().cloned());
    }
    into.source_identity |= more.source_identity;
    into.other_keys.extend(more.other_keys.iter().cloned());
    // A Deny's aws:PrincipalArn narrows nothing by itself (it says who is kept out); its key is named instead.
    if !more.principal_arns.is_empty() {
        into.other_keys.insert("aws:principalarn (in a Deny)".into());
    }
}

/// Whether `id` looks like IAM's unique id of a deleted role or user (`AROA…`, `AIDA…`).
fn is_unique_id(id: &str) -> bool {
    (id.starts_with("AROA") || id.starts_with("AIDA"))
        && id.len() >= 16
        && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A former member first: an account the organization still lists SUSPENDED (closed) is one.
fn account_kind(account: &str, ctx: &Context) -> EntrantKind {
    if ctx.former_member_account_ids.contains(account) {
        EntrantKind::FormerMember
    } else if ctx.member_account_ids.contains(account) {
        EntrantKind::OrganizationAccount
    } else {
        EntrantKind::OutsideAccount
    }
}

/// One entrant for a principal of type `ty` written `p` (normalized).
fn entrant(ty: &str, p: &str, actions: &BTreeSet<String>, guards: &Guards, ctx: &Context) -> Entrant {
    let base = |kind, principal: String, account_id: Option<String>, whole_account| Entrant {
        kind,
        principal,
        account_id,
        whole_account,
        actions: actions.clone(),
        conditions: guards.clone(),
    };
    match ty {
        "AWS" if p == "*" => base(EntrantKind::Anyone, "*".into(), None, false),
        "AWS" if names::is_account_id(p) => base(
            account_kind(p, ctx),
            names::account_root_arn(ctx.partition, p),
            Some(p.to_string()),
            guards.principal_arns.is_empty(),
        ),
        "AWS" if is_unique_id(p) => base(EntrantKind::UnresolvableId, p.into(), None, false),
        "AWS" => match Arn::parse(p).filter(|a| names::is_account_id(a.account)) {
            Some(arn) => base(account_kind(arn.account, ctx), p.into(), Some(arn.account.to_string()), false),
            None => base(EntrantKind::Other, p.into(), None, false),
        },
        "Service" => base(EntrantKind::Service, p.into(), None, false),
        "Federated" => {
            let account = Arn::parse(p).map(|a| a.account.to_string()).filter(|a| names::is_account_id(a));
            base(EntrantKind::Federated, p.into(), account, false)
        }
        _ => base(EntrantKind::Other, format!("{ty}: {p}"), None, false),
    }
}

/// The entrants a principal element names; `narrowed`: the accounts an Allow's conditions hold `*` to (see
/// [`narrowed_accounts`]), which `*` stands for instead of anyone.
fn entrants_of(
    p: &Principals,
    actions: &BTreeSet<String>,
    guards: &Guards,
    ctx: &Context,
    narrowed: Option<&Narrowed>,
) -> Vec<Entrant> {
    let one = |ty: &str, v: &str| match narrowed {
        Some(n) if ty == "AWS" && v == "*" => n.entrants(actions, guards, ctx),
        _ => vec![entrant(ty, v, actions, guards, ctx)],
    };
    match p {
        Principals::Any => one("AWS", "*"),
        Principals::Typed(map) => map
            .iter()
            .flat_map(|(ty, values)| values.iter().map(move |v| (ty.as_str(), v.as_str())))
            .flat_map(|(ty, v)| one(ty, v))
            .collect(),
    }
}

/// The accounts an Allow statement's conditions hold its caller to, whoever its principal: every account whose
/// principals can meet them, and whether the `aws:PrincipalAccount` key is wholly accounted for by them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Narrowed {
    accounts: BTreeSet<String>,
    principal_account_consumed: bool,
}

impl Narrowed {
    /// `*` held to these accounts: an entrant per account, as if its root were named (every principal of it, or
    /// those `aws:PrincipalArn` names), with the guards left, `aws:PrincipalArn` patterns of other accounts
    /// dropped.
    fn entrants(&self, actions: &BTreeSet<String>, guards: &Guards, ctx: &Context) -> Vec<Entrant> {
        self.accounts
            .iter()
            .map(|account| {
                let mut g = guards.clone();
                if self.principal_account_consumed {
                    g.other_keys.remove("aws:principalaccount");
                }
                g.principal_arns.retain(|p| arn_account(p).is_none_or(|a| a == account));
                entrant("AWS", account, actions, &g, ctx)
            })
            .collect()
    }
}

/// The account an ARN (or ARN pattern) names, when it names one: a 12-digit account segment, nothing but the
/// account's principals can match it.
fn arn_account(pattern: &str) -> Option<&str> {
    Arn::parse(pattern).map(|a| a.account).filter(|a| names::is_account_id(a))
}

/// The accounts a statement's conditions hold every caller to, when they do: `aws:PrincipalAccount` with
/// `StringEquals` (or `StringLike`) on account ids, `aws:PrincipalArn` with `ArnEquals`/`ArnLike` (or
/// `StringEquals`/`StringLike`, no wildcard before the account) on ARNs each naming an account; several such
/// conditions, the accounts all allow. Anything else — `…IfExists` (a request without the key gets through),
/// `ForAnyValue:`/`ForAllValues:`, a negated operator, a wildcard in the account — holds nobody to an account:
/// `None`, and `*` stays anyone (the wider reading). A condition that does not narrow only keeps more callers out,
/// so ignoring it keeps the reading wide enough.
fn narrowed_accounts(condition: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Option<Narrowed> {
    let mut accounts: Option<BTreeSet<String>> = None;
    let mut consumed = true;
    for (op, keys) in condition {
        for (key, values) in keys {
            let these: Option<BTreeSet<String>> = match (key.as_str(), op.as_str()) {
                ("aws:principalaccount", "StringEquals" | "StringLike") => {
                    values.iter().all(|v| names::is_account_id(v)).then(|| values.clone())
                }
                ("aws:principalarn", "ArnEquals" | "ArnLike" | "StringEquals" | "StringLike") => values
                    .iter()
                    .map(|v| {
                        let account = arn_account(v)?;
                        // A string pattern's wildcard before the account could stand for it.
                        let before = &v[..v.find(&format!(":{account}:"))?];
                        let literal = op.starts_with("Arn") || !before.contains(['*', '?']);
                        literal.then(|| account.to_string())
                    })
                    .collect(),
                _ => None,
            };
            if key == "aws:principalaccount" && these.is_none() {
                consumed = false;
            }
            if let Some(these) = these {
                accounts = Some(match accounts {
                    None => these,
                    Some(before) => before.intersection(&these).cloned().collect(),
                });
            }
        }
    }
    // No account meets them all: nobody gets in; `*` is kept, the wider reading.
    accounts.filter(|a| !a.is_empty()).map(|accounts| Narrowed { accounts, principal_account_consumed: consumed })
}

fn principals_text(p: &Principals) -> String {
    match p {
        Principals::Any => "*".into(),
        Principals::Typed(map) => {
            map.values().flat_map(|v| v.iter().map(String::as_str)).collect::<Vec<_>>().join(", ")
        }
    }
}

/// Whether a principal element names an entrant (as a whole: an account id names every principal of it).
fn names_entrant(p: &Principals, e: &Entrant) -> bool {
    let Principals::Typed(map) = p else { return true };
    if e.kind == EntrantKind::Anyone {
        return false;
    }
    let ty = match e.kind {
        EntrantKind::Service => "Service",
        EntrantKind::Federated => "Federated",
        _ => "AWS",
    };
    map.get(ty).is_some_and(|set| {
        set.contains(&e.principal)
            || set.contains("*") && ty == "AWS"
            || e.account_id.as_ref().is_some_and(|a| ty == "AWS" && set.contains(a))
    })
}

/// Who can enter: the principals of the Allow statements that cover an entry action, less the ones an
/// unconditional Deny keeps out; a conditional Deny's keys become the guards of the entrants it names, for the
/// actions it covers (a principal its `NotPrincipal` exempts is an entrant of its own, unguarded by it).
fn entrants(doc: &PolicyDocument, ctx: &Context) -> Vec<Entrant> {
    let mut list: Vec<Entrant> = Vec::new();
    for s in doc.statements().iter().filter(|s| s.effect == Effect::Allow) {
        let actions = entry_actions(s);
        if actions.is_empty() {
            continue;
        }
        let guards = guards_of(&s.condition, false);
        if let Some(p) = &s.principal {
            list.extend(entrants_of(p, &actions, &guards, ctx, narrowed_accounts(&s.condition).as_ref()));
        } else if let Some(np) = &s.not_principal {
            let mut e = entrant("AWS", "*", &actions, &guards, ctx);
            e.principal = format!("* except {}", principals_text(np));
            list.push(e);
        }
    }
    for deny in doc.statements().iter().filter(|s| s.effect == Effect::Deny) {
        let denied = entry_actions(deny);
        if denied.is_empty() {
            continue;
        }
        let guards = guards_of(&deny.condition, true);
        let unconditional = deny.condition.is_empty();
        let mut next = Vec::new();
        for e in list {
            let named = match (&deny.principal, &deny.not_principal) {
                (Some(p), _) => names_entrant(p, &e),
                (None, Some(np)) => !names_entrant(np, &e),
                (None, None) => false,
            };
            if !named {
                next.push(e);
                continue;
            }
            if !unconditional {
                // The guards hold only for the actions the Deny covers; the principals its NotPrincipal exempts
                // keep what they had.
                let covered: BTreeSet<String> = e.actions.intersection(&denied).cloned().collect();
                if covered.is_empty() {
                    next.push(e);
                    continue;
                }
                let uncovered: BTreeSet<String> = e.actions.difference(&denied).cloned().collect();
                if !uncovered.is_empty() {
                    next.push(Entrant { actions: uncovered, ..e.clone() });
                }
                if let (EntrantKind::Anyone, Some(np)) = (e.kind, &deny.not_principal) {
                    next.extend(entrants_of(np, &covered, &e.conditions, ctx, None));
                }
                let mut guarded = Entrant { actions: covered, ..e };
                merge(&mut guarded.conditions, &guards);
                next.push(guarded);
                continue;
            }
            let remaining: BTreeSet<String> = e.actions.difference(&denied).cloned().collect();
            if !remaining.is_empty() {
                next.push(Entrant { actions: remaining, ..e.clone() });
            }
            // Everyone but the principals a Deny's NotPrincipal names is kept out: anyone becomes those.
            if let (EntrantKind::Anyone, Some(np)) = (e.kind, &deny.not_principal) {
                let kept: BTreeSet<String> = e.actions.intersection(&denied).cloned().collect();
                next.extend(entrants_of(np, &kept, &e.conditions, ctx, None));
            }
        }
        list = next;
    }
    list.sort();
    list.dedup();
    list
}
