//! The spec file format (YAML or JSON): friendly on the outside, the domain's [`RawSpec`] on the inside.
//!
//! Field names are the API's, so a violation's field path reads the same in a file and in an API request. Unknown
//! fields are errors. Durations take `"1h"`, `"90m"` or seconds; limits take `10` or `"25%"`; inline policies take
//! a YAML/JSON object or a JSON string; account ids may be quoted or not (YAML integers are zero-padded back to 12
//! digits); guardrails are named in kebab case (`wildcard-principal`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    AccessSpec, AccountState, Guardrail, PrincipalMatch,
    raw::{
        Choice, RawDuration, RawGrant, RawGuardrails, RawLimit, RawQuotas, RawRole, RawRollout, RawSelector, RawSpec,
        RawTagCondition, RawTrust, RawVerify, RawWaiver,
    },
    validate,
};
use crate::{Error, FieldViolation};

/// A parsed spec file, before validation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    name: String,
    role: RoleFile,
    #[serde(default)]
    targets: Option<TargetsFile>,
    #[serde(default)]
    grant: Option<GrantFile>,
    #[serde(default)]
    rollout: Option<RolloutFile>,
    #[serde(default)]
    guardrails: Option<GuardrailsFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    max_session_duration: Option<DurationValue>,
    trust: TrustFile,
    #[serde(default)]
    managed_policy_arns: Vec<String>,
    #[serde(default)]
    inline_policies: BTreeMap<String, PolicyValue>,
    #[serde(default)]
    permissions_boundary_arn: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    adopt_existing: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    adopt_accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    adopt_role_ids: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoke_sessions_on_narrowing: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TrustFile {
    #[serde(default)]
    account_ids: Vec<AccountIdValue>,
    #[serde(default)]
    principal_arns: Vec<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    require_mfa: bool,
    #[serde(default)]
    principal_org_id: Option<String>,
    #[serde(default)]
    principal_match: Option<PrincipalMatchValue>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum PrincipalMatchValue {
    Condition,
    Direct,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TargetsFile {
    #[serde(default)]
    organizational_unit_ids: Vec<String>,
    #[serde(default)]
    organizational_unit_paths: Vec<String>,
    #[serde(default)]
    exclude_organizational_unit_paths: Vec<String>,
    #[serde(default)]
    exclude_descendants: bool,
    #[serde(default)]
    account_ids: Vec<AccountIdValue>,
    #[serde(default)]
    tags: Vec<TagConditionFile>,
    #[serde(default)]
    exclude_account_ids: Vec<AccountIdValue>,
    #[serde(default)]
    exclude_organizational_unit_ids: Vec<String>,
    #[serde(default)]
    include_management_account: bool,
    #[serde(default)]
    states: Vec<StateValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TagConditionFile {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum StateValue {
    PendingActivation,
    Active,
    Suspended,
    PendingClosure,
    Closed,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GrantFile {
    account_id: AccountIdValue,
    #[serde(default)]
    user_names: Vec<String>,
    #[serde(default)]
    group_names: Vec<String>,
    #[serde(default)]
    role_names: Vec<String>,
    #[serde(default)]
    policy_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RolloutFile {
    #[serde(default)]
    max_concurrency: Option<LimitValue>,
    #[serde(default)]
    failure_tolerance: Option<LimitValue>,
    #[serde(default)]
    verify: Option<VerifyFile>,
    #[serde(default)]
    prune: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct VerifyFile {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    timeout: Option<DurationValue>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GuardrailsFile {
    #[serde(default)]
    quotas: Option<QuotasFile>,
    #[serde(default)]
    waivers: Vec<WaiverFile>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct QuotasFile {
    #[serde(default)]
    trust_policy_size: Option<u32>,
    #[serde(default)]
    inline_policies_size: Option<u32>,
    #[serde(default)]
    managed_policies_per_role: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WaiverFile {
    guardrail: String,
    reason: String,
}

/// An account id, quoted or not.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum AccountIdValue {
    Text(String),
    Number(u64),
}

impl AccountIdValue {
    fn into_string(self) -> String {
        match self {
            AccountIdValue::Text(s) => s,
            // YAML reads 012345678901 as a number and drops the leading zero; account ids are always 12 digits.
            AccountIdValue::Number(n) => format!("{n:012}"),
        }
    }
}

/// `"1h"`, `"90m"`, `"3600s"` or a number of seconds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(u64),
    Text(String),
}

/// `10` or `"25%"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum LimitValue {
    Count(u32),
    Text(String),
}

/// A policy as a JSON string or as a YAML/JSON object.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
enum PolicyValue {
    Text(String),
    Document(serde_json::Value),
}

impl SpecFile {
    /// Parses YAML; a syntax or shape error names its field path.
    pub fn from_yaml(text: &str) -> Result<SpecFile, Error> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string().replace("?", "");
            let message = clean(&path, e.inner().to_string());
            Error::invalid(path, message)
        })
    }

    /// Parses JSON; a syntax or shape error names its field path.
    pub fn from_json(text: &str) -> Result<SpecFile, Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string().replace("?", "");
            let message = clean(&path, e.inner().to_string());
            Error::invalid(path, message)
        })
    }

    /// Converts to a spec as given; values that cannot be represented there (a duration or a count that does not
    /// parse) are violations.
    pub fn into_raw(self) -> Result<RawSpec, Error> {
        let mut violations = Vec::new();
        let mut duration = |v: Option<DurationValue>, field: &str| -> Option<RawDuration> {
            let d = match v? {
                DurationValue::Seconds(s) => std::time::Duration::from_secs(s),
                DurationValue::Text(t) => match humantime::parse_duration(&t) {
                    Ok(d) => d,
                    Err(e) => {
                        violations
                            .push(FieldViolation::new(field, format!("not a duration like \"1h\" or \"90s\": {e}")));
                        return None;
                    }
                },
            };
            Some(d.into())
        };
        let max_session = duration(self.role.max_session_duration, "role.max_session_duration");
        let verify_timeout = duration(
            self.rollout.as_ref().and_then(|r| r.verify.as_ref()).and_then(|v| v.timeout.clone()),
            "rollout.verify.timeout",
        );

        let mut limit = |v: Option<LimitValue>, field: &str| -> Option<RawLimit> {
            let kind = match v? {
                LimitValue::Count(n) => RawLimit::Count(n),
                LimitValue::Text(t) => {
                    let t = t.trim();
                    if let Some(p) = t.strip_suffix('%') {
                        match p.trim().parse() {
                            Ok(p) => RawLimit::Percent(p),
                            Err(_) => {
                                violations.push(FieldViolation::new(
                                    field,
                                    format!("not a count or percentage like 10 or \"25%\": {t:?}"),
                                ));
                                return None;
                            }
                        }
                    } else {
                        match t.parse() {
                            Ok(n) => RawLimit::Count(n),
                            Err(_) => {
                                violations.push(FieldViolation::new(
                                    field,
                                    format!("not a count or percentage like 10 or \"25%\": {t:?}"),
                                ));
                                return None;
                            }
                        }
                    }
                }
            };
            Some(kind)
        };
        let rollout = self.rollout.map(|r| RawRollout {
            max_concurrency: limit(r.max_concurrency, "rollout.max_concurrency"),
            failure_tolerance: limit(r.failure_tolerance, "rollout.failure_tolerance"),
            verify: r.verify.map(|v| RawVerify { enabled: v.enabled, timeout: verify_timeout }),
            prune: r.prune,
        });

        let mut inline_policies = BTreeMap::new();
        for (name, policy) in self.role.inline_policies {
            let text = match policy {
                PolicyValue::Text(t) => t,
                PolicyValue::Document(d) => d.to_string(),
            };
            inline_policies.insert(name, text);
        }

        let guardrails = self.guardrails.map(|g| RawGuardrails {
            quotas: g.quotas.map(|q| RawQuotas {
                trust_policy_size: q.trust_policy_size.unwrap_or(0),
                inline_policies_size: q.inline_policies_size.unwrap_or(0),
                managed_policies_per_role: q.managed_policies_per_role.unwrap_or(0),
            }),
            waivers: g
                .waivers
                .into_iter()
                .enumerate()
                .map(|(i, w)| {
                    let guardrail = match Guardrail::parse(&w.guardrail) {
                        Some(g) => Choice::Is(g),
                        None => {
                            let known: Vec<&str> = Guardrail::ALL.iter().map(|g| g.as_str()).collect();
                            violations.push(FieldViolation::new(
                                format!("guardrails.waivers[{i}].guardrail"),
                                format!("unknown guardrail {:?} (known: {})", w.guardrail, known.join(", ")),
                            ));
                            Choice::Unspecified
                        }
                    };
                    RawWaiver { guardrail, reason: w.reason }
                })
                .collect(),
        });

        let ids = |v: Vec<AccountIdValue>| v.into_iter().map(AccountIdValue::into_string).collect::<Vec<_>>();
        let t = self.role.trust;
        let spec = RawSpec {
            name: self.name,
            role: Some(RawRole {
                name: self.role.name,
                path: self.role.path.unwrap_or_default(),
                description: self.role.description.unwrap_or_default(),
                max_session_duration: max_session,
                trust: Some(RawTrust {
                    account_ids: ids(t.account_ids),
                    principal_arns: t.principal_arns,
                    external_id: t.external_id.unwrap_or_default(),
                    require_mfa: t.require_mfa,
                    principal_org_id: t.principal_org_id.unwrap_or_default(),
                    principal_match: match t.principal_match {
                        None => Choice::Unspecified,
                        Some(PrincipalMatchValue::Condition) => Choice::Is(PrincipalMatch::Condition),
                        Some(PrincipalMatchValue::Direct) => Choice::Is(PrincipalMatch::Direct),
                    },
                }),
                managed_policy_arns: self.role.managed_policy_arns,
                inline_policies,
                permissions_boundary_arn: self.role.permissions_boundary_arn.unwrap_or_default(),
                tags: self.role.tags.into_iter().collect(),
                adopt_existing: self.role.adopt_existing,
                adopt_accounts: self.role.adopt_accounts,
                adopt_role_ids: self.role.adopt_role_ids,
                revoke_sessions_on_narrowing: self.role.revoke_sessions_on_narrowing,
            }),
            targets: self.targets.map(|t| RawSelector {
                organizational_unit_ids: t.organizational_unit_ids,
                organizational_unit_paths: t.organizational_unit_paths,
                exclude_organizational_unit_paths: t.exclude_organizational_unit_paths,
                exclude_descendants: t.exclude_descendants,
                account_ids: ids(t.account_ids),
                tags: t.tags.into_iter().map(|c| RawTagCondition { key: c.key, value: c.value }).collect(),
                exclude_account_ids: ids(t.exclude_account_ids),
                exclude_organizational_unit_ids: t.exclude_organizational_unit_ids,
                include_management_account: t.include_management_account,
                states: t
                    .states
                    .into_iter()
                    .map(|s| {
                        Choice::Is(match s {
                            StateValue::PendingActivation => AccountState::PendingActivation,
                            StateValue::Active => AccountState::Active,
                            StateValue::Suspended => AccountState::Suspended,
                            StateValue::PendingClosure => AccountState::PendingClosure,
                            StateValue::Closed => AccountState::Closed,
                        })
                    })
                    .collect(),
            }),
            grant: self.grant.map(|g| RawGrant {
                account_id: g.account_id.into_string(),
                user_names: g.user_names,
                group_names: g.group_names,
                role_names: g.role_names,
                policy_name: g.policy_name.unwrap_or_default(),
            }),
            rollout,
            guardrails,
        };
        if violations.is_empty() { Ok(spec) } else { Err(Error::Invalid(violations)) }
    }

    /// Converts to a spec as given and validates it.
    pub fn into_spec(self) -> Result<AccessSpec, Error> {
        validate(&self.into_raw()?)
    }
}

/// The parser's message in the file's words. The YAML parser repeats a field path in front of its message (the
/// violation names it already), and speaks of the types that read the file (`struct RoleFile`, `untagged enum
/// DurationValue`), which mean nothing to whoever wrote it. The " at line X column Y" at the end stays: it helps in
/// files.
fn clean(path: &str, message: String) -> String {
    let message = message.strip_prefix(&format!("{path}: ")).map(String::from).unwrap_or(message);
    let (body, at) = match message.rfind(" at line ") {
        Some(i) => message.split_at(i),
        None => (message.as_str(), ""),
    };
    let untagged = "data did not match any variant of untagged enum ";
    let body = match body.find(untagged) {
        Some(i) => format!("expected {}", value_kind(body[i + untagged.len()..].trim())),
        None => type_words(body),
    };
    format!("{body}{at}")
}

/// What a value the file may write in more than one way must be, by the type that reads it.
fn value_kind(reader: &str) -> &'static str {
    match reader {
        "DurationValue" => "a duration like \"1h\" or a number of seconds",
        "AccountIdValue" => "a 12-digit account id",
        "LimitValue" => "a count like 10 or a percentage like \"25%\"",
        "PolicyValue" => "a policy document (a mapping, or JSON text)",
        _ => "another kind of value",
    }
}

/// serde's words for a mismatched type, in the file's: `invalid type: string "x", expected struct RoleFile` →
/// `got the string "x", expected a mapping of fields (`field: value`)`.
fn type_words(body: &str) -> String {
    let mut out = body
        .replace("invalid type: sequence", "invalid type: a list")
        .replace("invalid type: map", "invalid type: a mapping")
        .replace("expected a sequence", "expected a list");
    if out.ends_with("expected a map") {
        out.push_str("ping");
    }
    if let Some(rest) = out.strip_prefix("invalid type: ") {
        let rest = rest.replacen("string ", "the string ", 1).replacen("integer ", "the number ", 1);
        out = format!("got {rest}");
    }
    if let Some(i) = out.find("expected struct ") {
        // A list where the fields should be is read as the fields in order, and refused for its length.
        let got = if out.starts_with("invalid length ") { "got a list, " } else { &out[..i] };
        out = format!("{got}expected a mapping of fields (`field: value`)");
    }
    out
}
