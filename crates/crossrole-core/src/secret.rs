//! Secrets in the domain: the ExternalId, and how it is shown when it leaves crossroled.
//!
//! An [`ExternalId`] never prints itself: its `Debug` is redacted, and the only way to read it is
//! [`ExternalId::expose`], called where it must go to AWS (a trust policy, an AssumeRole) or into the journal's
//! sealed storage. Text that leaves crossroled — changes, drift, check reasons, operations, logs — carries a
//! [`Redactor`]'s mark instead: `<redacted:1a2b3c4d>`, the start of a *keyed* digest (HMAC-SHA-256 under a key
//! crossroled holds). Two equal values get the same mark, so a drift between two ExternalIds still shows, but
//! neither value can be read back, and a weak one cannot be guessed offline from its mark.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// An ExternalId (`sts:ExternalId`), validated by the spec. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExternalId(String);

impl ExternalId {
    /// Wraps a value (validation happens in the spec's validation, which names the field).
    pub fn new(value: impl Into<String>) -> ExternalId {
        ExternalId(value.into())
    }

    /// The value, for AWS and for sealed storage only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(<redacted>)")
    }
}

/// The text shown in place of a secret: `<redacted:` + 8 hex digits of a keyed digest + `>`.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor(<key>)")
    }
}

/// The prefix of every redaction mark.
pub const REDACTED_PREFIX: &str = "<redacted";

impl Redactor {
    /// A redactor keyed with `key` (crossroled derives it from its journal key).
    pub fn new(key: [u8; 32]) -> Redactor {
        Redactor { key }
    }

    /// A redactor for one response to a caller who may not read ExternalIds, keyed with `random` bytes the caller
    /// draws (the core takes no randomness of its own): equal values in that response share a mark, so a change
    /// from one ExternalId to another still shows, but no mark in it can be compared with a mark anywhere else —
    /// the mark of a guess tells nothing about the ExternalIds crossroled holds.
    pub fn for_one_response(random: &mut impl rand::Rng) -> Redactor {
        let mut key = [0u8; 32];
        random.fill(&mut key);
        Redactor { key }
    }

    /// The mark for `secret`.
    pub fn mark(&self, secret: &str) -> String {
        let digest = hmac_sha256(&self.key, secret.as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("{REDACTED_PREFIX}:{hex}>")
    }

    /// The full keyed digest of `data`, hex: a fingerprint of data that contains secrets.
    pub fn digest(&self, data: &[u8]) -> String {
        hmac_sha256(&self.key, data).iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `text` is a mark this or any redactor made (a value sent back as it was shown).
    pub fn is_mark(text: &str) -> bool {
        text == REDACTED_PREFIX.to_string() + ">"
            || (text.starts_with("<redacted:") && text.ends_with('>') && text.len() == "<redacted:12345678>".len())
    }

    /// A policy document's JSON text with every `sts:ExternalId` condition value replaced by its mark. Text that
    /// is not a JSON document but mentions an ExternalId is replaced as a whole: nothing unparsed leaves.
    pub fn policy_text(&self, text: &str) -> String {
        let Ok(mut value) = serde_json::from_str::<Value>(text) else {
            return if text.to_ascii_lowercase().contains("externalid") {
                format!("{REDACTED_PREFIX}: a document that does not parse and names an ExternalId>")
            } else {
                text.to_string()
            };
        };
        let secrets = external_id_values(&value);
        let mut changed = self.redact_value(&mut value);
        // A document shown as written keeps its Sids and every other value: one that repeats an ExternalId goes too.
        changed |= redact_repeated(&mut value, &secrets, &|s| self.mark(s));
        if !changed {
            return text.to_string();
        }
        // Keep the layout the caller chose (pretty or compact).
        if text.contains('\n') { serde_json::to_string_pretty(&value).unwrap_or_default() } else { value.to_string() }
    }

    /// Redacts `sts:ExternalId` values under any `Condition` in `value`; whether anything changed.
    pub fn redact_value(&self, value: &mut Value) -> bool {
        let mut changed = false;
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if k == "Condition"
                        && let Value::Object(operators) = v
                    {
                        for keys in operators.values_mut() {
                            if let Value::Object(keys) = keys {
                                for (key, values) in keys.iter_mut() {
                                    if key.eq_ignore_ascii_case("sts:ExternalId") {
                                        changed |= self.redact_leaves(values);
                                    }
                                }
                            }
                        }
                    } else {
                        changed |= self.redact_value(v);
                    }
                }
            }
            Value::Array(items) => {
                for v in items {
                    changed |= self.redact_value(v);
                }
            }
            _ => {}
        }
        changed
    }

    fn redact_leaves(&self, value: &mut Value) -> bool {
        match value {
            Value::Array(items) => items.iter_mut().fold(false, |c, v| self.redact_leaves(v) | c),
            Value::Object(_) | Value::Null => false,
            Value::String(s) => {
                *value = Value::String(self.mark(s));
                true
            }
            other => {
                *other = Value::String(self.mark(&other.to_string()));
                true
            }
        }
    }
}

/// Calls `f` with the operator and the values of every `sts:ExternalId` condition (the key in any case) in a
/// policy document's JSON, the operator as written.
pub(crate) fn each_external_id_condition(value: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::Object(operators) if k == "Condition" => {
                        for (op, keys) in operators.iter_mut() {
                            let Value::Object(keys) = keys else { continue };
                            for (key, values) in keys.iter_mut() {
                                if key.eq_ignore_ascii_case("sts:ExternalId") {
                                    f(op, values);
                                }
                            }
                        }
                    }
                    other => each_external_id_condition(other, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| each_external_id_condition(v, f)),
        _ => {}
    }
}

/// The ExternalIds a policy document's JSON holds: the values of its `sts:ExternalId` conditions but a `Null`
/// condition's (`"true"`/`"false"`, no ExternalId) and values of wildcards only (`*`, no secret).
pub(crate) fn external_id_values(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut copy = value.clone();
    each_external_id_condition(&mut copy, &mut |op, values| {
        if op.eq_ignore_ascii_case("Null") {
            return;
        }
        let leaves = match values {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        for leaf in leaves {
            let text = match leaf {
                Value::String(s) => s,
                Value::Object(_) | Value::Array(_) | Value::Null => continue,
                other => other.to_string(),
            };
            if !text.is_empty() && !text.chars().all(|c| c == '*' || c == '?') {
                found.push(text);
            }
        }
    });
    found
}

/// Replaces, anywhere in a policy document's JSON, a string value that repeats one of `secrets` with
/// `mark(secret)`: one equal to it (ignoring case) — a principal, another condition's value — and a `Sid` or `Id`
/// that holds one of 6 characters or more (a Sid spelling the ExternalId out, `AllowVendorAbc123def`). Other values
/// merely holding one are kept: an ExternalId may be an account id, and the ARNs that name the account are no
/// secret. The values of `Version`, `Effect`, `Action` and `NotAction` are IAM's words, never a secret's, and are
/// kept (a short ExternalId may equal one). Whether anything was replaced.
pub(crate) fn redact_repeated(value: &mut Value, secrets: &[String], mark: &dyn Fn(&str) -> String) -> bool {
    if secrets.is_empty() {
        return false;
    }
    let lowered: Vec<(String, &String)> = secrets.iter().map(|s| (s.to_lowercase(), s)).collect();
    let leaked = |text: &str, name: bool| {
        let text = text.to_lowercase();
        lowered
            .iter()
            .find(|(l, _)| text == *l || (name && l.chars().count() >= 6 && text.contains(l.as_str())))
            .map(|(_, secret)| mark(secret))
    };
    fn walk(value: &mut Value, name: bool, leaked: &dyn Fn(&str, bool) -> Option<String>) -> bool {
        match value {
            Value::String(s) => match leaked(s, name) {
                Some(marked) => {
                    *s = marked;
                    true
                }
                None => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |c, v| walk(v, false, leaked) | c),
            Value::Object(map) => map.iter_mut().fold(false, |c, (k, v)| {
                let words = matches!(k.as_str(), "Version" | "Effect" | "Action" | "NotAction");
                (!words && walk(v, matches!(k.as_str(), "Sid" | "Id"), leaked)) | c
            }),
            _ => false,
        }
    }
    walk(value, false, &leaked)
}

/// HMAC-SHA-256 (RFC 2104), from the `sha2` digest.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231, test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn external_ids_never_print_themselves() {
        let id = ExternalId::new("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf");
        assert_eq!(format!("{id:?}"), "ExternalId(<redacted>)");
        assert_eq!(format!("{:?}", Some(id.clone())), "Some(ExternalId(<redacted>))");
        assert_eq!(id.expose(), "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf");
    }

    #[test]
    fn marks_compare_without_revealing() {
        let r = Redactor::new([7; 32]);
        let a = r.mark("correct-horse-battery");
        assert_eq!(a, r.mark("correct-horse-battery"));
        assert_ne!(a, r.mark("wrong"));
        assert!(!a.contains("horse"));
        assert!(Redactor::is_mark(&a), "{a}");
        // Another key, another mark: the mark is no offline oracle for guesses.
        assert_ne!(a, Redactor::new([8; 32]).mark("correct-horse-battery"));
    }

    #[test]
    fn policy_texts_lose_every_external_id() {
        let r = Redactor::new([1; 32]);
        let cases = [
            r#"{"Statement":[{"Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"}}}]}"#,
            r#"{"Statement":{"Condition":{"StringLike":{"STS:EXTERNALID":["s3cr3t-value","other"]}}}}"#,
            "{\n  \"Statement\": [{\"Condition\": {\"ForAnyValue:StringEquals\": {\"sts:externalid\": [\"s3cr3t-value\"]}}}]\n}",
            "not json but sts:ExternalId s3cr3t-value",
        ];
        for text in cases {
            let out = r.policy_text(text);
            assert!(!out.contains("s3cr3t-value"), "{out}");
            assert!(out.contains("<redacted"), "{out}");
        }
        // Shown as written, a Sid (or any other value) that spells the ExternalId out goes too.
        let sid = r#"{"Statement":[{"Sid":"AllowS3cr3tValue","Principal":{"AWS":"S3CR3TVALUE"},"Condition":{"StringEquals":{"sts:ExternalId":"s3cr3tValue"}}}]}"#;
        let out = r.policy_text(sid);
        assert!(!out.to_lowercase().contains("s3cr3tvalue"), "{out}");
        assert_eq!(out.matches(&r.mark("s3cr3tValue")).count(), 3, "{out}");
        // An ExternalId that is an account id: the ARNs naming the account are kept.
        let account = r#"{"Statement":[{"Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Condition":{"StringEquals":{"sts:ExternalId":"999988887777"}}}]}"#;
        let out = r.policy_text(account);
        assert!(out.contains("arn:aws:iam::999988887777:root") && out.contains(&r.mark("999988887777")), "{out}");
        let plain = r#"{"Statement":[{"Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}"#;
        assert_eq!(r.policy_text(plain), plain);
        assert_eq!(r.policy_text("path: /x/"), "path: /x/");
        // Pretty text stays pretty.
        assert!(r.policy_text(cases[2]).contains('\n'));
    }
}
