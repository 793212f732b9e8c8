//! A static evaluator of IAM policies: would this caller be allowed `sts:AssumeRole` by a trust policy
//! ([`evaluate`]), would this request be allowed by identity policies and service control policies
//! ([`evaluate_request`]), and which statement and condition decide?
//!
//! Neither LocalStack nor moto enforces trust policies or permissions, so this is how crossrole proves the negative
//! paths (a wrong or missing ExternalId, no MFA, a principal outside the organization; a role created without the
//! ceiling's boundary, a forbidden policy attached) and how `VerifyAccess` explains its static check. It follows
//! IAM's documented evaluation: an explicit Deny wins over any Allow; without an Allow the answer is an implicit
//! deny. It covers the operators these policies use — String*, Arn*, Bool, Null, Numeric*, their `...IfExists`
//! forms and the `ForAnyValue:`/`ForAllValues:` set operators — policy variables (`${aws:PrincipalAccount}`) in
//! resources and condition values, and `NotPrincipal`, `NotAction`, `NotResource`. An operator it does not know
//! makes the answer [`Outcome::Unknown`], never a guess.

use std::collections::{BTreeMap, BTreeSet};

use super::{Effect, PolicyDocument, Principals, Statement};

/// The caller of `sts:AssumeRole`, as the request context IAM would build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The caller's IAM ARN (`arn:aws:iam::111122223333:user/alice`, `…:role/Ops`, or `…:root`).
    pub principal_arn: String,
    /// The caller's account id.
    pub account_id: String,
    /// The ExternalId sent, if any (`sts:ExternalId`).
    pub external_id: Option<String>,
    /// `aws:MultiFactorAuthPresent`: `None` when the request carries no such key (long-term credentials).
    pub mfa: Option<bool>,
    /// `aws:PrincipalOrgID`, if the caller belongs to an organization.
    pub org_id: Option<String>,
}

impl Caller {
    /// A caller identified by ARN; the account is taken from the ARN.
    pub fn from_arn(arn: &str) -> Caller {
        let account = crate::names::Arn::parse(arn).map(|a| a.account.to_string()).unwrap_or_default();
        Caller { principal_arn: arn.to_string(), account_id: account, ..Caller::default() }
    }

    fn context(&self) -> BTreeMap<&'static str, Vec<String>> {
        let mut c = BTreeMap::new();
        c.insert("aws:principalarn", vec![self.principal_arn.clone()]);
        c.insert("aws:principalaccount", vec![self.account_id.clone()]);
        let principal_type = if self.principal_arn.ends_with(":root") {
            "Account"
        } else if self.principal_arn.contains(":user/") {
            "User"
        } else {
            "AssumedRole"
        };
        c.insert("aws:principaltype", vec![principal_type.to_string()]);
        if let Some(id) = &self.external_id {
            c.insert("sts:externalid", vec![id.clone()]);
        }
        if let Some(mfa) = self.mfa {
            c.insert("aws:multifactorauthpresent", vec![mfa.to_string()]);
        }
        if let Some(org) = &self.org_id {
            c.insert("aws:principalorgid", vec![org.clone()]);
        }
        c
    }
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An Allow statement matches and no Deny does.
    Allowed,
    /// A Deny statement matches.
    ExplicitDeny,
    /// No Allow statement matches.
    ImplicitDeny,
    /// The policy uses something this evaluator does not model.
    Unknown,
}

/// An evaluation: the outcome and, for people, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The outcome.
    pub outcome: Outcome,
    /// Which statement and condition decided.
    pub reason: String,
}

impl Evaluation {
    /// Whether the caller may assume the role.
    pub fn allowed(&self) -> bool {
        self.outcome == Outcome::Allowed
    }
}

/// Evaluates `policy` for `caller` calling `action` (normally `sts:AssumeRole`).
pub fn evaluate(policy: &PolicyDocument, caller: &Caller, action: &str) -> Evaluation {
    let context = caller.context();
    decide(
        policy.statements().iter().enumerate(),
        |statement| {
            if !principal_matches(statement, caller) {
                Scope::Out(format!("principal does not match {}", caller.principal_arn))
            } else if !action_matches(statement, action) {
                Scope::Out(format!("action {action} not covered"))
            } else {
                Scope::In
            }
        },
        |statement| conditions_hold(&statement.condition, &|k| context.get(k)),
    )
}

/// Whether a statement is about the request, its conditions aside.
enum Scope {
    /// It is: its conditions decide.
    In,
    /// It is not, for a reason an implicit deny gives.
    Out(String),
    /// It is not, and it goes unsaid (a statement of identity policies about another action).
    Elsewhere,
}

/// IAM's decision over `statements` (each with its index in its policy, which names it when it has no Sid): a
/// statement in `scope` whose conditions hold denies at once, or allows unless a later one denies; one whose
/// conditions use an operator this evaluator does not model makes the answer [`Outcome::Unknown`]; without an
/// Allow, the answer is an implicit deny that says what each statement missed.
fn decide<'s>(
    statements: impl IntoIterator<Item = (usize, &'s Statement)>,
    scope: impl Fn(&Statement) -> Scope,
    conditions: impl Fn(&Statement) -> Result<(), Miss>,
) -> Evaluation {
    let mut allow: Option<String> = None;
    let mut misses: Vec<String> = Vec::new();
    for (index, statement) in statements {
        let name = statement_name(statement, index);
        match scope(statement) {
            Scope::In => {}
            Scope::Out(why) => {
                misses.push(format!("{name}: {why}"));
                continue;
            }
            Scope::Elsewhere => continue,
        }
        match conditions(statement) {
            Ok(()) => match statement.effect {
                Effect::Deny => {
                    return Evaluation { outcome: Outcome::ExplicitDeny, reason: format!("denied by {name}") };
                }
                Effect::Allow => {
                    allow.get_or_insert(format!("allowed by {name}"));
                }
            },
            Err(Miss::Failed(why)) => misses.push(format!("{name}: {why}")),
            Err(Miss::Unsupported(op)) => {
                return Evaluation {
                    outcome: Outcome::Unknown,
                    reason: format!("{name}: condition operator {op} is not supported by the static evaluator"),
                };
            }
        }
    }
    match allow {
        Some(reason) => Evaluation { outcome: Outcome::Allowed, reason },
        None => Evaluation {
            outcome: Outcome::ImplicitDeny,
            reason: if misses.is_empty() { "no statement allows it".into() } else { misses.join("; ") },
        },
    }
}

fn statement_name(s: &Statement, index: usize) -> String {
    match &s.sid {
        Some(sid) => format!("statement {sid}"),
        None => format!("statement #{}", index + 1),
    }
}

fn principal_matches(s: &Statement, caller: &Caller) -> bool {
    if let Some(p) = &s.principal {
        return principals_contain(p, caller);
    }
    if let Some(np) = &s.not_principal {
        return !principals_contain(np, caller);
    }
    false
}

fn principals_contain(p: &Principals, caller: &Caller) -> bool {
    match p {
        Principals::Any => true,
        Principals::Typed(map) => map.get("AWS").is_some_and(|set| {
            set.iter().any(|entry| entry == "*" || *entry == caller.account_id || *entry == caller.principal_arn)
        }),
    }
}

fn action_matches(s: &Statement, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    if let Some(actions) = &s.action {
        return actions.iter().any(|a| glob(a, &action));
    }
    if let Some(not) = &s.not_action {
        return !not.iter().any(|a| glob(a, &action));
    }
    false
}

/// Condition keys (lowercased) whose values are secrets.
const SECRET_KEYS: &[&str] = &["sts:externalid"];

/// Why a statement's conditions do not hold.
pub(crate) enum Miss {
    /// A condition is not met (the reason never shows a secret key's values).
    Failed(String),
    /// The condition operator is not modelled.
    Unsupported(String),
}

#[derive(Clone, Copy, PartialEq)]
enum SetMode {
    Single,
    AnyValue,
    AllValues,
}

/// Whether every condition holds for the request context `context` (keys lowercased).
pub(crate) fn conditions_hold<'c>(
    conditions: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    context: &dyn Fn(&str) -> Option<&'c Vec<String>>,
) -> Result<(), Miss> {
    for (op_full, keys) in conditions {
        let (mode, rest) = if let Some(r) = op_full.strip_prefix("ForAnyValue:") {
            (SetMode::AnyValue, r)
        } else if let Some(r) = op_full.strip_prefix("ForAllValues:") {
            (SetMode::AllValues, r)
        } else {
            (SetMode::Single, op_full.as_str())
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (rest, false),
        };
        let Some(op) = Operator::parse(base) else { return Err(Miss::Unsupported(op_full.clone())) };
        for (key, policy_values) in keys {
            let request = context(key.as_str());
            if !holds(op, mode, if_exists, request, policy_values) {
                // Secret keys never show their values, neither the policy's nor the request's: a reason is
                // returned to read-only callers, and a wrong ExternalId must not be answered with the right one.
                if SECRET_KEYS.contains(&key.as_str()) {
                    let got = match request {
                        Some(_) => "the request's value differs",
                        None => "key absent from the request",
                    };
                    return Err(Miss::Failed(format!("condition {op_full} {key} not met ({got})")));
                }
                let got = match request {
                    Some(v) => format!("got {:?}", v.join(",")),
                    None => "key absent from the request".to_string(),
                };
                let wanted: Vec<&str> = policy_values.iter().map(String::as_str).collect();
                return Err(Miss::Failed(format!("condition {op_full} {key} {wanted:?} not met ({got})")));
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnLike,
    ArnNotLike,
    Bool,
    Null,
    Numeric(NumericOp, bool),
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum NumericOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Operator {
    fn parse(s: &str) -> Option<Operator> {
        Some(match s {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringEqualsIgnoreCase" => Operator::StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => Operator::StringNotEqualsIgnoreCase,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            "ArnEquals" | "ArnLike" => Operator::ArnLike,
            "ArnNotEquals" | "ArnNotLike" => Operator::ArnNotLike,
            "Bool" => Operator::Bool,
            "Null" => Operator::Null,
            "NumericEquals" => Operator::Numeric(NumericOp::Eq, false),
            "NumericNotEquals" => Operator::Numeric(NumericOp::Eq, true),
            "NumericLessThan" => Operator::Numeric(NumericOp::Lt, false),
            "NumericLessThanEquals" => Operator::Numeric(NumericOp::Le, false),
            "NumericGreaterThan" => Operator::Numeric(NumericOp::Gt, false),
            "NumericGreaterThanEquals" => Operator::Numeric(NumericOp::Ge, false),
            _ => return None,
        })
    }

    fn negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::ArnNotLike
        ) || matches!(self, Operator::Numeric(_, true))
    }

    /// Whether one request value matches one policy value, in the positive sense of the operator.
    fn matches(self, request: &str, policy: &str) -> bool {
        match self {
            Operator::StringEquals | Operator::StringNotEquals => request == policy,
            Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase => {
                request.eq_ignore_ascii_case(policy)
            }
            Operator::StringLike | Operator::StringNotLike => glob(policy, request),
            Operator::ArnLike | Operator::ArnNotLike => arn_like(policy, request),
            Operator::Bool => request.eq_ignore_ascii_case(policy),
            Operator::Null => false,
            Operator::Numeric(op, _) => match (request.parse::<f64>(), policy.parse::<f64>()) {
                (Ok(r), Ok(p)) => match op {
                    NumericOp::Eq => r == p,
                    NumericOp::Lt => r < p,
                    NumericOp::Le => r <= p,
                    NumericOp::Gt => r > p,
                    NumericOp::Ge => r >= p,
                },
                _ => false,
            },
        }
    }
}

fn holds(
    op: Operator,
    mode: SetMode,
    if_exists: bool,
    request: Option<&Vec<String>>,
    policy: &BTreeSet<String>,
) -> bool {
    if op == Operator::Null {
        // "true": the key must be absent; "false": present.
        let absent = request.is_none_or(|v| v.is_empty());
        return policy.iter().any(|p| p.eq_ignore_ascii_case("true") == absent);
    }
    let values = match request {
        Some(v) if !v.is_empty() => v,
        _ => {
            return match mode {
                _ if if_exists => true,
                SetMode::AllValues => true,
                SetMode::AnyValue => false,
                // IAM: a negated operator on an absent key is true; a positive one is false.
                SetMode::Single => op.negated(),
            };
        }
    };
    let one = |r: &String| {
        let any = policy.iter().any(|p| op.matches(r, p));
        if op.negated() { !any } else { any }
    };
    match mode {
        SetMode::Single | SetMode::AnyValue => values.iter().any(one),
        SetMode::AllValues => values.iter().all(one),
    }
}

/// A request to an AWS service, as the request context IAM builds for identity-based policies and SCPs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The action, `service:Operation` (`iam:CreateRole`).
    pub action: String,
    /// The resource's ARN.
    pub resource: String,
    /// Condition keys (any case) and their values: `iam:PermissionsBoundary`, `aws:RequestTag/…`, `aws:TagKeys`…
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    /// A request for `action` on `resource`, with no condition keys yet.
    pub fn new(action: &str, resource: &str) -> Request {
        Request { action: action.into(), resource: resource.into(), context: BTreeMap::new() }
    }

    /// With condition key `key` set to `values`.
    pub fn with(mut self, key: &str, values: &[&str]) -> Request {
        self.context.insert(key.to_ascii_lowercase(), values.iter().map(|v| v.to_string()).collect());
        self
    }
}

/// Evaluates identity-based policies (or the SCPs of one level) for `request`: allowed when a statement of any of
/// them allows it and none denies it.
pub fn evaluate_request(policies: &[&PolicyDocument], request: &Request) -> Evaluation {
    let context: BTreeMap<String, Vec<String>> =
        request.context.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    decide(
        policies.iter().flat_map(|policy| policy.statements().iter().enumerate()),
        |statement| {
            if !action_matches(statement, &request.action) {
                Scope::Elsewhere
            } else if !resource_matches(statement, &request.resource, &context) {
                Scope::Out(format!("resource {} not covered", request.resource))
            } else {
                Scope::In
            }
        },
        |statement| conditions_hold(&substitute_conditions(&statement.condition, &context), &|k| context.get(k)),
    )
}

fn resource_matches(s: &Statement, resource: &str, context: &BTreeMap<String, Vec<String>>) -> bool {
    let covers = |patterns: &BTreeSet<String>| {
        patterns.iter().any(|p| {
            let p = substitute(p, context);
            p == "*" || arn_like(&p, resource)
        })
    };
    if let Some(r) = &s.resource {
        return covers(r);
    }
    if let Some(nr) = &s.not_resource {
        return !covers(nr);
    }
    false
}

/// Replaces policy variables (`${aws:PrincipalAccount}`) with the request's values; an unknown one stays.
fn substitute(text: &str, context: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else { break };
        let key = rest[start + 2..start + len].to_ascii_lowercase();
        out.push_str(&rest[..start]);
        match context.get(&key).and_then(|v| v.first()) {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + len + 1]),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

fn substitute_conditions(
    conditions: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    context: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    conditions
        .iter()
        .map(|(op, keys)| {
            let keys =
                keys.iter().map(|(k, vs)| (k.clone(), vs.iter().map(|v| substitute(v, context)).collect())).collect();
            (op.clone(), keys)
        })
        .collect()
}

/// `*` and `?` wildcards; case-sensitive.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// ARN matching: each of the six colon-separated parts is matched on its own, with wildcards.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{names::Partition, policy::trust_policy, spec::TrustSpec};

    const ROLE: &str = "arn:aws:iam::111122223333:role/Auditor";

    fn spec_trust() -> PolicyDocument {
        let mut t = TrustSpec::default();
        t.principal_arns.insert(ROLE.into());
        t.account_ids.insert("444455556666".into());
        t.external_id = Some(crate::secret::ExternalId::new("correct-horse-battery"));
        t.require_mfa = true;
        t.principal_org_id = Some("o-a1b2c3d4e5".into());
        trust_policy(&t, Partition::Aws)
    }

    fn caller(arn: &str, external_id: Option<&str>, mfa: Option<bool>, org: Option<&str>) -> Caller {
        Caller {
            external_id: external_id.map(String::from),
            mfa,
            org_id: org.map(String::from),
            ..Caller::from_arn(arn)
        }
    }

    /// One row: who calls, and whether the generated trust policy lets them in.
    fn check(rows: &[(&str, Caller, Outcome, &str)]) {
        let policy = spec_trust();
        for (name, c, outcome, reason_part) in rows {
            let e = evaluate(&policy, c, "sts:AssumeRole");
            assert_eq!(&e.outcome, outcome, "{name}: {}", e.reason);
            assert!(e.reason.contains(reason_part), "{name}: reason {:?} lacks {reason_part:?}", e.reason);
            // The ExternalId, right or wrong, never appears in a reason.
            assert!(!e.reason.contains("correct-horse-battery") && !e.reason.contains("\"wrong\""), "{}", e.reason);
        }
    }

    #[test]
    fn generated_trust_policy_admits_exactly_the_intended_callers() {
        let org = Some("o-a1b2c3d4e5");
        check(&[
            (
                "named role, all conditions",
                caller(ROLE, Some("correct-horse-battery"), Some(true), org),
                Outcome::Allowed,
                "CrossroleTrustedPrincipals",
            ),
            (
                "wrong ExternalId",
                caller(ROLE, Some("wrong"), Some(true), org),
                Outcome::ImplicitDeny,
                "condition StringEquals sts:externalid not met (the request's value differs)",
            ),
            (
                "no ExternalId",
                caller(ROLE, None, Some(true), org),
                Outcome::ImplicitDeny,
                "key absent from the request",
            ),
            (
                "MFA false",
                caller(ROLE, Some("correct-horse-battery"), Some(false), org),
                Outcome::ImplicitDeny,
                "aws:multifactorauthpresent",
            ),
            (
                "MFA absent",
                caller(ROLE, Some("correct-horse-battery"), None, org),
                Outcome::ImplicitDeny,
                "aws:multifactorauthpresent",
            ),
            (
                "other org",
                caller(ROLE, Some("correct-horse-battery"), Some(true), Some("o-other")),
                Outcome::ImplicitDeny,
                "aws:principalorgid",
            ),
            (
                "other role in the named principal's account",
                caller("arn:aws:iam::111122223333:role/Intruder", Some("correct-horse-battery"), Some(true), org),
                Outcome::ImplicitDeny,
                "aws:principalarn",
            ),
            (
                "any principal of the trusted account",
                caller("arn:aws:iam::444455556666:user/bob", Some("correct-horse-battery"), Some(true), org),
                Outcome::Allowed,
                "CrossroleTrustedAccounts",
            ),
            (
                "an untrusted account",
                caller("arn:aws:iam::999999999999:user/eve", Some("correct-horse-battery"), Some(true), org),
                Outcome::ImplicitDeny,
                "principal does not match",
            ),
        ]);
    }

    fn eval(policy: &str, c: &Caller) -> Evaluation {
        evaluate(&PolicyDocument::parse_observed(policy).unwrap(), c, "sts:AssumeRole")
    }

    fn doc(statements: &str) -> String {
        format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
    }

    #[test]
    fn operators() {
        let alice = Caller {
            external_id: Some("abc-123".into()),
            mfa: Some(true),
            ..Caller::from_arn("arn:aws:iam::111122223333:user/alice")
        };
        let allow = |cond: &str| {
            doc(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"111122223333"}},"Action":"sts:AssumeRole","Condition":{cond}}}"#
            ))
        };
        let rows: &[(&str, bool)] = &[
            (r#"{"StringLike":{"sts:ExternalId":"abc-*"}}"#, true),
            (r#"{"StringLike":{"sts:ExternalId":"abc-?2?"}}"#, true),
            (r#"{"StringLike":{"sts:ExternalId":"x*"}}"#, false),
            (r#"{"StringNotEquals":{"sts:ExternalId":"zzz"}}"#, true),
            (r#"{"StringEqualsIgnoreCase":{"sts:ExternalId":"ABC-123"}}"#, true),
            (r#"{"StringEquals":{"sts:ExternalId":"ABC-123"}}"#, false),
            (r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/ali*"}}"#, true),
            (r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}"#, true),
            (r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/ali*"}}"#, false),
            (r#"{"Bool":{"aws:MultiFactorAuthPresent":"true"}}"#, true),
            (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, false),
            (r#"{"BoolIfExists":{"aws:SecureTransport":"true"}}"#, true),
            (r#"{"Null":{"sts:ExternalId":"false"}}"#, true),
            (r#"{"Null":{"aws:PrincipalOrgID":"true"}}"#, true),
            (r#"{"Null":{"sts:ExternalId":"true"}}"#, false),
            (r#"{"StringEqualsIfExists":{"aws:PrincipalOrgID":"o-x"}}"#, true),
            (r#"{"StringNotEquals":{"aws:PrincipalOrgID":"o-x"}}"#, true),
            (r#"{"StringEquals":{"aws:PrincipalOrgID":"o-x"}}"#, false),
            (r#"{"ForAnyValue:StringEquals":{"aws:PrincipalType":["User","Account"]}}"#, true),
            (r#"{"ForAnyValue:StringEquals":{"aws:PrincipalOrgPaths":"o-x/*"}}"#, false),
            (r#"{"ForAllValues:StringEquals":{"aws:PrincipalOrgPaths":"o-x/*"}}"#, true),
            (r#"{"ForAllValues:StringEquals":{"aws:PrincipalType":"AssumedRole"}}"#, false),
            (r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}"#, false),
            (r#"{"NumericLessThanIfExists":{"aws:MultiFactorAuthAge":"3600"}}"#, true),
        ];
        for (cond, expect) in rows {
            let e = eval(&allow(cond), &alice);
            assert_eq!(e.allowed(), *expect, "{cond}: {}", e.reason);
        }
    }

    #[test]
    fn deny_wins_and_not_elements() {
        let bob = Caller::from_arn("arn:aws:iam::111122223333:user/bob");
        let allow_all = r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:*"}"#;
        let deny_bob = r#"{"Sid":"NoBob","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"sts:AssumeRole"}"#;
        let e = eval(&doc(&format!("{allow_all},{deny_bob}")), &bob);
        assert_eq!(e.outcome, Outcome::ExplicitDeny);
        assert_eq!(e.reason, "denied by statement NoBob");

        let not_principal = r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:AssumeRole"}"#;
        assert_eq!(eval(&doc(&format!("{allow_all},{not_principal}")), &bob).outcome, Outcome::ExplicitDeny);
        let alice = Caller::from_arn("arn:aws:iam::111122223333:user/alice");
        assert_eq!(eval(&doc(&format!("{allow_all},{not_principal}")), &alice).outcome, Outcome::Allowed);

        let not_action = r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"NotAction":"sts:AssumeRole"}"#;
        assert_eq!(eval(&doc(not_action), &alice).outcome, Outcome::ImplicitDeny);
        let wildcard = r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}"#;
        assert_eq!(eval(&doc(wildcard), &Caller::from_arn("arn:aws:iam::999999999999:root")).outcome, Outcome::Allowed);
    }

    #[test]
    fn unknown_operators_are_not_guessed() {
        let alice = Caller::from_arn("arn:aws:iam::111122223333:user/alice");
        let p = doc(
            r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}"#,
        );
        assert_eq!(eval(&p, &alice).outcome, Outcome::Unknown);
    }

    #[test]
    fn globs() {
        for (p, t, m) in [
            ("*", "", true),
            ("a*c", "abbbc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*b*", "abc", true),
            ("abc", "abd", false),
            ("a*", "b", false),
        ] {
            assert_eq!(glob(p, t), m, "{p} {t}");
        }
    }
}
