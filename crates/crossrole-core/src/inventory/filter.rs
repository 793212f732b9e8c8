//! The principal an inventory listing is filtered by ("where can this principal go"), checked before it is used: a
//! malformed one would match nothing but the roles anyone can enter, a plausible list that answers another question.

use crate::names::{self, Arn, Partition};

/// What the principal filter takes, for the error that refuses anything else.
pub const PRINCIPAL_FILTER_RULE: &str = "must be an account id (12 digits), an IAM or STS principal ARN \
     (arn:aws:iam::111122223333:role/Name, …:user/Name, …:root, arn:aws:sts::111122223333:assumed-role/Name/session), \
     a service principal (ec2.amazonaws.com) or a SAML/OIDC provider ARN \
     (arn:aws:iam::111122223333:saml-provider/Name)";

/// Checks the principal filter `p` (already trimmed; empty means none and is not checked here): an account id, an
/// IAM principal ARN (root, user, role, SAML or OIDC provider) or an STS one (assumed role, federated user) in a
/// known partition with a 12-digit account, or a service principal (`<name>.amazonaws.com`, `.amazonaws.com.cn` in
/// China, `cognito-identity.amazonaws.com` among them). `*` is refused: the roles anyone can enter are the finding
/// `anyone_can_enter`'s. The error says what is wrong and the rule; the caller names its field.
pub fn check_principal_filter(p: &str) -> Result<(), String> {
    let got = |why: &str| Err(format!("{why}, got {p:?}: {PRINCIPAL_FILTER_RULE}"));
    if p == "*" {
        return Err(format!(
            "{p:?} names no principal; the roles anyone can enter are those with the finding anyone_can_enter \
             (crossrole inventory --finding anyone-can-enter)"
        ));
    }
    if p.bytes().all(|b| b.is_ascii_digit()) {
        return if names::is_account_id(p) { Ok(()) } else { got("an account id has 12 digits") };
    }
    if let Some(host) = p.strip_suffix(".amazonaws.com").or_else(|| p.strip_suffix(".amazonaws.com.cn")) {
        let label =
            |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        return if host.split('.').all(label) {
            Ok(())
        } else {
            got("a service principal is lowercase letters, digits, '-' and '.'")
        };
    }
    if !p.starts_with("arn:") {
        return got("not a principal");
    }
    let Some(arn) = Arn::parse(p) else { return got("not an ARN (arn:partition:service::account:resource)") };
    if Partition::parse(arn.partition).is_none() {
        return got("the ARN's partition must be aws, aws-cn or aws-us-gov");
    }
    if !arn.region.is_empty() {
        return got("an IAM or STS ARN has no region");
    }
    if !names::is_account_id(arn.account) {
        return got("the ARN's account must be 12 digits");
    }
    let kinds: &[&str] = match arn.service {
        "iam" => &["user/", "role/", "saml-provider/", "oidc-provider/"],
        "sts" => &["assumed-role/", "federated-user/"],
        _ => return got("the ARN's service must be iam or sts"),
    };
    if arn.service == "iam" && arn.resource == "root" {
        return Ok(());
    }
    let Some(rest) = kinds.iter().find_map(|k| arn.resource.strip_prefix(k)) else {
        return got(&format!(
            "the ARN's resource must be {}",
            if arn.service == "iam" {
                "root, user/…, role/…, saml-provider/… or oidc-provider/…"
            } else {
                "assumed-role/… or federated-user/…"
            }
        ));
    };
    if rest.is_empty() || rest.ends_with('/') || rest.contains("//") {
        return got("the ARN names no principal after its type");
    }
    if let Some(c) = rest.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '?' | ',')) {
        return got(&format!("the ARN may not hold {c:?} (a filter names one principal, no pattern)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_principal_filter;

    #[test]
    fn a_principal_filter_takes_what_its_help_names_and_refuses_the_rest() {
        for good in [
            "999988887777",
            "arn:aws:iam::999988887777:root",
            "arn:aws-cn:iam::999988887777:root",
            "arn:aws:iam::999988887777:role/ops/Deployer",
            "arn:aws:iam::999988887777:user/alice",
            "arn:aws:sts::999988887777:assumed-role/Deployer/session-1",
            "arn:aws:sts::999988887777:federated-user/bob",
            "arn:aws:iam::999988887777:saml-provider/Okta",
            "arn:aws:iam::999988887777:oidc-provider/token.actions.githubusercontent.com",
            "ec2.amazonaws.com",
            "cognito-identity.amazonaws.com",
            "ec2.amazonaws.com.cn",
        ] {
            assert_eq!(check_principal_filter(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("not-a-principal", "not a principal"),
            ("arn:aws:iam::99998888777:root", "12 digits"),
            ("99998888777", "12 digits"),
            ("9999888877770", "12 digits"),
            ("arn:aws:iam::abcdefghijkl:root", "12 digits"),
            ("arn:aws:iam::*:root", "12 digits"),
            ("arn:aws:s3:::bucket", "12 digits"),
            ("arn:aws:s3::999988887777:bucket", "service must be iam or sts"),
            ("arn:aws:iam:us-east-1:999988887777:root", "no region"),
            ("arn:aws-xx:iam::999988887777:root", "partition"),
            ("arn:aws:iam::999988887777:group/admins", "resource must be root"),
            ("arn:aws:iam::999988887777:role/", "names no principal"),
            ("arn:aws:iam::999988887777:role/Dep*", "no pattern"),
            ("arn:aws:sts::999988887777:root", "assumed-role"),
            ("EC2.amazonaws.com", "lowercase"),
            (".amazonaws.com", "lowercase"),
            ("*", "anyone_can_enter"),
        ] {
            let e = check_principal_filter(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // The rule comes with every refusal but `*`'s, which says where to look instead.
        assert!(check_principal_filter("nope").unwrap_err().contains("an account id (12 digits)"));
    }
}
