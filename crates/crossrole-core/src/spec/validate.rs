//! Validation: a spec as given ([`RawSpec`]) in, a domain spec (or every broken rule, with field paths) out.
//!
//! Spec files and the wire both become a `RawSpec` first, so this is the only place the rules live.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use super::{
    AccessSpec, AccountState, DEFAULT_VERIFY_TIMEOUT, GuardrailOptions, IamQuotas, Limit, PrincipalMatch, RoleSpec,
    RolloutOptions, TagCondition, TargetSelector, TrustSpec, TrustedGrant,
    raw::{Choice, RawGrant, RawGuardrails, RawLimit, RawRole, RawRollout, RawSelector, RawSpec, RawTrust},
};
use crate::{
    Error,
    error::Collector,
    names,
    policy::{DocumentKind, PolicyDocument},
    secret::ExternalId,
};

/// Tags crossrole adds to every role it owns, counted against IAM's 50.
const RESERVED_TAGS: usize = 2;

/// The longest policy document text read at all (bytes, whitespace included): far above what any IAM quota lets
/// through, so a document past it is refused without parsing it.
pub(crate) const DOCUMENT_TEXT_MAX: usize = 128 * 1024;

/// Validates a spec as given into a domain spec, reporting every broken rule.
pub fn validate(p: &RawSpec) -> Result<AccessSpec, Error> {
    let mut v = Collector::default();
    if let Err(rule) = names::check_not_templated(&p.name).and_then(|()| names::check_spec_name(&p.name)) {
        v.push("name", rule);
    }
    let role = match &p.role {
        Some(r) => role(r, &mut v),
        None => {
            v.push("role", "required");
            None
        }
    };
    let targets = match &p.targets {
        Some(t) => targets(t, "targets", &mut v),
        None => {
            v.push(
                "targets",
                "required: select at least one OU (the root selects the whole organization), account or tag",
            );
            TargetSelector::default()
        }
    };
    if let (Some(raw), Some(_)) = (&p.role, &p.targets) {
        adopt_within_targets(raw, &targets, &mut v);
    }
    let rollout = p.rollout.as_ref().map(|r| rollout(r, &mut v)).unwrap_or_default();
    let guardrails = p.guardrails.as_ref().map(|g| guardrails(g, &mut v)).unwrap_or_default();
    let grant = p.grant.as_ref().map(|g| grant(g, &p.name, role.as_ref(), &mut v));
    match role {
        Some(role) if v.is_empty() => {
            v.finish(AccessSpec { name: p.name.clone(), role, targets, grant: grant.flatten(), rollout, guardrails })
        }
        _ => Err(Error::Invalid(all_violations(v))),
    }
}

/// `role.adopt_accounts` names only accounts the spec targets (a role is taken over only where the spec places
/// its own), as far as the targets tell without the organization: none the targets exclude, and, when the targets
/// are account ids alone (no OU), none they do not list. The rest is checked against the selection
/// ([`adopt_outside_selection`]).
fn adopt_within_targets(r: &RawRole, t: &TargetSelector, v: &mut Collector) {
    let only_listed =
        t.organizational_unit_ids.is_empty() && t.organizational_unit_paths.is_empty() && !t.account_ids.is_empty();
    for (i, account) in r.adopt_accounts.iter().enumerate() {
        let field = format!("role.adopt_accounts[{i}]");
        if t.exclude_account_ids.contains(account) {
            v.push(
                field,
                format!(
                    "{account} is excluded by targets.exclude_account_ids: a role is taken over only in an account \
                     the spec targets"
                ),
            );
        } else if only_listed && !t.account_ids.contains(account) {
            v.push(
                field,
                format!(
                    "{account} is not among the spec's targets (targets.account_ids): a role is taken over only in \
                     an account the spec targets; add it to the targets or remove it here"
                ),
            );
        }
    }
}

/// The accounts of `spec`'s `role.adopt_accounts` that `selected` (the spec's targets, resolved on the organization,
/// skipped accounts included) does not hold, as violations of `role.adopt_accounts` (naming the account): a role is taken over only
/// in an account the spec targets, so one named elsewhere would be silently ignored.
pub fn adopt_outside_selection<'a>(
    spec: &AccessSpec,
    selected: impl IntoIterator<Item = &'a str>,
) -> Result<(), Error> {
    let selected: BTreeSet<&str> = selected.into_iter().collect();
    let mut v = Collector::default();
    for account in &spec.role.adopt_accounts {
        if !selected.contains(account.as_str()) {
            v.push(
                "role.adopt_accounts",
                format!(
                    "{account} is not among the accounts the spec's targets select: a role is taken over only in \
                     an account the spec targets; add it to the targets or remove it here"
                ),
            );
        }
    }
    v.finish(())
}

fn all_violations(v: Collector) -> Vec<crate::FieldViolation> {
    match v.finish(()) {
        Ok(()) => Vec::new(),
        Err(e) => e.violations().to_vec(),
    }
}

fn role(r: &RawRole, v: &mut Collector) -> Option<RoleSpec> {
    if let Err(rule) = names::check_not_templated(&r.name).and_then(|()| names::check_iam_name(&r.name, 64)) {
        v.push("role.name", rule);
    }
    let path = if r.path.is_empty() { "/".to_string() } else { r.path.clone() };
    // IAM takes `${` in a path: written as it is, it would be part of every ARN of the role.
    if let Err(rule) = names::check_not_templated(&path).and_then(|()| names::check_iam_path(&path)) {
        v.push("role.path", rule);
    }
    let description_len = r.description.chars().count();
    if description_len > 1000 {
        v.push("role.description", format!("at most 1000 characters (IAM), got {description_len}"));
    }
    if let Some(c) = r.description.chars().find(|c| !is_description_char(*c)) {
        v.push("role.description", format!("character {c:?} is not allowed in IAM descriptions"));
    }
    if let Err(rule) = names::check_template(&r.description) {
        v.push("role.description", rule);
    }
    let max_session = match &r.max_session_duration {
        None => super::DEFAULT_MAX_SESSION,
        Some(d) if d.nanos == 0 && (3600..=43200).contains(&d.seconds) => Duration::from_secs(d.seconds as u64),
        Some(d) => {
            v.push(
                "role.max_session_duration",
                format!("must be whole seconds from 3600 (1h) to 43200 (12h) (IAM), got {}s", d.seconds),
            );
            super::DEFAULT_MAX_SESSION
        }
    };
    let trust = match &r.trust {
        Some(t) => trust(t, v),
        None => {
            v.push("role.trust", "required: trust at least one account or principal");
            TrustSpec::default()
        }
    };
    let mut managed = BTreeSet::new();
    for (i, arn) in r.managed_policy_arns.iter().enumerate() {
        let field = format!("role.managed_policy_arns[{i}]");
        if let Err(rule) = names::check_policy_arn(arn) {
            v.push(&field, rule);
        } else if !managed.insert(arn.clone()) {
            v.push(&field, format!("{arn} is listed twice"));
        }
    }
    let mut inline = BTreeMap::new();
    let sorted_inline: BTreeMap<&String, &String> = r.inline_policies.iter().collect();
    for (name, text) in sorted_inline {
        let field = format!("role.inline_policies[{name:?}]");
        if let Err(rule) = names::check_not_templated(name) {
            v.push(&field, format!("policy name {rule}"));
        } else if let Err(rule) = names::check_iam_name(name, 128) {
            v.push(&field, format!("policy name {rule}"));
        } else if name.eq_ignore_ascii_case(crate::revocation::POLICY_NAME) {
            v.push(
                &field,
                format!(
                    "policy name {name} is the one IAM and crossrole give the revocation of a role's sessions; \
                     name the policy otherwise"
                ),
            );
        }
        if text.contains(crate::inventory::EXTERNAL_ID_PLACEHOLDER) {
            v.push(
                &field,
                format!(
                    "holds {}, the placeholder crossrole import writes for an ExternalId it does not copy: put the \
                     ExternalId this policy passes in its place",
                    crate::inventory::EXTERNAL_ID_PLACEHOLDER
                ),
            );
        }
        // Refused before it is parsed: no IAM quota comes near it, however it is laid out.
        if text.len() > DOCUMENT_TEXT_MAX {
            v.push(
                &field,
                format!("is {} bytes; IAM accepts at most 10,240 characters of inline policies per role", text.len()),
            );
            continue;
        }
        match PolicyDocument::parse(text, DocumentKind::Identity) {
            Ok(doc) => {
                // Sent to IAM as written: crossrole's variables would reach IAM unexpanded.
                let mut found = Vec::new();
                crossrole_variables_in(doc.as_value(), "", &mut found);
                for (at, rule) in found {
                    v.push(format!("{field}.{at}"), rule);
                }
                inline.insert(name.clone(), doc);
            }
            Err(errs) => v.extend(errs.into_iter().map(|e| {
                let field = if e.field.is_empty() { field.clone() } else { format!("{field}.{}", e.field) };
                crate::FieldViolation::new(field, e.rule)
            })),
        }
    }
    let boundary = if r.permissions_boundary_arn.is_empty() {
        None
    } else {
        if let Err(rule) = names::check_policy_arn(&r.permissions_boundary_arn) {
            v.push("role.permissions_boundary_arn", rule);
        }
        Some(r.permissions_boundary_arn.clone())
    };
    if r.tags.len() > 50 - RESERVED_TAGS {
        v.push(
            "role.tags",
            format!(
                "at most {} tags (IAM allows 50; crossrole adds {RESERVED_TAGS}), got {}",
                50 - RESERVED_TAGS,
                r.tags.len()
            ),
        );
    }
    let sorted_tags: BTreeMap<&String, &String> = r.tags.iter().collect();
    for (key, value) in sorted_tags {
        let field = format!("role.tags[{key:?}]");
        if let Err(rule) = names::check_not_templated(key).and_then(|()| names::check_tag_key(key)) {
            v.push(&field, rule);
        } else if key.starts_with("crossrole:") {
            v.push(&field, "tag keys starting with `crossrole:` are reserved for crossrole's ownership tags");
        }
        // A value may name the account it lands in (`${account_name}`…): its own characters must suit IAM.
        let checked = match names::check_template(value) {
            Ok(()) => names::check_tag_value(&names::expand(value, names::Place::SAMPLE)),
            Err(rule) => Err(rule),
        };
        if let Err(rule) = checked {
            v.push(&field, rule);
        }
    }
    let mut adopt_accounts = BTreeSet::new();
    for (i, account) in r.adopt_accounts.iter().enumerate() {
        let field = format!("role.adopt_accounts[{i}]");
        if let Err(rule) = names::check_account_id(account) {
            v.push(&field, rule);
        } else if !adopt_accounts.insert(account.clone()) {
            v.push(&field, "is listed twice");
        }
    }
    for (account, role_id) in &r.adopt_role_ids {
        let field = format!("role.adopt_role_ids[{account:?}]");
        if !adopt_accounts.contains(account) {
            v.push(
                &field,
                format!(
                    "{account} is not in role.adopt_accounts: a role id names the role approved in an account \
                     role.adopt_accounts lists"
                ),
            );
        } else if let Err(rule) = names::check_role_id(role_id) {
            v.push(&field, rule);
        }
    }
    if r.adopt_existing && !r.adopt_accounts.is_empty() {
        v.push(
            "role.adopt_accounts",
            "takes over roles only in the accounts it lists, which role.adopt_existing (every account) contradicts; \
             set one or the other",
        );
    }
    Some(RoleSpec {
        name: r.name.clone(),
        path,
        description: r.description.clone(),
        max_session_duration: max_session,
        trust,
        managed_policy_arns: managed,
        inline_policies: inline,
        permissions_boundary_arn: boundary,
        tags: r.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        adopt_existing: r.adopt_existing,
        adopt_accounts,
        adopt_role_ids: r.adopt_role_ids.clone(),
        revoke_sessions_on_narrowing: r.revoke_sessions_on_narrowing.unwrap_or(true),
    })
}

/// Every key and string of a policy document (`value`, at path `at` in it) that uses one of crossrole's variables,
/// as (path, rule): `Statement[0].Resource[1]`.
fn crossrole_variables_in(value: &serde_json::Value, at: &str, found: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            if let Err(rule) = names::check_policy_text(text) {
                found.push((at.to_string(), rule));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                crossrole_variables_in(item, &format!("{at}[{i}]"), found);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
                if let Err(rule) = names::check_policy_text(key) {
                    found.push((path.clone(), rule));
                }
                crossrole_variables_in(item, &path, found);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// IAM: `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]`.
fn is_description_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}')
}

fn trust(t: &RawTrust, v: &mut Collector) -> TrustSpec {
    let mut accounts = BTreeSet::new();
    for (i, id) in t.account_ids.iter().enumerate() {
        let field = format!("role.trust.account_ids[{i}]");
        if let Err(rule) = names::check_account_id(id) {
            v.push(&field, rule);
        } else if !accounts.insert(id.clone()) {
            v.push(&field, format!("{id} is listed twice"));
        }
    }
    let principal_match = match t.principal_match {
        Choice::Unspecified => PrincipalMatch::Condition,
        Choice::Is(m) => m,
        Choice::Unknown(n) => {
            v.push("role.trust.principal_match", format!("unknown value {n}"));
            PrincipalMatch::Condition
        }
    };
    let mut principals = BTreeSet::new();
    for (i, arn) in t.principal_arns.iter().enumerate() {
        let field = format!("role.trust.principal_arns[{i}]");
        if let Err(rule) = names::check_not_templated(arn).and_then(|()| names::check_principal_arn(arn)) {
            v.push(&field, rule);
        } else if principal_match == PrincipalMatch::Direct && arn != "*" && (arn.contains('*') || arn.contains('?')) {
            v.push(
                &field,
                "wildcards in principal ARNs need principal_match CONDITION (IAM principals cannot have wildcards)",
            );
        } else if !principals.insert(arn.clone()) {
            v.push(&field, format!("{arn} is listed twice"));
        }
    }
    if t.account_ids.is_empty() && t.principal_arns.is_empty() {
        v.push("role.trust", "trust at least one account (account_ids) or principal (principal_arns)");
    }
    let external_id = if t.external_id.is_empty() {
        None
    } else {
        if t.external_id == crate::inventory::EXTERNAL_ID_PLACEHOLDER {
            v.push(
                "role.trust.external_id",
                "is the placeholder that crossrole import writes: put the roles' ExternalId here (their vendor has it), \
                 or a new one the vendor will send",
            );
        } else if let Err(rule) = names::check_external_id(&t.external_id) {
            v.push("role.trust.external_id", rule);
        }
        Some(ExternalId::new(t.external_id.clone()))
    };
    let org = if t.principal_org_id.is_empty() {
        None
    } else {
        if !is_org_id(&t.principal_org_id) {
            v.push(
                "role.trust.principal_org_id",
                format!("must be an organization id like o-a1b2c3d4e5, got {:?}", t.principal_org_id),
            );
        }
        Some(t.principal_org_id.clone())
    };
    TrustSpec {
        account_ids: accounts,
        principal_arns: principals,
        external_id,
        require_mfa: t.require_mfa,
        principal_org_id: org,
        principal_match,
    }
}

fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|r| {
        (10..=32).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// `r-` + 4–32, or `ou-` + 4–32 + `-` + 8–32 lowercase letters and digits (Organizations).
pub(crate) fn is_ou_or_root_id(s: &str) -> bool {
    let alnum = |r: &str, lo: usize, hi: usize| {
        (lo..=hi).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if let Some(r) = s.strip_prefix("r-") {
        return alnum(r, 4, 32);
    }
    if let Some(r) = s.strip_prefix("ou-") {
        return r.split_once('-').is_some_and(|(a, b)| alnum(a, 4, 32) && alnum(b, 8, 32));
    }
    false
}

/// Validates a target selector; `at` is its field path (`targets`, or `selector` in ListAccounts).
pub(crate) fn targets(t: &RawSelector, at: &str, v: &mut Collector) -> TargetSelector {
    let ids = |list: &[String], name: &str, v: &mut Collector, check: &dyn Fn(&str) -> Result<(), String>| {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, id) in list.iter().enumerate() {
            let field = format!("{at}.{name}[{i}]");
            match check(id) {
                Err(rule) => v.push(&field, rule),
                Ok(()) if !seen.insert(id.as_str()) => v.push(&field, format!("{id} is listed twice")),
                Ok(()) => out.push(id.clone()),
            }
        }
        out
    };
    let ou = |id: &str| {
        if is_ou_or_root_id(id) {
            Ok(())
        } else {
            Err(format!("must be an OU id (ou-…) or the root id (r-…), got {id:?}"))
        }
    };
    let account = |id: &str| names::check_account_id(id);
    let path = |p: &str| {
        if p.starts_with('/') && !p.ends_with('/') && !p.contains("//") && p.len() <= 2048 {
            Ok(())
        } else {
            Err(format!("must be a path of OU names from the root like /Root/Workloads/Prod, got {p:?}"))
        }
    };
    let ous = ids(&t.organizational_unit_ids, "organizational_unit_ids", v, &ou);
    let ou_paths = ids(&t.organizational_unit_paths, "organizational_unit_paths", v, &path);
    let accounts = ids(&t.account_ids, "account_ids", v, &account);
    // Tags alone select from the whole organization (never its management account unless asked for).
    if t.organizational_unit_ids.is_empty()
        && t.organizational_unit_paths.is_empty()
        && t.account_ids.is_empty()
        && t.tags.is_empty()
    {
        v.push(at, "select at least one OU (the root selects the whole organization), account or tag");
    }
    let exclude_accounts = ids(&t.exclude_account_ids, "exclude_account_ids", v, &account);
    let exclude_ous = ids(&t.exclude_organizational_unit_ids, "exclude_organizational_unit_ids", v, &ou);
    let exclude_paths = ids(&t.exclude_organizational_unit_paths, "exclude_organizational_unit_paths", v, &path);
    let mut tags = Vec::new();
    for (i, c) in t.tags.iter().enumerate() {
        let field = format!("{at}.tags[{i}]");
        if c.key.is_empty() || c.key.chars().count() > 128 {
            v.push(format!("{field}.key"), "tag keys are 1 to 128 characters");
        }
        if c.value.as_ref().is_some_and(|x| x.chars().count() > 256) {
            v.push(format!("{field}.value"), "tag values are at most 256 characters");
        }
        tags.push(TagCondition { key: c.key.clone(), value: c.value.clone() });
    }
    let mut states = BTreeSet::new();
    for (i, s) in t.states.iter().enumerate() {
        match s {
            Choice::Unspecified | Choice::Unknown(_) => {
                v.push(format!("{at}.states[{i}]"), "must be a known account state")
            }
            Choice::Is(s) => {
                states.insert(*s);
            }
        }
    }
    if states.is_empty() {
        states.insert(AccountState::Active);
    }
    TargetSelector {
        organizational_unit_ids: ous,
        organizational_unit_paths: ou_paths,
        exclude_descendants: t.exclude_descendants,
        account_ids: accounts,
        tags,
        exclude_account_ids: exclude_accounts,
        exclude_organizational_unit_ids: exclude_ous,
        exclude_organizational_unit_paths: exclude_paths,
        include_management_account: t.include_management_account,
        states,
    }
}

/// Validates a selector on its own (for ListAccounts), with field paths under `at`.
pub fn validate_selector(t: &RawSelector, at: &str) -> Result<TargetSelector, Error> {
    let mut v = Collector::default();
    let s = targets(t, at, &mut v);
    v.finish(s)
}

fn grant(g: &RawGrant, spec_name: &str, role: Option<&RoleSpec>, v: &mut Collector) -> Option<TrustedGrant> {
    if let Err(rule) = names::check_account_id(&g.account_id) {
        v.push("grant.account_id", rule);
    } else if let Some(role) = role {
        let trusted = role.trust.account_ids.contains(&g.account_id)
            || role
                .trust
                .principal_arns
                .iter()
                .any(|p| p == "*" || names::Arn::parse(p).is_some_and(|a| a.account == g.account_id));
        if !trusted {
            v.push(
                "grant.account_id",
                format!(
                    "account {} is not trusted by role.trust; add it to role.trust.account_ids or principal_arns",
                    g.account_id
                ),
            );
        }
    }
    let names_of = |list: &[String], field: &str, max: usize, v: &mut Collector| {
        let mut out = BTreeSet::new();
        for (i, n) in list.iter().enumerate() {
            let f = format!("grant.{field}[{i}]");
            match names::check_not_templated(n).and_then(|()| names::check_iam_name(n, max)) {
                Err(rule) => v.push(&f, rule),
                Ok(()) if !out.insert(n.clone()) => v.push(&f, format!("{n} is listed twice")),
                Ok(()) => {}
            }
        }
        out
    };
    let users = names_of(&g.user_names, "user_names", 64, v);
    let groups = names_of(&g.group_names, "group_names", 128, v);
    let roles = names_of(&g.role_names, "role_names", 64, v);
    if g.user_names.is_empty() && g.group_names.is_empty() && g.role_names.is_empty() {
        v.push("grant", "name at least one user, group or role to attach the AssumeRole policy to");
    }
    let policy_name =
        if g.policy_name.is_empty() { AccessSpec::grant_policy_name(spec_name) } else { g.policy_name.clone() };
    // A default derived from an invalid spec name is already reported at `name`.
    if !g.policy_name.is_empty()
        && let Err(rule) =
            names::check_not_templated(&policy_name).and_then(|()| names::check_iam_name(&policy_name, 128))
    {
        v.push("grant.policy_name", rule);
    }
    Some(TrustedGrant {
        account_id: g.account_id.clone(),
        user_names: users,
        group_names: groups,
        role_names: roles,
        policy_name,
    })
}

fn limit(l: Option<&RawLimit>, field: &str, default: Limit, min_count: u32, v: &mut Collector) -> Limit {
    match l.copied() {
        None => default,
        Some(RawLimit::Count(n)) => {
            if n < min_count || n > 10_000 {
                v.push(format!("{field}.count"), format!("must be from {min_count} to 10000, got {n}"));
            }
            Limit::Count(n)
        }
        Some(RawLimit::Percent(p)) => {
            let min = min_count.min(1);
            if p < min || p > 100 {
                v.push(format!("{field}.percent"), format!("must be from {min} to 100, got {p}"));
            }
            Limit::Percent(p)
        }
    }
}

fn rollout(r: &RawRollout, v: &mut Collector) -> RolloutOptions {
    let defaults = RolloutOptions::default();
    // Left out: automatic (as many as AWS's quotas keep busy).
    let max_concurrency =
        r.max_concurrency.as_ref().map(|l| limit(Some(l), "rollout.max_concurrency", Limit::Count(1), 1, v));
    let failure_tolerance =
        limit(r.failure_tolerance.as_ref(), "rollout.failure_tolerance", defaults.failure_tolerance, 0, v);
    let (verify, verify_timeout) = match &r.verify {
        None => (true, DEFAULT_VERIFY_TIMEOUT),
        Some(o) => {
            let timeout = match &o.timeout {
                None => DEFAULT_VERIFY_TIMEOUT,
                Some(d) if d.seconds >= 0 && d.seconds <= 3600 && d.nanos >= 0 => {
                    Duration::new(d.seconds as u64, d.nanos as u32)
                }
                Some(_) => {
                    v.push("rollout.verify.timeout", "must be from 0s to 1h");
                    DEFAULT_VERIFY_TIMEOUT
                }
            };
            (o.enabled.unwrap_or(true), timeout)
        }
    };
    RolloutOptions { max_concurrency, failure_tolerance, verify, verify_timeout, prune: r.prune }
}

fn guardrails(g: &RawGuardrails, v: &mut Collector) -> GuardrailOptions {
    let defaults = IamQuotas::default();
    let quotas = match &g.quotas {
        None => defaults,
        Some(q) => {
            let pick = |value: u32, default: usize, lo: usize, hi: usize, field: &str, v: &mut Collector| {
                if value == 0 {
                    return default;
                }
                let value = value as usize;
                if !(lo..=hi).contains(&value) {
                    v.push(
                        format!("guardrails.quotas.{field}"),
                        format!("must be from {lo} to {hi} (IAM's adjustable range), got {value}"),
                    );
                }
                value
            };
            IamQuotas {
                trust_policy_size: pick(
                    q.trust_policy_size,
                    defaults.trust_policy_size,
                    2048,
                    4096,
                    "trust_policy_size",
                    v,
                ),
                inline_policies_size: pick(
                    q.inline_policies_size,
                    defaults.inline_policies_size,
                    1,
                    10_240,
                    "inline_policies_size",
                    v,
                ),
                managed_policies_per_role: pick(
                    q.managed_policies_per_role,
                    defaults.managed_policies_per_role,
                    1,
                    20,
                    "managed_policies_per_role",
                    v,
                ),
            }
        }
    };
    let mut waivers = BTreeMap::new();
    for (i, w) in g.waivers.iter().enumerate() {
        let field = format!("guardrails.waivers[{i}]");
        let guardrail = match w.guardrail {
            Choice::Unspecified | Choice::Unknown(_) => {
                v.push(format!("{field}.guardrail"), "must name a guardrail");
                continue;
            }
            Choice::Is(g) => g,
        };
        if guardrail == super::Guardrail::UnownedRole {
            v.push(
                format!("{field}.guardrail"),
                "a role crossrole does not own is never modified by a waiver; `crossrole adopt -f <spec file>` takes it over on \
                 approval (role.adopt_accounts), or set role.adopt_existing",
            );
            continue;
        }
        if w.reason.trim().is_empty() {
            v.push(format!("{field}.reason"), "a waiver needs a reason");
        }
        if waivers.insert(guardrail, w.reason.clone()).is_some() {
            v.push(format!("{field}.guardrail"), format!("{} is waived twice", guardrail.as_str()));
        }
    }
    GuardrailOptions { quotas, waivers }
}
