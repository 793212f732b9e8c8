//! A document as IAM returned it, for people: URL-decoded and pretty-printed, its members in the order IAM gave
//! them — never normalized (no root ARN made an account id, no action or key lowercased, no `Sid` dropped, the
//! partition as written). Normalization decides *whether* two documents differ ([`super::PolicyDocument`]'s
//! equality); what is shown is the text.
//!
//! To show how a document differs from another, [`in_order_of`] puts its object members in the other's order
//! where both have them: member order means nothing in JSON, so a line diff then shows only what the texts say
//! differently.

use serde_json::{Map, Value};

/// `text` (URL-encoded as IAM returns documents, or not) decoded and pretty-printed, members in their order; text
/// that is not JSON is returned decoded, as it is.
pub fn as_returned(text: &str) -> String {
    let decoded = if text.trim_start().starts_with('{') {
        text.to_string()
    } else {
        percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
    };
    serde_json::from_str::<Value>(&decoded).ok().and_then(|v| serde_json::to_string_pretty(&v).ok()).unwrap_or(decoded)
}

/// `before` (a JSON document's text) pretty-printed with the members of each object in the order `after` has them
/// (members only `before` has follow, in its order), array elements paired by position; its values untouched.
/// `before` as it is when either is not JSON.
pub fn in_order_of(before: &str, after: &str) -> String {
    let (Ok(mut b), Ok(a)) = (serde_json::from_str::<Value>(before), serde_json::from_str::<Value>(after)) else {
        return before.to_string();
    };
    reorder(&mut b, &a);
    serde_json::to_string_pretty(&b).unwrap_or_else(|_| before.to_string())
}

fn reorder(before: &mut Value, after: &Value) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut old = std::mem::take(b);
            let mut out = Map::new();
            for (key, a_value) in a {
                if let Some(mut v) = old.shift_remove(key) {
                    reorder(&mut v, a_value);
                    out.insert(key.clone(), v);
                }
            }
            out.extend(old);
            *b = out;
        }
        (Value::Array(b), Value::Array(a)) => b.iter_mut().zip(a).for_each(|(b, a)| reorder(b, a)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_document_is_shown_as_written() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Vendor","Effect":"Allow","Principal":{"AWS":"arn:aws-cn:iam::111122223333:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}]}"#;
        let encoded = percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string();
        let shown = as_returned(&encoded);
        assert_eq!(shown, as_returned(text));
        for kept in ["\"Sid\": \"Vendor\"", "arn:aws-cn:iam::111122223333:root", "\"sts:AssumeRole\"", "sts:ExternalId"]
        {
            assert!(shown.contains(kept), "{kept}: {shown}");
        }
        assert!(shown.find("Version") < shown.find("Statement"), "IAM's order: {shown}");
        assert_eq!(as_returned("not %7B json"), "not { json");
    }

    #[test]
    fn in_order_of_moves_members_and_changes_no_value() {
        let before = r#"{"Statement":[{"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"Bool":{"aws:MultiFactorAuthPresent":"true"}},"Action":["sts:AssumeRole"],"Effect":"Allow"}],"Version":"2012-10-17"}"#;
        let after = r#"{"Version":"2012-10-17","Statement":[{"Sid":"S","Effect":"Allow","Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}"#;
        let shown = in_order_of(before, after);
        expect_test::expect![[r#"
            {
              "Version": "2012-10-17",
              "Statement": [
                {
                  "Effect": "Allow",
                  "Action": [
                    "sts:AssumeRole"
                  ],
                  "Condition": {
                    "Bool": {
                      "aws:MultiFactorAuthPresent": "true"
                    },
                    "IpAddress": {
                      "aws:SourceIp": "10.0.0.0/8"
                    }
                  }
                }
              ]
            }"#]]
        .assert_eq(&shown);
        assert_eq!(serde_json::from_str::<Value>(&shown).unwrap(), serde_json::from_str::<Value>(before).unwrap());
        assert_eq!(in_order_of("not json", after), "not json");
    }
}
