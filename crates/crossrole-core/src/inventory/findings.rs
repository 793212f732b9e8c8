//! Findings: what is wrong with a role, or worth a look, each with a severity and the reason in plain words.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Context, Entrant, EntrantKind, ExpectedRole, Guards, InventoryRole, RoleDetail};
use crate::policy::PolicyDocument;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information.
    Info,
    /// Worth tidying.
    Low,
    /// Worth a look soon.
    Medium,
    /// Access someone should not have, likely.
    High,
    /// Anyone can enter.
    Critical,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// `*` can enter: any AWS principal anywhere (critical without a condition that restricts, low held to this
    /// organization, high with an ExternalId only, medium otherwise); or any identity of a web identity provider
    /// (high: no condition names the audience, or for GitHub Actions the repository).
    AnyoneCanEnter,
    /// An account outside the organization is trusted without an ExternalId: the confused-deputy case.
    OutsideWithoutExternalId,
    /// A whole outside account (its root) is trusted: every principal its administrators allow can enter; or an
    /// identity provider in an outside account (high).
    OutsideAccountRoot,
    /// A principal IAM rewrote to its unique id (`AROA…`/`AIDA…`) because it was deleted: the trust is broken.
    BrokenPrincipal,
    /// Not used for the threshold's days, or never used and older than it.
    Unused,
    /// Trusted by an account that left the organization.
    FormerMember,
    /// A crossrole-owned role that is not as its spec says.
    Drifted,
    /// The trust policy does not parse.
    UnreadableTrust,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Finding {
    /// What it is about.
    pub kind: FindingKind,
    /// How much it matters.
    pub severity: Severity,
    /// Why, in plain words, naming the principal.
    pub reason: String,
}

impl Finding {
    fn new(kind: FindingKind, severity: Severity, reason: impl Into<String>) -> Finding {
        Finding { kind, severity, reason: reason.into() }
    }
}

const DAY: i64 = 86_400;

/// The trust policy does not parse.
pub(super) fn unreadable(why: &str) -> Finding {
    Finding::new(
        FindingKind::UnreadableTrust,
        Severity::Medium,
        format!("the trust policy does not parse ({why}): who can enter is unknown"),
    )
}

/// Every finding of a classified role (`out`, its entrants filled in), but an unreadable trust.
pub(super) fn findings(
    role: &RoleDetail,
    out: &InventoryRole,
    doc: Option<&PolicyDocument>,
    ctx: &Context,
) -> Vec<Finding> {
    let mut found = Vec::new();
    for e in &out.entrants {
        found.extend(entrant_findings(e, ctx));
    }
    found.extend(unused(role, ctx));
    let expected = ctx.expected.get(&(role.account_id.clone(), role.name.clone()));
    match (doc, expected) {
        (_, Some(expected)) if out.owner.as_deref() != Some(expected.spec_name.as_str()) => {
            found.push(Finding::new(
                FindingKind::Drifted,
                Severity::Medium,
                format!(
                    "crossrole's journal has it as spec {}'s, but its ownership tags {}: crossrole no longer manages it",
                    expected.spec_name,
                    match &out.owner {
                        Some(other) => format!("name spec {other}"),
                        None => "are gone".to_string(),
                    }
                ),
            ));
        }
        (Some(doc), Some(expected)) => found.extend(drifted(role, doc, expected)),
        _ => {}
    }
    // Tags anyone allowed to tag roles can set: a role that claims a spec crossrole has not placed in the account
    // is not crossrole's, whatever it says.
    if let (Some(claimed), Some(placed)) = (&out.owner, &ctx.placed_specs)
        && !placed.contains(claimed)
    {
        found.push(Finding::new(
            FindingKind::Drifted,
            Severity::Medium,
            format!(
                "its ownership tags name spec {claimed}, but crossrole's journal has not placed spec {claimed} in this \
                 account: tagged (or made) by hand, and an apply of {claimed} here would take it for its own"
            ),
        ));
    }
    found.sort();
    found.dedup();
    found
}

/// Whether the guards hold the caller to this organization.
fn held_to_organization(g: &Guards, ctx: &Context) -> bool {
    g.organization.get("aws:PrincipalOrgID").is_some_and(|ids| ids.iter().all(|id| *id == ctx.organization_id))
        || g.organization.contains_key("aws:PrincipalOrgPaths")
            && g.organization
                .get("aws:PrincipalOrgPaths")
                .is_some_and(|paths| paths.iter().all(|p| p.starts_with(&format!("{}/", ctx.organization_id))))
}

fn guards_text(g: &Guards) -> String {
    let mut parts = Vec::new();
    if g.external_id {
        parts.push("an ExternalId".to_string());
    }
    if g.mfa {
        parts.push("MFA".to_string());
    }
    for (key, values) in &g.organization {
        parts.push(format!("{key} {}", values.iter().cloned().collect::<Vec<_>>().join(", ")));
    }
    if g.source_identity {
        parts.push("a source identity".to_string());
    }
    if !g.principal_arns.is_empty() {
        parts.push(format!("aws:PrincipalArn {}", g.principal_arns.iter().cloned().collect::<Vec<_>>().join(", ")));
    }
    for key in &g.other_keys {
        parts.push(key.clone());
    }
    parts.join(", ")
}

fn entrant_findings(e: &Entrant, ctx: &Context) -> Vec<Finding> {
    let g = &e.conditions;
    let mut found = Vec::new();
    let who = &e.principal;
    match e.kind {
        EntrantKind::Anyone => {
            let (severity, tail) = if g.is_empty() {
                (Severity::Critical, "with no condition: any AWS principal in any account".to_string())
            } else if !g.restricts() {
                (
                    Severity::Critical,
                    format!(
                        "with no condition that keeps anyone out ({}): any AWS principal in any account",
                        guards_text(g)
                    ),
                )
            } else if held_to_organization(g, ctx) {
                (Severity::Low, format!("held to this organization ({})", guards_text(g)))
            } else if g.external_id && g.principal_arns.is_empty() && g.organization.is_empty() {
                (
                    Severity::High,
                    "guarded only by an ExternalId, which is not a secret: any AWS principal that knows it".into(),
                )
            } else {
                (Severity::Medium, format!("guarded by {}", guards_text(g)))
            };
            found.push(Finding::new(FindingKind::AnyoneCanEnter, severity, format!("{who} can enter, {tail}")));
        }
        EntrantKind::OutsideAccount | EntrantKind::FormerMember => {
            let account = e.account_id.as_deref().unwrap_or(who);
            // An outside account cannot meet a condition that holds callers to this organization.
            if held_to_organization(g, ctx) {
                return found;
            }
            if e.kind == EntrantKind::FormerMember {
                found.push(Finding::new(
                    FindingKind::FormerMember,
                    Severity::High,
                    format!("{who} can enter, and its account {account} left the organization"),
                ));
            } else if !g.external_id {
                found.push(Finding::new(
                    FindingKind::OutsideWithoutExternalId,
                    Severity::High,
                    format!(
                        "{who}, outside the organization, can enter without an ExternalId: a service it runs for \
                         others can be tricked into using this role (the confused deputy)"
                    ),
                ));
            }
            if e.whole_account && e.kind == EntrantKind::OutsideAccount {
                let severity = if g.external_id { Severity::Low } else { Severity::Medium };
                found.push(Finding::new(
                    FindingKind::OutsideAccountRoot,
                    severity,
                    format!(
                        "the whole account {account}, outside the organization, is trusted: any principal its \
                         administrators allow can enter"
                    ),
                ));
            }
        }
        EntrantKind::UnresolvableId => found.push(Finding::new(
            FindingKind::BrokenPrincipal,
            Severity::Medium,
            format!(
                "the trust names {who}, the unique id IAM wrote in place of a principal that was deleted: nobody \
                 can enter through it (a principal made again with the same name is not let in)"
            ),
        )),
        EntrantKind::Federated => found.extend(federated(e, ctx)),
        EntrantKind::OrganizationAccount | EntrantKind::Service | EntrantKind::Other => {}
    }
    found
}

/// A federated provider's finding: one in an account outside the organization, or a web identity provider whose
/// conditions do not name the audience (for GitHub Actions: the repository, `…:sub`), so that any of its
/// identities can enter.
fn federated(e: &Entrant, ctx: &Context) -> Option<Finding> {
    let who = &e.principal;
    if let Some(account) = e.account_id.as_deref().filter(|a| !ctx.member_account_ids.contains(*a)) {
        return Some(Finding::new(
            FindingKind::OutsideAccountRoot,
            Severity::High,
            format!(
                "the identity provider {who} is in account {account}, outside the organization: whoever runs it \
                 decides who can enter"
            ),
        ));
    }
    // The provider's host, as its condition keys begin (`token.actions.githubusercontent.com:sub`).
    let host = match who.split_once(":oidc-provider/") {
        Some((_, host)) => host.to_ascii_lowercase(),
        None if who.contains(":saml-provider/") => return None,
        None => who.to_ascii_lowercase(),
    };
    let github = host.starts_with("token.actions.githubusercontent.com");
    let names: &[&str] = if github { &["sub"] } else { &["aud", "sub", "app_id", "oaud"] };
    // Only keys kept by name: a condition that restricts nothing is named with its operator.
    let narrowed = names.iter().any(|n| e.conditions.other_keys.contains(&format!("{host}:{n}")));
    if narrowed {
        return None;
    }
    let reason = if github {
        format!(
            "{who} can enter with no {host}:sub condition that restricts it: a GitHub Actions workflow of any \
             repository, anyone's, can enter"
        )
    } else {
        format!(
            "{who} can enter with no {host}:aud (or :sub) condition that restricts it: any identity the provider \
             issues, for any application, can enter"
        )
    };
    Some(Finding::new(FindingKind::AnyoneCanEnter, Severity::High, reason))
}

fn unused(role: &RoleDetail, ctx: &Context) -> Option<Finding> {
    // Service-linked roles are AWS's to keep.
    if role.path.starts_with("/aws-service-role/") {
        return None;
    }
    let limit = i64::from(ctx.unused_after_days) * DAY;
    let days = |since: i64| (ctx.now - since) / DAY;
    match &role.last_used {
        Some(used) if ctx.now - used.at >= limit => Some(Finding::new(
            FindingKind::Unused,
            Severity::Low,
            format!(
                "not used for {} days (threshold {}); last used{}",
                days(used.at),
                ctx.unused_after_days,
                used.region.as_deref().map(|r| format!(" in {r}")).unwrap_or_default()
            ),
        )),
        Some(_) => None,
        None => match role.created {
            Some(created) if ctx.now - created >= limit => Some(Finding::new(
                FindingKind::Unused,
                Severity::Low,
                format!(
                    "never used as far as IAM tracks, and made {} days ago (threshold {})",
                    days(created),
                    ctx.unused_after_days
                ),
            )),
            _ => None,
        },
    }
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items.into_iter().map(|s| s.as_ref().to_string()).collect::<Vec<_>>().join(", ")
}

/// How a crossrole-owned role differs from what its spec expects, in words (never a document's content).
pub(crate) fn drift(role: &RoleDetail, trust: &PolicyDocument, expected: &ExpectedRole) -> Vec<String> {
    let mut d = Vec::new();
    if role.path != expected.path {
        d.push(format!("path is {} (expected {})", role.path, expected.path));
    }
    if *trust != expected.trust_policy {
        d.push("the trust policy differs".to_string());
    }
    let added: Vec<&String> = role.managed_policy_arns.difference(&expected.managed_policy_arns).collect();
    let missing: Vec<&String> = expected.managed_policy_arns.difference(&role.managed_policy_arns).collect();
    if !added.is_empty() {
        d.push(format!("managed policies attached outside the spec: {}", list(added)));
    }
    if !missing.is_empty() {
        d.push(format!("managed policies missing: {}", list(missing)));
    }
    let names: BTreeSet<&String> = role.inline_policies.keys().chain(expected.inline_policies.keys()).collect();
    for name in names {
        match (role.inline_policies.get(name), expected.inline_policies.get(name)) {
            // A revocation is not the spec's, nor drift: crossrole writes it, keeps it while older sessions may
            // last and removes it (crate::revocation), as its plan says. What a person put beside it in that
            // policy crossrole keeps for good, and no spec can name: that is drift.
            (Some(text), None) if name.as_str() == crate::revocation::POLICY_NAME => {
                let others = crate::revocation::split(text).1;
                if !others.is_empty() {
                    d.push(format!(
                        "inline policy {name} holds statements that are not a revocation: {}",
                        others.named().join(", ")
                    ));
                }
            }
            (Some(_), None) => d.push(format!("inline policy {name} is not in the spec")),
            (None, Some(_)) => d.push(format!("inline policy {name} is missing")),
            (Some(text), Some(want)) => {
                if PolicyDocument::parse_observed(text).ok().as_ref() != Some(want) {
                    d.push(format!("inline policy {name} differs"));
                }
            }
            (None, None) => {}
        }
    }
    if role.permissions_boundary_arn != expected.permissions_boundary_arn {
        d.push(format!(
            "permissions boundary is {} (expected {})",
            role.permissions_boundary_arn.as_deref().unwrap_or("none"),
            expected.permissions_boundary_arn.as_deref().unwrap_or("none")
        ));
    }
    let tag_keys: BTreeSet<&String> = role.tags.keys().chain(expected.tags.keys()).collect();
    let changed: Vec<&String> = tag_keys.into_iter().filter(|k| role.tags.get(*k) != expected.tags.get(*k)).collect();
    if !changed.is_empty() {
        d.push(format!("tags differ: {}", list(changed)));
    }
    d
}

fn drifted(role: &RoleDetail, trust: &PolicyDocument, expected: &ExpectedRole) -> Option<Finding> {
    let d = drift(role, trust, expected);
    (!d.is_empty()).then(|| {
        Finding::new(
            FindingKind::Drifted,
            Severity::Medium,
            format!("owned by crossrole (spec {}) but changed outside it: {}", expected.spec_name, d.join("; ")),
        )
    })
}
