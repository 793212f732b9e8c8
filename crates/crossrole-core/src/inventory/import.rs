//! Writing a spec from hand-made roles: the roles of one name across the organization become one spec with the
//! most common trust, path, managed policies, inline policies and boundary; each account that differs is listed
//! with how; what a spec cannot write (a service or federated principal, a Deny, a condition crossrole does not
//! write) is said, never silently dropped.
//!
//! The spec names the accounts where the role is (`targets.account_ids`) and leaves `adopt_existing` off: the roles
//! are taken over only through an explicit adoption. ExternalIds are never copied: when the roles require one, the
//! spec carries a placeholder that must be replaced (applied as it is, it would lock the trusted side out) and the
//! output says whether the accounts share one value. A managed policy or boundary ARN in the role's own account is
//! written with `${account_id}`, so a policy of the same name in each account is one value. Tags, the description
//! and the session duration are not imported (IAM's account authorization details carry neither of the last two).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Context, RoleDetail};
use crate::{
    AccessSpec, Error, FieldViolation, guardrails,
    names::{self, Arn},
    policy::{Effect, PolicyDocument, Principals},
};

/// The ExternalId written into an imported spec in place of the roles' own.
pub const EXTERNAL_ID_PLACEHOLDER: &str = "REPLACE-with-the-roles-ExternalId";

/// A spec written from hand-made roles, and what it does not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// The spec, YAML in the format of [`crate::spec::SpecFile`]; it parses, and validates once the roles'
    /// ExternalId is put in place of [`EXTERNAL_ID_PLACEHOLDER`] (validation refuses the placeholder, naming it).
    pub spec_yaml: String,
    /// The accounts the role is in (the spec's targets).
    pub accounts: Vec<String>,
    /// How each account that differs from the spec differs.
    pub differences: Vec<AccountDifference>,
    /// What the roles do that the spec cannot write, per account (`account: what`).
    pub not_expressible: Vec<String>,
    /// What the spec's guardrails say of it, and what must be done before it applies.
    pub notes: Vec<String>,
}

/// One way one account's role differs from the imported spec.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountDifference {
    /// The account.
    pub account_id: String,
    /// What differs.
    pub aspect: Aspect,
    /// How, in words (never an ExternalId's value).
    pub detail: String,
}

/// What part of a role differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    /// Who can enter, under which conditions.
    Trust,
    /// The attached managed policies.
    Managed,
    /// The inline policies.
    Inline,
    /// The permissions boundary.
    Boundary,
    /// The IAM path.
    Path,
}

/// A trust policy as a spec can say it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Trust {
    account_ids: BTreeSet<String>,
    principal_arns: BTreeSet<String>,
    /// The value, only ever compared.
    external_id: Option<String>,
    require_mfa: bool,
    principal_org_id: Option<String>,
    /// `aws:PrincipalArn` conditions rather than ARNs as principals.
    by_condition: bool,
}

/// One account's role, as a spec would say it.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    account_id: String,
    path: String,
    trust: Trust,
    managed: BTreeSet<String>,
    inline: BTreeMap<String, Value>,
    boundary: Option<String>,
}

/// Writes the spec `spec_name` from `roles`, every one of the same name (one per account).
pub fn import(spec_name: &str, roles: &[RoleDetail], ctx: &Context) -> Result<Import, Error> {
    let Some(first) = roles.first() else { return Err(Error::invalid("roles", "no role to import")) };
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, r) in roles.iter().enumerate() {
        if r.name != first.name {
            violations.push(FieldViolation::new(
                format!("roles[{i}].name"),
                format!("every role imported must have the same name ({:?}, not {:?})", first.name, r.name),
            ));
        }
        if !seen.insert(r.account_id.as_str()) {
            violations.push(FieldViolation::new(
                format!("roles[{i}].account_id"),
                format!("account {} is given twice", r.account_id),
            ));
        }
    }
    if !violations.is_empty() {
        return Err(Error::Invalid(violations));
    }

    let mut not_expressible = Vec::new();
    let shapes: Vec<Shape> = roles.iter().map(|r| shape(r, &mut not_expressible)).collect();
    let path = most_common(shapes.iter().map(|s| &s.path));
    let trust = most_common(shapes.iter().map(|s| &s.trust));
    let managed = most_common(shapes.iter().map(|s| &s.managed));
    let inline = most_common(shapes.iter().map(|s| &s.inline));
    let boundary = most_common(shapes.iter().map(|s| &s.boundary));

    let mut differences = Vec::new();
    for s in &shapes {
        let mut differ = |aspect, detail: String| {
            differences.push(AccountDifference { account_id: s.account_id.clone(), aspect, detail })
        };
        if s.path != path {
            differ(Aspect::Path, format!("path {} (the spec: {path})", s.path));
        }
        if s.trust != trust {
            differ(Aspect::Trust, trust_difference(&s.trust, &trust));
        }
        if s.managed != managed {
            differ(Aspect::Managed, set_difference(&s.managed, &managed));
        }
        if s.inline != inline {
            differ(Aspect::Inline, inline_difference(&s.inline, &inline));
        }
        if s.boundary != boundary {
            differ(
                Aspect::Boundary,
                format!(
                    "boundary {} (the spec: {})",
                    s.boundary.as_deref().unwrap_or("none"),
                    boundary.as_deref().unwrap_or("none")
                ),
            );
        }
    }
    differences.sort();

    let mut notes = Vec::new();
    let external_ids: BTreeSet<&String> = shapes.iter().filter_map(|s| s.trust.external_id.as_ref()).collect();
    if trust.external_id.is_some() {
        notes.push(format!(
            "the roles require an ExternalId and crossrole does not copy it: replace {EXTERNAL_ID_PLACEHOLDER} in \
             role.trust.external_id with it before adopting (as it is, the trusted side would be locked out){}",
            if external_ids.len() > 1 {
                format!("; the accounts use {} different ExternalIds", external_ids.len())
            } else {
                String::new()
            }
        ));
    }
    let accounts: Vec<String> =
        shapes.iter().map(|s| s.account_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let yaml = spec_yaml(spec_name, &first.name, &path, &trust, &managed, &inline, &boundary, &accounts)?;
    // Checked as it will be applied: the placeholder (which validation refuses, so the spec cannot be applied
    // before a person puts the ExternalId in) stands for an ExternalId here.
    let spec = AccessSpec::from_yaml(&yaml.replace(EXTERNAL_ID_PLACEHOLDER, "Vq8wS2kLm4Np7RtX3yZc6MdB9hJgQe5u"))?;
    let org = guardrails::OrgContext { member_accounts: Some(&ctx.member_account_ids) };
    for f in guardrails::check(&spec, ctx.partition, org) {
        let effect = if f.blocks() { "blocks apply until fixed or waived" } else { "warning" };
        notes.push(format!("guardrail {} ({effect}): {}", f.guardrail.as_str(), f.message));
    }
    not_expressible.sort();
    not_expressible.dedup();
    Ok(Import { spec_yaml: yaml, accounts, differences, not_expressible, notes })
}

/// The value most roles have; on a tie, the first account's (in the order given).
fn most_common<'a, T: PartialEq + Clone + 'a>(values: impl Iterator<Item = &'a T>) -> T {
    let values: Vec<&T> = values.collect();
    let mut best: Option<(&T, usize)> = None;
    for v in &values {
        let n = values.iter().filter(|w| **w == *v).count();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((v, n));
        }
    }
    best.map(|(v, _)| v.clone()).unwrap_or_else(|| values[0].clone())
}

/// `arn:…:iam::<the role's account>:policy/…` as `arn:…:iam::${account_id}:policy/…`.
fn templated(arn: &str, account: &str) -> String {
    match Arn::parse(arn) {
        Some(a) if a.account == account => {
            format!("arn:{}:{}:{}:${{account_id}}:{}", a.partition, a.service, a.region, a.resource)
        }
        _ => arn.to_string(),
    }
}

fn shape(role: &RoleDetail, not_expressible: &mut Vec<String>) -> Shape {
    let account = &role.account_id;
    let mut say = |what: String| not_expressible.push(format!("{account}: {what}"));
    let trust = match PolicyDocument::parse_observed(&role.trust_policy) {
        Ok(doc) => trust_of(&doc, &mut say),
        Err(_) => {
            say("the trust policy does not parse; the spec trusts nobody for it".into());
            Trust::default()
        }
    };
    let mut inline = BTreeMap::new();
    for (name, text) in &role.inline_policies {
        match PolicyDocument::parse_observed(text) {
            Ok(doc) => {
                let mut value = doc.as_value().clone();
                if external_ids_replaced(&mut value) {
                    say(format!(
                        "inline policy {name} passes an ExternalId, which crossrole does not copy: replace \
                         {EXTERNAL_ID_PLACEHOLDER} in it with that ExternalId"
                    ));
                }
                inline.insert(name.clone(), value);
            }
            Err(_) => say(format!("inline policy {name} does not parse and is left out")),
        }
    }
    Shape {
        account_id: account.clone(),
        path: role.path.clone(),
        trust,
        managed: role.managed_policy_arns.iter().map(|a| templated(a, account)).collect(),
        inline,
        boundary: role.permissions_boundary_arn.as_deref().map(|a| templated(a, account)),
    }
}

/// Replaces every `sts:ExternalId` value in a policy's conditions (but wildcards only, and a `Null` condition's
/// `"true"`/`"false"`) with [`EXTERNAL_ID_PLACEHOLDER`]; whether it replaced any.
fn external_ids_replaced(policy: &mut Value) -> bool {
    let mut replaced = false;
    let statements = match policy.get_mut("Statement") {
        Some(Value::Array(all)) => all.iter_mut().collect::<Vec<_>>(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return false,
    };
    for statement in statements {
        let Some(Value::Object(ops)) = statement.get_mut("Condition") else { continue };
        for (op, keys) in ops.iter_mut() {
            let Value::Object(keys) = keys else { continue };
            if op.eq_ignore_ascii_case("Null") {
                continue;
            }
            for (key, values) in keys.iter_mut() {
                if !key.eq_ignore_ascii_case("sts:externalid") {
                    continue;
                }
                let secret = |v: &Value| !matches!(v, Value::String(s) if !s.is_empty() && s.chars().all(|c| c == '*' || c == '?'));
                let swap = |v: &mut Value, replaced: &mut bool| {
                    if secret(v) {
                        *v = Value::String(EXTERNAL_ID_PLACEHOLDER.into());
                        *replaced = true;
                    }
                };
                match values {
                    Value::Array(items) => items.iter_mut().for_each(|v| swap(v, &mut replaced)),
                    one => swap(one, &mut replaced),
                }
            }
        }
    }
    replaced
}

/// The trust a spec can say, from a trust policy; what it cannot say goes to `say`.
fn trust_of(doc: &PolicyDocument, say: &mut dyn FnMut(String)) -> Trust {
    let mut t = Trust::default();
    let mut conditions: Option<BTreeMap<String, BTreeMap<String, BTreeSet<String>>>> = None;
    let mut direct = false;
    for s in doc.statements() {
        if s.effect == Effect::Deny {
            say("a Deny statement in the trust policy (a spec cannot write one)".into());
            continue;
        }
        let assumes = s.action.as_ref().is_some_and(|a| a.iter().any(|a| a == "sts:assumerole" || a == "sts:*"));
        if !assumes {
            say(format!(
                "an Allow of {} (a spec writes only sts:AssumeRole)",
                s.action.iter().flatten().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        }
        if let Some(extra) = s.action.as_ref().map(|a| a.iter().filter(|a| *a != "sts:assumerole").count())
            && extra > 0
        {
            say("actions besides sts:AssumeRole (a spec writes only that one)".into());
        }
        if s.not_principal.is_some() {
            say("a NotPrincipal (a spec cannot write one)".into());
            continue;
        }
        let mut cond = s.condition.clone();
        let arn_patterns = ["ArnLike", "ArnEquals"]
            .iter()
            .find_map(|op| cond.get_mut(*op).and_then(|keys| keys.remove("aws:principalarn")));
        cond.retain(|_, keys| !keys.is_empty());
        match &conditions {
            None => conditions = Some(cond.clone()),
            Some(c) if *c != cond => {
                say("statements with different conditions (a spec puts the same on every one)".into())
            }
            Some(_) => {}
        }
        match &s.principal {
            Some(Principals::Any) => {
                t.principal_arns.insert("*".into());
            }
            Some(Principals::Typed(map)) => {
                for (ty, values) in map {
                    if ty != "AWS" {
                        for v in values {
                            say(format!(
                                "trusts the {ty} principal {v} (a spec trusts only AWS accounts and principals)"
                            ));
                        }
                        continue;
                    }
                    for v in values {
                        if let Some(patterns) = &arn_patterns {
                            // crossrole's own shape: the accounts' roots, narrowed by aws:PrincipalArn.
                            if !names::is_account_id(v) {
                                say(format!("{v} is named beside an aws:PrincipalArn condition; it is left out"));
                            }
                            t.principal_arns.extend(patterns.iter().cloned());
                            t.by_condition = true;
                        } else if v == "*" {
                            t.principal_arns.insert("*".into());
                        } else if names::is_account_id(v) {
                            t.account_ids.insert(v.clone());
                        } else if Arn::parse(v).is_some() {
                            t.principal_arns.insert(v.clone());
                            direct = true;
                        } else {
                            say(format!(
                                "trusts {v}, which is not an ARN or an account id (a deleted principal?); it is left out"
                            ));
                        }
                    }
                }
            }
            None => {}
        }
    }
    if direct && t.by_condition {
        say("principals named both directly and by aws:PrincipalArn; the spec names them by condition".into());
    }
    for (op, keys) in conditions.unwrap_or_default() {
        for (key, values) in keys {
            let one = (values.len() == 1).then(|| values.iter().next().cloned()).flatten();
            match (op.as_str(), key.as_str(), one) {
                ("StringEquals", "sts:externalid", Some(v)) => t.external_id = Some(v),
                ("StringEquals", "aws:principalorgid", Some(v)) => t.principal_org_id = Some(v),
                ("Bool", "aws:multifactorauthpresent", Some(v)) if v == "true" => t.require_mfa = true,
                ("BoolIfExists", "aws:multifactorauthpresent", Some(v)) if v == "true" => {
                    t.require_mfa = true;
                    say("MFA asked with BoolIfExists; the spec asks it with Bool (stricter: callers without an MFA key are refused)".into());
                }
                (op, "sts:externalid", _) => {
                    say(format!("an ExternalId condition {op} the spec cannot write (only one value, StringEquals)"))
                }
                (op, key, _) => say(format!("the condition {op} {key} (a spec cannot write it)")),
            }
        }
    }
    t
}

fn describe(t: &Trust) -> String {
    let mut who: Vec<String> = t.account_ids.iter().cloned().chain(t.principal_arns.iter().cloned()).collect();
    if who.is_empty() {
        who.push("nobody".into());
    }
    let mut s = who.join(", ");
    let mut guards = Vec::new();
    if t.external_id.is_some() {
        guards.push("an ExternalId");
    }
    if t.require_mfa {
        guards.push("MFA");
    }
    if t.principal_org_id.is_some() {
        guards.push("aws:PrincipalOrgID");
    }
    if !guards.is_empty() {
        s.push_str(&format!(" with {}", guards.join(", ")));
    }
    s
}

fn trust_difference(have: &Trust, spec: &Trust) -> String {
    let mut parts = Vec::new();
    let (ha, sa) = (&have.account_ids, &spec.account_ids);
    let (hp, sp) = (&have.principal_arns, &spec.principal_arns);
    let extra: Vec<&String> = ha.difference(sa).chain(hp.difference(sp)).collect();
    let missing: Vec<&String> = sa.difference(ha).chain(sp.difference(hp)).collect();
    if !extra.is_empty() {
        parts.push(format!("also trusts {}", extra.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
    }
    if !missing.is_empty() {
        parts.push(format!("does not trust {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
    }
    match (&have.external_id, &spec.external_id) {
        (None, Some(_)) => parts.push("requires no ExternalId".into()),
        (Some(_), None) => parts.push("requires an ExternalId".into()),
        (Some(a), Some(b)) if a != b => parts.push("requires another ExternalId".into()),
        _ => {}
    }
    if have.require_mfa != spec.require_mfa {
        parts.push(if have.require_mfa { "requires MFA" } else { "does not require MFA" }.into());
    }
    if have.principal_org_id != spec.principal_org_id {
        parts.push(format!("aws:PrincipalOrgID {}", have.principal_org_id.as_deref().unwrap_or("none")));
    }
    if have.by_condition != spec.by_condition && parts.is_empty() {
        parts.push("names its principals another way (directly or by aws:PrincipalArn)".into());
    }
    format!("{} (here: {}; the spec: {})", parts.join("; "), describe(have), describe(spec))
}

fn set_difference(have: &BTreeSet<String>, spec: &BTreeSet<String>) -> String {
    let mut parts = Vec::new();
    for a in have.difference(spec) {
        parts.push(format!("+{a}"));
    }
    for a in spec.difference(have) {
        parts.push(format!("-{a}"));
    }
    parts.join(", ")
}

fn inline_difference(have: &BTreeMap<String, Value>, spec: &BTreeMap<String, Value>) -> String {
    let mut parts = Vec::new();
    for (name, doc) in have {
        match spec.get(name) {
            None => parts.push(format!("+{name}")),
            Some(want) if !same_document(doc, want) => parts.push(format!("{name} differs")),
            Some(_) => {}
        }
    }
    for name in spec.keys().filter(|n| !have.contains_key(*n)) {
        parts.push(format!("-{name}"));
    }
    if parts.is_empty() { "the same documents written differently".into() } else { parts.join(", ") }
}

fn same_document(a: &Value, b: &Value) -> bool {
    let parse = |v: &Value| PolicyDocument::from_value(v.clone(), crate::policy::DocumentKind::Observed).ok();
    parse(a).is_some() && parse(a) == parse(b)
}

#[allow(clippy::too_many_arguments)]
fn spec_yaml(
    spec_name: &str,
    role_name: &str,
    path: &str,
    trust: &Trust,
    managed: &BTreeSet<String>,
    inline: &BTreeMap<String, Value>,
    boundary: &Option<String>,
    accounts: &[String],
) -> Result<String, Error> {
    let mut t = Map::new();
    if !trust.account_ids.is_empty() {
        t.insert("account_ids".into(), json!(trust.account_ids));
    }
    if !trust.principal_arns.is_empty() {
        t.insert("principal_arns".into(), json!(trust.principal_arns));
        t.insert("principal_match".into(), json!(if trust.by_condition { "condition" } else { "direct" }));
    }
    if trust.external_id.is_some() {
        t.insert("external_id".into(), json!(EXTERNAL_ID_PLACEHOLDER));
    }
    if trust.require_mfa {
        t.insert("require_mfa".into(), json!(true));
    }
    if let Some(org) = &trust.principal_org_id {
        t.insert("principal_org_id".into(), json!(org));
    }
    let mut role = Map::new();
    role.insert("name".into(), json!(role_name));
    role.insert("path".into(), json!(path));
    role.insert("trust".into(), Value::Object(t));
    if !managed.is_empty() {
        role.insert("managed_policy_arns".into(), json!(managed));
    }
    if !inline.is_empty() {
        role.insert("inline_policies".into(), json!(inline));
    }
    if let Some(b) = boundary {
        role.insert("permissions_boundary_arn".into(), json!(b));
    }
    let spec = json!({ "name": spec_name, "role": role, "targets": { "account_ids": accounts } });
    let body = serde_yaml_ng::to_string(&spec)
        .map_err(|e| Error::invalid("", format!("the imported spec could not be written as YAML: {e}")))?;
    Ok(format!(
        "# Written by crossrole import from the roles named {role_name} in {} account(s).\n\
         # Review it, then take the roles over with `crossrole adopt -f <this file>` (nothing is adopted without approval).\n{body}",
        accounts.len()
    ))
}
