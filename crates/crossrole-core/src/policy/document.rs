//! IAM policy documents: parsed against IAM's grammar, normalized, and compared by meaning.
//!
//! IAM hands documents back URL-encoded, may reorder nothing or everything, turns one-element arrays into scalars
//! and bare account ids into root ARNs. Two documents are equal here when IAM would treat them the same, so a
//! re-plan after an apply is always empty: no perpetual diff.
//!
//! What normalization treats as equal: statement order and duplicate statements; `Sid`s; a value vs a one-element
//! array; order and duplicates of values; key order and whitespace; the case of action names and condition keys;
//! `Principal: "*"` vs `{"AWS": "*"}`; an account id vs its root ARN (in any partition); condition values written
//! as JSON booleans or numbers vs strings. Everything else is significant.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::FieldViolation;

/// What a document is for; it decides which elements are required or forbidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// A permissions policy (inline or managed): `Resource` required, no `Principal`.
    Identity,
    /// A role trust policy: `Principal` required, no `Resource`.
    Trust,
    /// A document read back from AWS: parsed leniently, for comparison only.
    Observed,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    /// The statement grants what it matches.
    Allow,
    /// The statement refuses what it matches, whatever else allows it.
    Deny,
}

/// A principal element: `*`, or principals by type (`AWS`, `Service`, `Federated`, `CanonicalUser`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principals {
    /// `"*"` or `{"AWS": "*"}`: anyone.
    Any,
    /// Principals by type; AWS account ids and root ARNs are normalized to the bare account id.
    Typed(BTreeMap<String, BTreeSet<String>>),
}

/// A statement, normalized.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Statement {
    /// Whether the statement allows or denies.
    pub effect: Effect,
    /// `Principal`.
    pub principal: Option<Principals>,
    /// `NotPrincipal`.
    pub not_principal: Option<Principals>,
    /// `Action`, lowercased.
    pub action: Option<BTreeSet<String>>,
    /// `NotAction`, lowercased.
    pub not_action: Option<BTreeSet<String>>,
    /// `Resource`.
    pub resource: Option<BTreeSet<String>>,
    /// `NotResource`.
    pub not_resource: Option<BTreeSet<String>>,
    /// `Condition`: operator → key (lowercased) → values.
    pub condition: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// `Sid`; ignored when comparing.
    pub sid: Option<String>,
}

/// A policy document: the JSON as written, and its normalized statements.
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    raw: Value,
    version: Option<String>,
    statements: Vec<Statement>,
}

impl PartialEq for PolicyDocument {
    fn eq(&self, other: &Self) -> bool {
        self.semantic_key() == other.semantic_key()
    }
}

impl Eq for PolicyDocument {}

impl PolicyDocument {
    /// Parses a document as written in a spec, checking IAM's grammar for `kind`. Violations carry paths inside
    /// the document (`Statement[0].Effect`).
    pub fn parse(text: &str, kind: DocumentKind) -> Result<PolicyDocument, Vec<FieldViolation>> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| vec![FieldViolation::new("", format!("not valid JSON: {e}"))])?;
        PolicyDocument::from_value(value, kind)
    }

    /// Parses a document read from IAM, which URL-encodes them.
    pub fn parse_observed(text: &str) -> Result<PolicyDocument, Vec<FieldViolation>> {
        let decoded = if text.trim_start().starts_with('{') {
            text.to_string()
        } else {
            percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
        };
        PolicyDocument::parse(&decoded, DocumentKind::Observed)
    }

    /// Builds a document from a JSON value, checking IAM's grammar for `kind`.
    pub fn from_value(raw: Value, kind: DocumentKind) -> Result<PolicyDocument, Vec<FieldViolation>> {
        let mut errs = Vec::new();
        let doc = parse_document(&raw, kind, &mut errs);
        match doc {
            Some((version, statements)) if errs.is_empty() => Ok(PolicyDocument { raw, version, statements }),
            _ => Err(errs),
        }
    }

    /// The document as written, compact: what crossrole sends to IAM.
    pub fn to_json(&self) -> String {
        self.raw.to_string()
    }

    /// The document as written, pretty-printed.
    pub fn to_pretty_json(&self) -> String {
        serde_json::to_string_pretty(&self.raw).unwrap_or_else(|_| self.raw.to_string())
    }

    /// The JSON value as written.
    pub fn as_value(&self) -> &Value {
        &self.raw
    }

    /// Length as IAM counts it for quotas: characters of the document without whitespace outside strings.
    pub fn size(&self) -> usize {
        self.raw.to_string().chars().count()
    }

    /// `Version`, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The normalized statements, sorted and without duplicates.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The normalized form as JSON, the same for every document that means the same.
    pub fn normalized_json(&self) -> String {
        let statements: Vec<Value> = self.semantic_key().1.iter().map(statement_to_value).collect();
        let mut top = Map::new();
        top.insert("Version".into(), Value::String(self.effective_version().to_string()));
        top.insert("Statement".into(), Value::Array(statements));
        serde_json::to_string_pretty(&Value::Object(top)).unwrap_or_default()
    }

    fn effective_version(&self) -> &str {
        self.version.as_deref().unwrap_or("2008-10-17")
    }

    fn semantic_key(&self) -> (&str, BTreeSet<Statement>) {
        let statements = self.statements.iter().map(|s| Statement { sid: None, ..s.clone() }).collect();
        (self.effective_version(), statements)
    }
}

fn parse_document(
    raw: &Value,
    kind: DocumentKind,
    errs: &mut Vec<FieldViolation>,
) -> Option<(Option<String>, Vec<Statement>)> {
    let Some(obj) = raw.as_object() else {
        errs.push(FieldViolation::new("", "a policy document must be a JSON object"));
        return None;
    };
    for key in obj.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            errs.push(FieldViolation::new(key.as_str(), "unknown policy element (allowed: Version, Id, Statement)"));
        }
    }
    let version = match obj.get("Version") {
        None => None,
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => Some(v.clone()),
        Some(_) => {
            errs.push(FieldViolation::new("Version", "must be \"2012-10-17\" (or the legacy \"2008-10-17\")"));
            None
        }
    };
    if version.is_none() && kind != DocumentKind::Observed && !obj.contains_key("Version") {
        errs.push(FieldViolation::new(
            "Version",
            "required; use \"2012-10-17\" (without it IAM disables policy variables)",
        ));
    }
    let raw_statements: Vec<(String, &Value)> = match obj.get("Statement") {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().enumerate().map(|(i, s)| (format!("Statement[{i}]"), s)).collect()
        }
        Some(s @ Value::Object(_)) => vec![("Statement".to_string(), s)],
        Some(_) => {
            errs.push(FieldViolation::new("Statement", "must be a statement object or a non-empty array of them"));
            return None;
        }
        None => {
            errs.push(FieldViolation::new("Statement", "required"));
            return None;
        }
    };
    let mut statements: Vec<Statement> =
        raw_statements.into_iter().filter_map(|(path, s)| parse_statement(&path, s, kind, errs)).collect();
    statements.sort();
    statements.dedup_by(|a, b| Statement { sid: None, ..a.clone() } == Statement { sid: None, ..b.clone() });
    Some((version, statements))
}

fn parse_statement(path: &str, raw: &Value, kind: DocumentKind, errs: &mut Vec<FieldViolation>) -> Option<Statement> {
    let Some(obj) = raw.as_object() else {
        errs.push(FieldViolation::new(path, "a statement must be a JSON object"));
        return None;
    };
    let at = |k: &str| format!("{path}.{k}");
    let before = errs.len();
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            errs.push(FieldViolation::new(at(key), "unknown statement element"));
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) if kind == DocumentKind::Observed || s.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Some(s.clone())
        }
        Some(_) => {
            errs.push(FieldViolation::new(at("Sid"), "must be a string of letters and digits (IAM)"));
            None
        }
    };
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Some(Effect::Allow),
        Some("Deny") => Some(Effect::Deny),
        Some(_) | None if obj.contains_key("Effect") => {
            errs.push(FieldViolation::new(at("Effect"), "must be \"Allow\" or \"Deny\""));
            None
        }
        _ => {
            errs.push(FieldViolation::new(at("Effect"), "required (\"Allow\" or \"Deny\")"));
            None
        }
    };
    let principal = obj.get("Principal").and_then(|v| parse_principals(&at("Principal"), v, errs));
    let not_principal = obj.get("NotPrincipal").and_then(|v| parse_principals(&at("NotPrincipal"), v, errs));
    let action = obj.get("Action").and_then(|v| parse_actions(&at("Action"), v, kind, errs));
    let not_action = obj.get("NotAction").and_then(|v| parse_actions(&at("NotAction"), v, kind, errs));
    let resource = obj.get("Resource").and_then(|v| string_set(&at("Resource"), v, errs));
    let not_resource = obj.get("NotResource").and_then(|v| string_set(&at("NotResource"), v, errs));
    let condition = match obj.get("Condition") {
        None => BTreeMap::new(),
        Some(v) => parse_condition(&at("Condition"), v, errs),
    };

    if kind != DocumentKind::Observed {
        let has = |k: &str| obj.contains_key(k);
        match (has("Action"), has("NotAction")) {
            (false, false) => errs.push(FieldViolation::new(at("Action"), "a statement needs Action or NotAction")),
            (true, true) => errs.push(FieldViolation::new(at("NotAction"), "use Action or NotAction, not both")),
            _ => {}
        }
        if has("Principal") && has("NotPrincipal") {
            errs.push(FieldViolation::new(at("NotPrincipal"), "use Principal or NotPrincipal, not both"));
        }
        if has("Resource") && has("NotResource") {
            errs.push(FieldViolation::new(at("NotResource"), "use Resource or NotResource, not both"));
        }
        match kind {
            DocumentKind::Identity => {
                if has("Principal") || has("NotPrincipal") {
                    errs.push(FieldViolation::new(
                        at(if has("Principal") { "Principal" } else { "NotPrincipal" }),
                        "not allowed in a permissions policy (only in trust and resource policies)",
                    ));
                }
                if !has("Resource") && !has("NotResource") {
                    errs.push(FieldViolation::new(
                        at("Resource"),
                        "a permissions policy statement needs Resource or NotResource",
                    ));
                }
            }
            DocumentKind::Trust => {
                if !has("Principal") && !has("NotPrincipal") {
                    errs.push(FieldViolation::new(
                        at("Principal"),
                        "a trust policy statement needs Principal or NotPrincipal",
                    ));
                }
                if has("Resource") || has("NotResource") {
                    errs.push(FieldViolation::new(at("Resource"), "not allowed in a trust policy"));
                }
            }
            DocumentKind::Observed => {}
        }
    }
    if errs.len() > before {
        return None;
    }
    Some(Statement {
        effect: effect?,
        principal,
        not_principal,
        action,
        not_action,
        resource,
        not_resource,
        condition,
        sid,
    })
}

fn parse_principals(path: &str, v: &Value, errs: &mut Vec<FieldViolation>) -> Option<Principals> {
    match v {
        Value::String(s) if s == "*" => Some(Principals::Any),
        Value::Object(map) => {
            let mut typed = BTreeMap::new();
            for (ty, values) in map {
                if !matches!(ty.as_str(), "AWS" | "Service" | "Federated" | "CanonicalUser") {
                    errs.push(FieldViolation::new(
                        format!("{path}.{ty}"),
                        "unknown principal type (allowed: AWS, Service, Federated, CanonicalUser)",
                    ));
                    continue;
                }
                let mut set = string_set(&format!("{path}.{ty}"), values, errs)?;
                if ty == "AWS" {
                    if set.contains("*") && map.len() == 1 && set.len() == 1 {
                        return Some(Principals::Any);
                    }
                    set = set.into_iter().map(|p| normalize_aws_principal(&p)).collect();
                }
                typed.insert(ty.clone(), set);
            }
            Some(Principals::Typed(typed))
        }
        _ => {
            errs.push(FieldViolation::new(path, "must be \"*\" or an object like {\"AWS\": [...]}"));
            None
        }
    }
}

/// `111122223333` and `arn:<partition>:iam::111122223333:root` mean the same principal.
pub(crate) fn normalize_aws_principal(p: &str) -> String {
    if let Some(rest) = p.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [_partition, "iam", "", account, "root"] = parts.as_slice() {
            return (*account).to_string();
        }
    }
    p.to_string()
}

fn parse_actions(
    path: &str,
    v: &Value,
    kind: DocumentKind,
    errs: &mut Vec<FieldViolation>,
) -> Option<BTreeSet<String>> {
    let set = string_set(path, v, errs)?;
    if kind != DocumentKind::Observed {
        for a in &set {
            if !is_action_pattern(a) {
                errs.push(FieldViolation::new(
                    path,
                    format!("{a:?} is not an action (expected \"service:Action\" or \"*\")"),
                ));
            }
        }
    }
    Some(set.into_iter().map(|a| a.to_ascii_lowercase()).collect())
}

fn is_action_pattern(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    let Some((service, action)) = a.split_once(':') else { return false };
    !service.is_empty()
        && service.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !action.is_empty()
        && action.chars().all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
}

fn string_set(path: &str, v: &Value, errs: &mut Vec<FieldViolation>) -> Option<BTreeSet<String>> {
    match v {
        Value::String(s) => Some(BTreeSet::from([s.clone()])),
        Value::Array(items) if !items.is_empty() => {
            let mut out = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => {
                        out.insert(s.clone());
                    }
                    _ => errs.push(FieldViolation::new(format!("{path}[{i}]"), "must be a string")),
                }
            }
            Some(out)
        }
        _ => {
            errs.push(FieldViolation::new(path, "must be a string or a non-empty array of strings"));
            None
        }
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_condition(
    path: &str,
    v: &Value,
    errs: &mut Vec<FieldViolation>,
) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut out = BTreeMap::new();
    let Some(ops) = v.as_object() else {
        errs.push(FieldViolation::new(path, "must be an object of condition operators"));
        return out;
    };
    for (op, keys) in ops {
        let op_path = format!("{path}.{op}");
        let Some(keys) = keys.as_object() else {
            errs.push(FieldViolation::new(&op_path, "must be an object of condition keys to values"));
            continue;
        };
        let entry: &mut BTreeMap<String, BTreeSet<String>> = out.entry(op.clone()).or_default();
        for (key, values) in keys {
            let key_path = format!("{op_path}.{key}");
            let list: Vec<&Value> = match values {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            let mut set = BTreeSet::new();
            for (i, item) in list.iter().enumerate() {
                match scalar_string(item) {
                    Some(s) => {
                        set.insert(s);
                    }
                    None => errs
                        .push(FieldViolation::new(format!("{key_path}[{i}]"), "must be a string, number or boolean")),
                }
            }
            entry.entry(key.to_ascii_lowercase()).or_default().extend(set);
        }
    }
    out
}

fn set_value(set: &BTreeSet<String>) -> Value {
    if set.len() == 1 {
        Value::String(set.iter().next().cloned().unwrap_or_default())
    } else {
        Value::Array(set.iter().cloned().map(Value::String).collect())
    }
}

fn principals_value(p: &Principals) -> Value {
    match p {
        Principals::Any => Value::String("*".into()),
        Principals::Typed(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), set_value(v))).collect()),
    }
}

fn statement_to_value(s: &Statement) -> Value {
    let mut m = Map::new();
    m.insert("Effect".into(), Value::String(format!("{:?}", s.effect)));
    if let Some(p) = &s.principal {
        m.insert("Principal".into(), principals_value(p));
    }
    if let Some(p) = &s.not_principal {
        m.insert("NotPrincipal".into(), principals_value(p));
    }
    for (name, set) in [
        ("Action", &s.action),
        ("NotAction", &s.not_action),
        ("Resource", &s.resource),
        ("NotResource", &s.not_resource),
    ] {
        if let Some(set) = set {
            m.insert(name.into(), set_value(set));
        }
    }
    if !s.condition.is_empty() {
        let cond = s
            .condition
            .iter()
            .map(|(op, keys)| {
                (op.clone(), Value::Object(keys.iter().map(|(k, v)| (k.clone(), set_value(v))).collect()))
            })
            .collect();
        m.insert("Condition".into(), Value::Object(cond));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) {
        let a = PolicyDocument::parse_observed(a).unwrap();
        let b = PolicyDocument::parse_observed(b).unwrap();
        assert_eq!(a, b, "\n{}\nvs\n{}", a.normalized_json(), b.normalized_json());
    }

    fn differ(a: &str, b: &str) {
        let a = PolicyDocument::parse_observed(a).unwrap();
        let b = PolicyDocument::parse_observed(b).unwrap();
        assert_ne!(a, b, "{}", a.normalized_json());
    }

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::444455556666:root"]},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}]}"#;

    #[test]
    fn equal_by_meaning() {
        // URL-encoded, as IAM returns it.
        same(TRUST, &percent_encoding::utf8_percent_encode(TRUST, percent_encoding::NON_ALPHANUMERIC).to_string());
        // Key order, whitespace, single value vs array, value order, bare account ids, action case, Sid.
        same(
            TRUST,
            r#"{ "Statement": { "Action": ["STS:AssumeRole"], "Condition": {"StringEquals": {"sts:externalid": ["x"]}},
                "Principal": {"AWS": ["444455556666", "arn:aws:iam::111122223333:root"]}, "Effect": "Allow", "Sid": "Other" },
                "Version": "2012-10-17" }"#,
        );
        // Statement order and duplicates.
        same(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"},{"Effect":"Allow","Action":"s3:GetObject","Resource":["*"]},{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        );
        // Wildcard principal spellings; boolean condition values.
        same(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":true}}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}}"#,
        );
        // Root ARNs in another partition.
        same(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws-cn:iam::111122223333:root"},"Action":"sts:AssumeRole"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}}"#,
        );
    }

    #[test]
    fn different_by_meaning() {
        differ(TRUST, &TRUST.replace("\"x\"", "\"y\""));
        differ(TRUST, &TRUST.replace("Allow", "Deny"));
        differ(TRUST, &TRUST.replace("StringEquals", "StringLike"));
        differ(TRUST, &TRUST.replace("444455556666", "444455556667"));
        differ(TRUST, &TRUST.replace(r#""Version":"2012-10-17","#, ""));
        // Resource ARNs are case-sensitive.
        differ(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::Bucket/*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}"#,
        );
        // A deleted principal's ARN rewritten to its unique id is a real difference: the trust is broken.
        differ(TRUST, &TRUST.replace("arn:aws:iam::444455556666:root", "AROAEXAMPLEUNIQUEID"));
    }

    fn violations(text: &str, kind: DocumentKind) -> Vec<String> {
        match PolicyDocument::parse(text, kind) {
            Ok(_) => vec![],
            Err(v) => v.into_iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn grammar() {
        let cases: &[(&str, DocumentKind, &[&str])] = &[
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &[],
            ),
            ("not json", DocumentKind::Identity, &["not valid JSON: expected ident at line 1 column 2"]),
            ("[]", DocumentKind::Identity, &["a policy document must be a JSON object"]),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Version: required; use \"2012-10-17\" (without it IAM disables policy variables)"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[]}"#,
                DocumentKind::Identity,
                &["Statement: must be a statement object or a non-empty array of them"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Permit","Action":"*","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Effect: must be \"Allow\" or \"Deny\""],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Action: a statement needs Action or NotAction"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"GetObject","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Action: \"GetObject\" is not an action (expected \"service:Action\" or \"*\")"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Resource: a permissions policy statement needs Resource or NotResource"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Principal: not allowed in a permissions policy (only in trust and resource policies)"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
                DocumentKind::Trust,
                &["Statement[0].Principal: a trust policy statement needs Principal or NotPrincipal"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Foo":1}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Foo: unknown statement element"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"has space","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Sid: must be a string of letters and digits (IAM)"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":[{}]}}}]}"#,
                DocumentKind::Identity,
                &["Statement[0].Condition.Bool.aws:SecureTransport[0]: must be a string, number or boolean"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Statement[0].NotAction: use Action or NotAction, not both"],
            ),
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"sts:AssumeRole"}]}"#,
                DocumentKind::Trust,
                &[
                    "Statement[0].Principal.Robot: unknown principal type (allowed: AWS, Service, Federated, CanonicalUser)",
                ],
            ),
            (
                r#"{"Version":"2012-10-17","Extra":1,"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                DocumentKind::Identity,
                &["Extra: unknown policy element (allowed: Version, Id, Statement)"],
            ),
        ];
        for (text, kind, expected) in cases {
            assert_eq!(violations(text, *kind), *expected, "{text}");
        }
    }

    #[test]
    fn normalized_json_is_canonical() {
        let doc = PolicyDocument::parse_observed(TRUST).unwrap();
        expect_test::expect![[r#"
            {
              "Version": "2012-10-17",
              "Statement": [
                {
                  "Effect": "Allow",
                  "Principal": {
                    "AWS": [
                      "111122223333",
                      "444455556666"
                    ]
                  },
                  "Action": "sts:assumerole",
                  "Condition": {
                    "StringEquals": {
                      "sts:externalid": "x"
                    }
                  }
                }
              ]
            }"#]]
        .assert_eq(&doc.normalized_json());
    }

    /// A number too long for an f64 to hold exactly is read back as the same number once written out: the reading
    /// is correctly rounded (serde_json's `float_roundtrip`), as the fuzzer found it was not.
    #[test]
    fn a_long_number_reads_back_as_itself() {
        let text = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*", "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": 36066666666666666666666666666666666666666666666666666666666666666666666666660}}}}"#;
        let doc = PolicyDocument::parse_observed(text).unwrap();
        assert_eq!(PolicyDocument::parse_observed(&doc.to_json()).unwrap(), doc);
    }
}
