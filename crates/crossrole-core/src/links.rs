//! Switch Role console links for a spec's role in each account (exports for other tools: [`crate::export`]).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{Partition, spec::AccessSpec};

/// Characters left alone in query values: RFC 3986 unreserved.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The console's limit on `path/name` in the Switch Role form.
pub const CONSOLE_ROLE_MAX: usize = 64;

/// A Switch Role link, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchRoleLink {
    /// The link.
    Url(String),
    /// Why the console cannot be used for this role.
    Unusable(String),
}

/// The Switch Role link for `spec`'s role in `account`, labelled with `account_name`.
pub fn switch_role_link(spec: &AccessSpec, partition: Partition, account: &str, account_name: &str) -> SwitchRoleLink {
    let role = &spec.role;
    if role.trust.external_id.is_some() {
        return SwitchRoleLink::Unusable(
            "the role requires an ExternalId, which the console's Switch Role page cannot send; sign in with \
             `crossrole console <account> -f <spec file>`, or use an AWS CLI profile \
             (`crossrole export -f <spec file> --source-profile <profile>`)"
                .into(),
        );
    }
    let role_name = format!("{}{}", role.path.trim_start_matches('/'), role.name);
    if role_name.chars().count() > CONSOLE_ROLE_MAX {
        return SwitchRoleLink::Unusable(format!(
            "path and name are {} characters; the console accepts at most {CONSOLE_ROLE_MAX}",
            role_name.chars().count()
        ));
    }
    let mut display: String = format!("{} @ {account_name}", role.name);
    if display.chars().count() > 64 {
        display = display.chars().take(64).collect();
    }
    let q = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    SwitchRoleLink::Url(format!(
        "https://{}/switchrole?account={}&roleName={}&displayName={}",
        partition.signin_host(),
        q(account),
        q(&role_name),
        q(&display)
    ))
}

/// The federation endpoint that turns temporary credentials into a console sign-in, in `partition`.
pub fn federation_endpoint(partition: Partition) -> String {
    format!("https://{}/federation", partition.signin_host())
}

/// The console's home page in `partition`: where a sign-in lands unless asked for elsewhere.
pub fn console_home(partition: Partition) -> &'static str {
    match partition {
        Partition::Aws => "https://console.aws.amazon.com/",
        Partition::AwsUsGov => "https://console.amazonaws-us-gov.com/",
        Partition::AwsCn => "https://console.amazonaws.cn/",
    }
}

/// Where a console session signed in through the federation endpoint sends people when it ends (the sign-in URL's
/// `Issuer`, which AWS takes as the URL of the organization's own sign-in page): the partition's console sign-in
/// page, unless a page of one's own is given.
pub fn console_signin_page(partition: Partition) -> String {
    format!("https://{}/console", partition.signin_host())
}

/// The session a federation endpoint takes: temporary credentials as JSON. It holds a secret: never log it.
pub fn federation_session(access_key_id: &str, secret_access_key: &str, session_token: &str) -> String {
    serde_json::json!({"sessionId": access_key_id, "sessionKey": secret_access_key, "sessionToken": session_token})
        .to_string()
}

/// The request for a sign-in token at `endpoint`. `session_duration` (seconds, 900 to 43,200) only for sessions
/// assumed with long-term credentials: AWS refuses it for role chaining.
pub fn signin_token_url(endpoint: &str, session: &str, session_duration: Option<u32>) -> String {
    let q = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    let duration = session_duration.map(|d| format!("&SessionDuration={d}")).unwrap_or_default();
    format!("{endpoint}?Action=getSigninToken{duration}&Session={}", q(session))
}

/// The console sign-in URL for a sign-in token, landing on `destination`; `issuer` is the page people are sent to
/// when the session ends (a URL: [`console_signin_page`] by default). It signs whoever opens it in, for fifteen
/// minutes: hand it only to the person who asked.
pub fn console_login_url(endpoint: &str, signin_token: &str, issuer: &str, destination: &str) -> String {
    let q = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
    format!(
        "{endpoint}?Action=login&Issuer={}&Destination={}&SigninToken={}",
        q(issuer),
        q(destination),
        q(signin_token)
    )
}

/// `name` as a profile name: lowercase letters, digits and single `-`.
pub(crate) fn slug(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(trust_extra: &str, path: &str, name: &str) -> AccessSpec {
        AccessSpec::from_yaml(&format!(
            "name: audit\nrole:\n  name: {name}\n  path: {path}\n  trust:\n    account_ids: [\"111122223333\"]\n{trust_extra}targets:\n  account_ids: [\"222233334444\"]\n"
        ))
        .unwrap()
    }

    #[test]
    fn links_per_partition() {
        let s = spec("", "/crossrole/", "Audit");
        let cases = [
            (
                Partition::Aws,
                "https://signin.aws.amazon.com/switchrole?account=222233334444&roleName=crossrole%2FAudit&displayName=Audit%20%40%20Prod%20%2F%20EU",
            ),
            (
                Partition::AwsUsGov,
                "https://signin.amazonaws-us-gov.com/switchrole?account=222233334444&roleName=crossrole%2FAudit&displayName=Audit%20%40%20Prod%20%2F%20EU",
            ),
            (
                Partition::AwsCn,
                "https://signin.amazonaws.cn/switchrole?account=222233334444&roleName=crossrole%2FAudit&displayName=Audit%20%40%20Prod%20%2F%20EU",
            ),
        ];
        for (p, url) in cases {
            assert_eq!(switch_role_link(&s, p, "222233334444", "Prod / EU"), SwitchRoleLink::Url(url.into()));
        }
        let root = spec("", "/", "Audit");
        assert_eq!(
            switch_role_link(&root, Partition::Aws, "222233334444", "x"),
            SwitchRoleLink::Url("https://signin.aws.amazon.com/switchrole?account=222233334444&roleName=Audit&displayName=Audit%20%40%20x".into())
        );
    }

    #[test]
    fn every_query_value_is_escaped() {
        // Found by the `links` fuzz target: the account went into the query as given.
        let s = spec("", "/", "Audit");
        assert_eq!(
            switch_role_link(&s, Partition::Aws, "1&roleName=Admin", "x"),
            SwitchRoleLink::Url("https://signin.aws.amazon.com/switchrole?account=1%26roleName%3DAdmin&roleName=Audit&displayName=Audit%20%40%20x".into())
        );
    }

    #[test]
    fn console_sign_in_urls_per_partition() {
        let session = federation_session("ASIAEXAMPLE", "secret/key+1", "token=");
        assert_eq!(session, r#"{"sessionId":"ASIAEXAMPLE","sessionKey":"secret/key+1","sessionToken":"token="}"#);
        let cases = [
            (Partition::Aws, "https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/"),
            (
                Partition::AwsUsGov,
                "https://signin.amazonaws-us-gov.com/federation",
                "https://console.amazonaws-us-gov.com/",
            ),
            (Partition::AwsCn, "https://signin.amazonaws.cn/federation", "https://console.amazonaws.cn/"),
        ];
        for (partition, endpoint, home) in cases {
            assert_eq!((federation_endpoint(partition).as_str(), console_home(partition)), (endpoint, home));
            assert_eq!(console_signin_page(partition), endpoint.replace("/federation", "/console"));
            assert_eq!(
                signin_token_url(endpoint, &session, Some(43200)),
                format!(
                    "{endpoint}?Action=getSigninToken&SessionDuration=43200&Session=%7B%22sessionId%22%3A%22ASIAEXAMPLE%22%2C%22sessionKey%22%3A%22secret%2Fkey%2B1%22%2C%22sessionToken%22%3A%22token%3D%22%7D"
                )
            );
            assert!(!signin_token_url(endpoint, &session, None).contains("SessionDuration"));
            assert_eq!(
                console_login_url(endpoint, "tok+en/=", &console_signin_page(partition), &format!("{home}iam/home")),
                format!(
                    "{endpoint}?Action=login&Issuer={}&Destination={}iam%2Fhome&SigninToken=tok%2Ben%2F%3D",
                    console_signin_page(partition).replace(':', "%3A").replace('/', "%2F"),
                    home.replace(':', "%3A").replace('/', "%2F")
                )
            );
        }
    }

    #[test]
    fn unusable_links_say_why() {
        let with_external_id = spec("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n", "/", "Audit");
        assert!(
            matches!(switch_role_link(&with_external_id, Partition::Aws, "222233334444", "x"), SwitchRoleLink::Unusable(r) if r.contains("ExternalId"))
        );
        let long = spec("", &format!("/{}/", "p".repeat(40)), &"n".repeat(30));
        assert!(
            matches!(switch_role_link(&long, Partition::Aws, "222233334444", "x"), SwitchRoleLink::Unusable(r) if r.contains("at most 64"))
        );
    }
}
