//! The properties crossrole's fuzz targets check, one function per target. The targets in `fuzz_targets/` only
//! turn libFuzzer's bytes into these functions' inputs.
//!
//! Every function panics on a broken property, which libFuzzer reports as a crash with the input that caused it.
//! Beyond "never panics", each checks what the code promises:
//! - a spec file that validates survives every trip it takes in crossrole unchanged: to the wire and back (the API),
//!   to the journal's record and back, and parsing it twice gives the same spec;
//! - a policy document's normalized form is a fixed point, and documents IAM treats the same (statements reordered
//!   or repeated, a value as a one-element array, actions in another case, no `Sid`) compare equal;
//! - the trust evaluator gives the same answer twice and never panics, whatever the policy and the caller;
//! - a Switch Role link decodes back to the account, the role's path and name, and a display name of at most 64
//!   characters, with nothing in its query outside RFC 3986's unreserved set but percent escapes; exports name one
//!   profile per account, each name once (and the same whichever accounts are left out as not applied), never with
//!   the ExternalId unless asked, and the JSON one parses; console
//!   sign-in URLs decode back to the session, the token and the destination they were given;
//! - an API message, whatever its bytes, converts to the domain or is refused with a named field.

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use crossrole_core::{
    AccessSpec, Partition, export,
    links::{self, SwitchRoleLink},
    policy::{
        DocumentKind, PolicyDocument,
        eval::{self, Caller, Request},
    },
    spec::{RawSpec, SpecFile},
};
use crossrole_wire::{FromWire, ToWire, pb};
use serde_json::Value;

/// A spec file in YAML or JSON.
pub fn spec_file(text: &str, json: bool) {
    let parse = |text: &str| {
        let file = if json { SpecFile::from_json(text) } else { SpecFile::from_yaml(text) };
        file.and_then(SpecFile::into_spec)
    };
    let first = parse(text);
    let again = parse(text);
    assert_eq!(first, again, "parsing the same file twice gave different answers");
    if let Ok(spec) = first {
        spec_round_trips(&spec);
    }
}

fn spec_round_trips(spec: &AccessSpec) {
    let wire = spec.to_wire();
    let back = crossrole_wire::spec(Some(&wire)).expect("a valid spec's API message is refused");
    assert_eq!(&back, spec, "a spec changed on its way to the API and back");
    let record = serde_json::to_string(&RawSpec::from(spec)).expect("a spec's journal record does not serialize");
    let raw: RawSpec = serde_json::from_str(&record).expect("a spec's journal record does not read back");
    let back = AccessSpec::try_from(&raw).expect("a valid spec's journal record is refused");
    assert_eq!(&back, spec, "a spec changed on its way through the journal");
}

/// A policy document, as each kind.
pub fn policy(text: &str) {
    for kind in [DocumentKind::Identity, DocumentKind::Trust, DocumentKind::Observed] {
        let Ok(doc) = PolicyDocument::parse(text, kind) else { continue };
        let normalized = doc.normalized_json();
        let again = PolicyDocument::parse(&normalized, DocumentKind::Observed)
            .unwrap_or_else(|e| panic!("the normalized form does not parse: {e:?}\n{normalized}"));
        assert_eq!(again, doc, "the normalized form means something else\n{normalized}");
        assert_eq!(again.normalized_json(), normalized, "normalizing twice changed the document");
        assert_eq!(PolicyDocument::parse_observed(&doc.to_json()).ok().as_ref(), Some(&doc), "as IAM returns it");
        let variant = same_to_iam(doc.as_value());
        let other = PolicyDocument::from_value(variant.clone(), kind)
            .unwrap_or_else(|e| panic!("a document IAM treats the same is refused: {e:?}\n{variant}"));
        assert_eq!(other, doc, "documents IAM treats the same compare different\n{variant}");
    }
}

/// The same document as IAM sees it: statements reversed and the first repeated, without `Sid`s; one-element
/// arrays as scalars and scalars as one-element arrays; actions in upper case (ASCII: IAM's action names are).
fn same_to_iam(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let Some(obj) = doc.as_object_mut() else { return doc };
    let statements = match obj.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(s) => vec![s.clone()],
        None => return doc,
    };
    let mut out: Vec<Value> = statements.iter().rev().map(statement_same_to_iam).collect();
    if let Some(first) = out.first().cloned() {
        out.push(first);
    }
    obj.insert("Statement".into(), Value::Array(out));
    doc
}

fn statement_same_to_iam(statement: &Value) -> Value {
    let mut s = statement.clone();
    let Some(obj) = s.as_object_mut() else { return s };
    obj.shift_remove("Sid");
    for key in ["Action", "NotAction"] {
        if let Some(v) = obj.get_mut(key) {
            *v = flip(&upper(v));
        }
    }
    for key in ["Resource", "NotResource"] {
        if let Some(v) = obj.get_mut(key) {
            *v = flip(v);
        }
    }
    s
}

fn upper(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.to_ascii_uppercase()),
        Value::Array(items) => Value::Array(items.iter().map(upper).collect()),
        other => other.clone(),
    }
}

/// A scalar as a one-element array, a one-element array as its scalar.
fn flip(v: &Value) -> Value {
    match v {
        Value::Array(items) if items.len() == 1 => items[0].clone(),
        Value::String(_) => Value::Array(vec![v.clone()]),
        other => other.clone(),
    }
}

/// The inputs of the trust evaluator.
#[derive(Debug, Arbitrary)]
pub struct TrustInput {
    /// The policy, as read back from IAM.
    pub policy: String,
    /// The caller's ARN.
    pub principal_arn: String,
    /// `sts:ExternalId`.
    pub external_id: Option<String>,
    /// `aws:MultiFactorAuthPresent`.
    pub mfa: Option<bool>,
    /// `aws:PrincipalOrgID`.
    pub org_id: Option<String>,
    /// The action asked for.
    pub action: String,
    /// The resource, for identity policies.
    pub resource: String,
    /// Further context keys.
    pub context: Vec<(String, Vec<String>)>,
}

/// The trust evaluator and the request evaluator on any policy and caller.
pub fn trust_eval(input: &TrustInput) {
    let Ok(policy) = PolicyDocument::parse_observed(&input.policy) else { return };
    let caller = Caller {
        external_id: input.external_id.clone(),
        mfa: input.mfa,
        org_id: input.org_id.clone(),
        ..Caller::from_arn(&input.principal_arn)
    };
    let first = eval::evaluate(&policy, &caller, &input.action);
    assert_eq!(first, eval::evaluate(&policy, &caller, &input.action), "the trust evaluator is not deterministic");
    let mut request = Request::new(&input.action, &input.resource);
    for (key, values) in &input.context {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        request = request.with(key, &values);
    }
    let first = eval::evaluate_request(&[&policy], &request);
    assert_eq!(first, eval::evaluate_request(&[&policy], &request), "the request evaluator is not deterministic");
}

/// The inputs of link building: a role and an account, on a spec that is otherwise valid.
#[derive(Debug, Arbitrary)]
pub struct LinkInput {
    /// Role name.
    pub role_name: String,
    /// IAM path.
    pub path: String,
    /// The account's id (any number: ids come from Organizations as 12 digits).
    pub account_id: u64,
    /// The account's name.
    pub account_name: String,
    /// Which partition.
    pub partition: u8,
    /// Whether the role requires an ExternalId.
    pub external_id: bool,
    /// More accounts (id, name), for the exports.
    pub accounts: Vec<(u64, String)>,
    /// A profile name template.
    pub name_template: Option<String>,
    /// Temporary credentials, a sign-in token and a destination, for console sign-in URLs.
    pub session: (String, String, String),
    /// The sign-in token.
    pub signin_token: String,
    /// Where the sign-in lands.
    pub destination: String,
    /// The session's duration.
    pub session_duration: Option<u32>,
}

const BASE_SPEC: &str = r#"{"name": "fuzz", "role": {"name": "R", "trust": {"account_ids": ["111122223333"]}},
    "targets": {"organizational_unit_paths": ["/Root"]}}"#;

/// Switch Role links and the exports.
pub fn links(input: &LinkInput) {
    let mut raw = SpecFile::from_json(BASE_SPEC).and_then(SpecFile::into_raw).expect("the base spec is valid");
    let role = raw.role.as_mut().expect("the base spec has a role");
    role.name = input.role_name.clone();
    role.path = input.path.clone();
    if input.external_id {
        role.trust.as_mut().expect("the base spec has a trust").external_id = "fuzz-external-id-0001".into();
    }
    let Ok(spec) = AccessSpec::try_from(&raw) else { return };
    let partition = match input.partition % 3 {
        0 => Partition::Aws,
        1 => Partition::AwsUsGov,
        _ => Partition::AwsCn,
    };
    let id = |n: u64| format!("{:012}", n % 1_000_000_000_000);
    let account_id = id(input.account_id);
    match links::switch_role_link(&spec, partition, &account_id, &input.account_name) {
        SwitchRoleLink::Unusable(why) => assert!(!why.is_empty(), "a link refused without a reason"),
        SwitchRoleLink::Url(url) => check_link(&url, &spec, partition, &account_id),
    }
    let account = |id: String, name: &String, n: usize| export::Account {
        id,
        name: name.clone(),
        joined_at: (n % 3 != 0).then_some(n as u64 % 5),
        applied: n % 4 != 1,
    };
    let mut accounts: Vec<export::Account> =
        input.accounts.iter().enumerate().map(|(n, (i, name))| account(id(*i), name, n)).collect();
    accounts.push(account(account_id, &input.account_name, input.accounts.len()));
    let options = export::Options {
        source_profile: "default",
        mfa_serial: None,
        reveal_external_id: false,
        name_template: input.name_template.as_deref().filter(|t| export::check_name_template(t).is_ok()),
        include_unapplied: true,
        session: None,
    };
    let profiles = export::export(&spec, partition, &accounts, export::Format::AwsConfig, options).text;
    let names: Vec<&str> = profiles.lines().filter(|l| l.starts_with("[profile ")).collect();
    let unique: std::collections::BTreeSet<&&str> = names.iter().collect();
    assert_eq!(names.len(), accounts.len(), "not one profile per account\n{profiles}");
    assert_eq!(names.len(), unique.len(), "two profiles share a name\n{profiles}");
    // Left out or not, an account's profile keeps its name: the others' names are the same without it.
    let applied = export::export(
        &spec,
        partition,
        &accounts,
        export::Format::AwsConfig,
        export::Options { include_unapplied: false, ..options },
    );
    let kept: Vec<&str> = applied.text.lines().filter(|l| l.starts_with("[profile ")).collect();
    assert!(kept.iter().all(|n| names.contains(n)), "leaving accounts out renamed others\n{}", applied.text);
    assert_eq!(kept.len() + applied.left_out.len(), accounts.len(), "an account neither exported nor left out");
    for format in [export::Format::AwsConfig, export::Format::Aesr, export::Format::Json] {
        let text = export::export(&spec, partition, &accounts, format, options).text;
        assert!(!text.contains("fuzz-external-id-0001"), "the ExternalId was written without being asked for");
    }
    console_urls(input, partition);
    let json = export::export(&spec, partition, &accounts, export::Format::Json, options).text;
    let parsed: Value = serde_json::from_str(&json).expect("the JSON export does not parse");
    assert_eq!(parsed.as_array().map(Vec::len), Some(accounts.len()));
}

/// Console sign-in URLs carry exactly what they were given, escaped.
fn console_urls(input: &LinkInput, partition: Partition) {
    let endpoint = links::federation_endpoint(partition);
    let (id, key, token) = &input.session;
    let session = links::federation_session(id, key, token);
    let parsed: Value = serde_json::from_str(&session).expect("the session is not JSON");
    assert_eq!(
        (&parsed["sessionId"], &parsed["sessionKey"], &parsed["sessionToken"]),
        (&Value::from(id.as_str()), &Value::from(key.as_str()), &Value::from(token.as_str()))
    );
    let asked = query(&links::signin_token_url(&endpoint, &session, input.session_duration), &endpoint);
    assert_eq!(asked.get("Action").map(String::as_str), Some("getSigninToken"));
    assert_eq!(asked.get("Session"), Some(&session));
    assert_eq!(asked.get("SessionDuration").cloned(), input.session_duration.map(|d| d.to_string()));
    let login =
        query(&links::console_login_url(&endpoint, &input.signin_token, "crossrole", &input.destination), &endpoint);
    assert_eq!(login.get("SigninToken"), Some(&input.signin_token));
    assert_eq!(login.get("Destination"), Some(&input.destination));
    assert_eq!(login.get("Issuer").map(String::as_str), Some("crossrole"));
}

/// A URL's query, decoded; every value escaped to RFC 3986's unreserved set, every key once.
fn query(url: &str, endpoint: &str) -> BTreeMap<String, String> {
    let query = url.strip_prefix(endpoint).and_then(|q| q.strip_prefix('?')).unwrap_or_else(|| panic!("{url}"));
    let mut params = BTreeMap::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("{pair:?} in {url} is not key=value"));
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "unescaped {k} in {url}");
        let decoded = percent_encoding::percent_decode_str(v).decode_utf8().expect("a value is not UTF-8");
        assert!(params.insert(k.to_string(), decoded.into_owned()).is_none(), "{k} twice in {url}");
    }
    params
}

fn check_link(url: &str, spec: &AccessSpec, partition: Partition, account_id: &str) {
    let params = query(url, &format!("https://{}/switchrole", partition.signin_host()));
    let role = format!("{}{}", spec.role.path.trim_start_matches('/'), spec.role.name);
    assert_eq!(params.get("roleName"), Some(&role), "{url}");
    let display = params.get("displayName").expect("no displayName");
    assert!(display.chars().count() <= 64, "displayName is longer than 64 characters: {url}");
    assert_eq!(params.get("account").map(String::as_str), Some(account_id), "{url}");
}

/// An API message from any bytes: decoded by prost, then converted to the domain. `kind` picks the message.
pub fn wire(kind: u8, bytes: &[u8]) {
    use prost::Message;
    match kind % 5 {
        0 => {
            let Ok(message) = pb::AccessSpec::decode(bytes) else { return };
            if let Ok(spec) = crossrole_wire::spec(Some(&message)) {
                spec_round_trips(&spec);
            }
        }
        1 => {
            let Ok(message) = pb::Binding::decode(bytes) else { return };
            // Any instant: an end far past or ahead of it, or an overflowing duration, is refused, never a panic.
            let _ =
                crossrole_core::binding::Binding::validate(&crossrole_wire::raw_binding(&message), 1_764_900_000_000);
        }
        2 => round_trip::<pb::Operation, crossrole_core::ops::Operation>(bytes),
        3 => round_trip::<pb::OperationEvent, crossrole_core::ops::OperationEvent>(bytes),
        _ => {
            let Ok(message) = pb::TargetSelector::decode(bytes) else { return };
            let _ = crossrole_wire::selector(Some(&message), "targets");
        }
    }
}

/// A message the domain accepts goes back out as a message that reads back into the same value.
fn round_trip<W, D>(bytes: &[u8])
where
    W: prost::Message + Default,
    D: FromWire<W> + ToWire<Wire = W> + PartialEq + std::fmt::Debug,
{
    let Ok(message) = W::decode(bytes) else { return };
    let Ok(value) = D::from_wire(&message) else { return };
    let back = D::from_wire(&value.to_wire()).expect("a value's own message is refused");
    assert_eq!(back, value, "a value changed on its way to the API and back");
}

/// A message from the Organizations events queue: never panics, the same answer twice and through SNS, and a
/// change names only ids of the shape AWS gives them (they go into AWS calls).
pub fn org_events(body: &str) {
    use crossrole_core::org_events::{MAX_BODY, OrgChange, Parsed, parse};
    let parsed = parse(body);
    assert_eq!(parse(body), parsed, "parsing twice gave different answers");
    if let Parsed::Change(event) = &parsed {
        let account = event.change.account_id().unwrap_or("000000000000");
        assert!(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()), "account id {account:?}");
        if let OrgChange::Moved { from, to, .. } = &event.change {
            for id in [from, to] {
                assert!(id.starts_with("r-") || id.starts_with("ou-"), "parent id {id:?}");
                assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{id:?}");
            }
        }
    }
    // SNS wraps an event once: a body that is itself a notification is not wrapped again.
    let wrapped = serde_json::from_str::<Value>(body).ok().is_some_and(|v| v.get("Type").is_some());
    let sns = serde_json::json!({"Type": "Notification", "Message": body}).to_string();
    if sns.len() <= MAX_BODY && !wrapped && !matches!(parsed, Parsed::Malformed(_)) {
        assert_eq!(parse(&sns), parsed, "through SNS the same message means something else");
    }
}
