//! IAM's naming rules, account ids, ARNs and partitions: small validated pieces the spec is made of.

use std::fmt;

/// An AWS partition; it decides ARNs and console hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Partition {
    /// `aws`: the commercial regions.
    #[default]
    Aws,
    /// `aws-us-gov`: AWS GovCloud (US).
    AwsUsGov,
    /// `aws-cn`: the China regions.
    AwsCn,
}

impl Partition {
    /// The partition's name as it appears in ARNs.
    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsCn => "aws-cn",
        }
    }

    /// Parses an ARN partition.
    pub fn parse(s: &str) -> Option<Partition> {
        match s {
            "aws" => Some(Partition::Aws),
            "aws-us-gov" => Some(Partition::AwsUsGov),
            "aws-cn" => Some(Partition::AwsCn),
            _ => None,
        }
    }

    /// The console sign-in host that serves Switch Role.
    pub fn signin_host(self) -> &'static str {
        match self {
            Partition::Aws => "signin.aws.amazon.com",
            Partition::AwsUsGov => "signin.amazonaws-us-gov.com",
            Partition::AwsCn => "signin.amazonaws.cn",
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[\w+=,.@-]`: the characters IAM allows in role, user, group and policy names.
pub(crate) fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

/// Checks an IAM name (role, user, group, policy) of at most `max` characters; `Err` is the rule broken.
pub(crate) fn check_iam_name(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("required".into());
    }
    if name.chars().count() > max {
        return Err(format!("at most {max} characters (IAM), got {}", name.chars().count()));
    }
    if let Some(c) = name.chars().find(|c| !is_iam_name_char(*c)) {
        return Err(format!("only letters, digits and +=,.@_- are allowed (IAM), found {c:?}"));
    }
    Ok(())
}

/// Checks an IAM path: `/`, or `/` segments `/`, at most 512 characters of printable ASCII.
pub(crate) fn check_iam_path(path: &str) -> Result<(), String> {
    if path.len() > 512 {
        return Err(format!("at most 512 characters (IAM), got {}", path.len()));
    }
    if !path.starts_with('/') || !path.ends_with('/') {
        return Err("must be `/` or start and end with `/`, like `/team/` (IAM)".into());
    }
    if path.contains("//") {
        return Err("must not contain empty segments (`//`)".into());
    }
    if let Some(c) = path.chars().find(|c| !('\u{21}'..='\u{7e}').contains(c)) {
        return Err(format!("only printable ASCII without spaces is allowed (IAM), found {c:?}"));
    }
    Ok(())
}

/// Checks a 12-digit AWS account id.
pub fn check_account_id(id: &str) -> Result<(), String> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("must be a 12-digit AWS account id, got {id:?}"))
    }
}

/// Checks a role's unique id as IAM gives it (`RoleId`): `AROA` and letters or digits, 16 to 128 characters in all.
pub fn check_role_id(id: &str) -> Result<(), String> {
    let shape = (16..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if shape && id.starts_with("AROA") {
        Ok(())
    } else {
        Err(format!(
            "must be a role's unique id as IAM's GetRole gives it (RoleId: AROA and 12 to 124 capital letters or \
             digits), got {id:?}"
        ))
    }
}

/// Whether `id` is a 12-digit account id.
pub fn is_account_id(id: &str) -> bool {
    check_account_id(id).is_ok()
}

/// Checks an ExternalId: 2 to 1224 characters of `[\w+=,.@:/-]`.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let n = id.chars().count();
    if !(2..=1224).contains(&n) {
        return Err(format!("must be 2 to 1224 characters (STS), got {n}"));
    }
    if let Some(c) = id.chars().find(|c| !(is_iam_name_char(*c) || matches!(c, ':' | '/'))) {
        return Err(format!("only letters, digits and +=,.@:/_- are allowed (STS), found {c:?}"));
    }
    Ok(())
}

/// A parsed ARN: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    /// Partition, as written.
    pub partition: &'a str,
    /// Service, e.g. `iam`.
    pub service: &'a str,
    /// Region; empty for IAM.
    pub region: &'a str,
    /// Account id; empty or `aws` for AWS managed policies.
    pub account: &'a str,
    /// Resource, e.g. `role/path/Name`.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits an ARN into its six parts, or `None` when it is not an ARN.
    pub fn parse(s: &'a str) -> Option<Arn<'a>> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let arn = Arn {
            partition: parts.next()?,
            service: parts.next()?,
            region: parts.next()?,
            account: parts.next()?,
            resource: parts.next()?,
        };
        if arn.partition.is_empty() || arn.service.is_empty() || arn.resource.is_empty() {
            return None;
        }
        Some(arn)
    }
}

/// Checks an IAM managed policy ARN: `arn:<partition>:iam::(aws|<account>):policy/[path/]name`.
/// The variables a per-account value may use: the target account's partition, id and name. Policy ARNs take only
/// the first two ([`ARN_VARIABLES`]): an account's name may hold characters an ARN cannot.
pub const TEMPLATE_VARIABLES: [&str; 3] = ["partition", "account_id", "account_name"];

/// The variables a policy ARN may use.
pub const ARN_VARIABLES: [&str; 2] = ["partition", "account_id"];

/// The account a per-account value is resolved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// Its partition.
    pub partition: Partition,
    /// Its id.
    pub account_id: &'a str,
    /// Its name in the organization.
    pub account_name: &'a str,
}

impl Place<'static> {
    /// A stand-in account, to check a template's result before any real account is known.
    pub const SAMPLE: Place<'static> =
        Place { partition: Partition::Aws, account_id: "123456789012", account_name: "Sample account" };
}

/// `text` with `${partition}`, `${account_id}` and `${account_name}` replaced for `place`.
pub fn expand(text: &str, place: Place<'_>) -> String {
    if !text.contains("${") {
        return text.to_string();
    }
    text.replace("${partition}", place.partition.as_str())
        .replace("${account_id}", place.account_id)
        .replace("${account_name}", place.account_name)
}

/// `value` resolved for `place` as a tag value: characters IAM refuses in tags (an account's name may hold
/// `(`, `,` or `&`) become `_`, and the value is cut at IAM's 256 characters.
pub fn expand_tag_value(value: &str, place: Place<'_>) -> String {
    if !value.contains("${") {
        return value.to_string();
    }
    expand(value, place).chars().map(|c| if is_tag_char(c) { c } else { '_' }).take(256).collect()
}

/// The fields of a spec in which `${…}` stands for each target account's values (resolved when the plan is made).
/// Everywhere else crossrole expands nothing, so a `${…}` there is refused rather than written to IAM as it is.
pub const TEMPLATED_FIELDS: [&str; 4] =
    ["role.description", "role.managed_policy_arns", "role.permissions_boundary_arn", "role.tags (values)"];

/// The variables crossrole expands somewhere (per-account values, and `${spec}` in profile names): in a policy
/// document, where IAM's own variables are at home, these are the ones that would be a mistake.
const CROSSROLE_VARIABLES: [&str; 4] = ["partition", "account_id", "account_name", "spec"];

/// [`TEMPLATED_FIELDS`] as a rule says them.
fn templated_fields() -> String {
    let fields: Vec<String> = TEMPLATED_FIELDS
        .iter()
        .map(|f| match f.strip_suffix(" (values)") {
            Some(map) => format!("{map} values"),
            None => f.to_string(),
        })
        .collect();
    match fields.split_last() {
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Each `${…}` in `text` as written (an unclosed one up to the end, cut at 40 characters), with what is inside.
fn variables(text: &str) -> impl Iterator<Item = (String, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let from = &rest[rest.find("${")?..];
        let inside = &from[2..];
        match inside.find('}') {
            Some(end) => {
                rest = &inside[end + 1..];
                Some((from[..end + 3].to_string(), &inside[..end]))
            }
            None => {
                rest = "";
                Some((from.chars().take(40).collect(), inside))
            }
        }
    })
}

/// Refuses any `${…}` in a field crossrole does not template; `Err` is the rule, naming the first one.
pub(crate) fn check_not_templated(text: &str) -> Result<(), String> {
    match variables(text).next() {
        Some((variable, _)) => {
            Err(format!("{variable} is not expanded here; only {} are templated", templated_fields()))
        }
        None => Ok(()),
    }
}

/// Refuses crossrole's own variables in a policy document's text (a key or a value), which crossrole does not
/// expand; IAM's policy variables (`${aws:username}`, `${aws:PrincipalTag/team}`, `${saml:sub}`, `${*}`…) are
/// IAM's to resolve and pass.
pub(crate) fn check_policy_text(text: &str) -> Result<(), String> {
    match variables(text).find(|(_, name)| CROSSROLE_VARIABLES.contains(&name.trim())) {
        Some((variable, _)) => Err(format!(
            "{variable} is not expanded in policy documents (IAM's own policy variables, like ${{aws:username}}, are \
             left to IAM); only {} are templated",
            templated_fields()
        )),
        None => Ok(()),
    }
}

/// Checks that every `${…}` in `text` is a variable crossrole knows.
pub(crate) fn check_template(text: &str) -> Result<(), String> {
    check_template_of(text, &TEMPLATE_VARIABLES)
}

/// Checks that every `${…}` in `text` is one of `known`.
fn check_template_of(text: &str, known: &[&str]) -> Result<(), String> {
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("has an unclosed `${{` at {:?}", &rest[start..]));
        };
        let name = &rest[start + 2..start + len];
        if !known.contains(&name) {
            let known = known.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
            return Err(if TEMPLATE_VARIABLES.contains(&name) {
                format!(
                    "cannot use ${{{name}}} here (an account's name may hold characters it cannot); known here: {known}"
                )
            } else {
                format!("uses unknown variable ${{{name}}}; known: {known}")
            });
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

/// Checks a managed policy ARN, which may name the target account (`${account_id}`) and partition
/// (`${partition}`), resolved per account.
pub(crate) fn check_policy_arn(arn: &str) -> Result<(), String> {
    if arn.contains("${") {
        check_template_of(arn, &ARN_VARIABLES)?;
        return check_policy_arn(&expand(arn, Place::SAMPLE));
    }
    let rule = "must be an IAM policy ARN like arn:aws:iam::aws:policy/ReadOnlyAccess or \
                arn:aws:iam::111122223333:policy/path/Name (${account_id} and ${partition} stand for the target \
                account's)";
    let Some(parsed) = Arn::parse(arn) else { return Err(rule.into()) };
    if Partition::parse(parsed.partition).is_none() || parsed.service != "iam" || !parsed.region.is_empty() {
        return Err(rule.into());
    }
    if parsed.account != "aws" && check_account_id(parsed.account).is_err() {
        return Err(rule.into());
    }
    let Some(rest) = parsed.resource.strip_prefix("policy/") else { return Err(rule.into()) };
    let (path, name) = match rest.rfind('/') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    };
    if !path.is_empty() && check_iam_path(&format!("/{path}")).is_err() {
        return Err(rule.into());
    }
    check_iam_name(name, 128).map_err(|e| format!("policy name {e}"))
}

/// Checks a trusted principal ARN: an IAM user or role (or the account root), or `*`.
///
/// Wildcards (`*`, `?`) are allowed in the name part only, because the trust policy matches them with `ArnLike`.
pub(crate) fn check_principal_arn(arn: &str) -> Result<(), String> {
    if arn == "*" {
        return Ok(());
    }
    let rule = "must be an IAM principal ARN like arn:aws:iam::111122223333:role/Name, \
                arn:aws:iam::111122223333:user/Name or arn:aws:iam::111122223333:root, or `*`";
    let Some(parsed) = Arn::parse(arn) else { return Err(rule.into()) };
    if Partition::parse(parsed.partition).is_none() || parsed.service != "iam" || !parsed.region.is_empty() {
        return Err(rule.into());
    }
    check_account_id(parsed.account)?;
    if parsed.resource == "root" {
        return Ok(());
    }
    let rest = parsed
        .resource
        .strip_prefix("role/")
        .or_else(|| parsed.resource.strip_prefix("user/"))
        .ok_or_else(|| rule.to_string())?;
    let name = rest.rsplit('/').next().unwrap_or(rest);
    let name_ok = !name.is_empty() && name.chars().all(|c| is_iam_name_char(c) || c == '*' || c == '?');
    if name_ok { Ok(()) } else { Err(rule.into()) }
}

/// Checks a tag key: 1 to 128 characters, no `aws:` prefix.
pub(crate) fn check_tag_key(key: &str) -> Result<(), String> {
    let n = key.chars().count();
    if n == 0 || n > 128 {
        return Err(format!("tag keys are 1 to 128 characters (IAM), got {n}"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err("tag keys must not start with `aws:` (reserved by AWS)".into());
    }
    check_tag_chars(key)
}

/// Checks a tag value: at most 256 characters.
pub(crate) fn check_tag_value(value: &str) -> Result<(), String> {
    let n = value.chars().count();
    if n > 256 {
        return Err(format!("tag values are at most 256 characters (IAM), got {n}"));
    }
    check_tag_chars(value)
}

/// IAM's tag pattern, `[\p{L}\p{Z}\p{N}_.:/=+\-@]`: letters, separators (a space, not a tab or a newline, which
/// are control characters) and numbers by their Unicode category — not `char::is_alphanumeric`, which takes in
/// the marks that are part of letters in some scripts, nor `char::is_whitespace`, which takes in control
/// characters.
fn is_tag_char(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Separator | GeneralCategoryGroup::Number
    ) || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

fn check_tag_chars(s: &str) -> Result<(), String> {
    match s.chars().find(|c| !is_tag_char(*c)) {
        Some(c) => Err(format!("only letters, digits, spaces and _.:/=+-@ are allowed in tags (IAM), found {c:?}")),
        None => Ok(()),
    }
}

/// Checks a spec or binding name: 1 to 64 characters of `[a-z0-9-]`, starting with a letter.
pub(crate) fn check_spec_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("required".into());
    }
    if name.len() > 64 {
        return Err(format!("at most 64 characters, got {}", name.len()));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(format!("only lowercase letters, digits and `-` are allowed, found {c:?}"));
    }
    Ok(())
}

/// The ARN of role `path``name` in `account`.
pub fn role_arn(partition: Partition, account: &str, path: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role{path}{name}")
}

/// The ARN of customer-managed policy `path``name` in `account`.
pub fn policy_arn(partition: Partition, account: &str, path: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy{path}{name}")
}

/// The ARN of an account's root principal.
pub fn account_root_arn(partition: Partition, account: &str) -> String {
    format!("arn:{partition}:iam::{account}:root")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&str) -> Result<(), String>, cases: &[(&str, bool)]) {
        for (input, ok) in cases {
            assert_eq!(f(input).is_ok(), *ok, "{input:?}: {:?}", f(input));
        }
    }

    #[test]
    fn iam_names() {
        check(
            |s| check_iam_name(s, 64),
            &[
                ("Audit", true),
                ("a+b=c,d.e@f_g-h", true),
                ("", false),
                ("has space", false),
                ("slash/no", false),
                (&"x".repeat(64), true),
                (&"x".repeat(65), false),
                ("ünicode", false),
            ],
        );
    }

    #[test]
    fn iam_paths() {
        check(
            check_iam_path,
            &[
                ("/", true),
                ("/crossrole/", true),
                ("/a/b/c/", true),
                ("crossrole/", false),
                ("/crossrole", false),
                ("//", false),
                ("/a b/", false),
                (&format!("/{}/", "p".repeat(510)), true),
                (&format!("/{}/", "p".repeat(511)), false),
            ],
        );
    }

    #[test]
    fn account_ids() {
        check(
            check_account_id,
            &[("123456789012", true), ("12345678901", false), ("1234567890123", false), ("12345678901a", false)],
        );
    }

    #[test]
    fn external_ids() {
        check(
            check_external_id,
            &[
                ("ab", true),
                ("a", false),
                ("urn:acme:tenant/42_x+y=z,w.v@u-", true),
                ("has space", false),
                ("semi;colon", false),
                (&"e".repeat(1224), true),
                (&"e".repeat(1225), false),
            ],
        );
    }

    #[test]
    fn policy_arns() {
        check(
            check_policy_arn,
            &[
                ("arn:aws:iam::aws:policy/ReadOnlyAccess", true),
                ("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess", true),
                ("arn:aws-us-gov:iam::123456789012:policy/team/Boundary", true),
                ("arn:aws-cn:iam::aws:policy/SecurityAudit", true),
                ("arn:aws:iam::aws:role/ReadOnlyAccess", false),
                ("arn:aws:s3:::bucket", false),
                ("arn:aws:iam::12345:policy/X", false),
                ("arn:aws:iam:us-east-1:aws:policy/X", false),
                ("arn:aws:iam::aws:policy/", false),
                ("arn:other:iam::aws:policy/X", false),
                ("ReadOnlyAccess", false),
                ("arn:${partition}:iam::${account_id}:policy/crossrole-ceiling/Ceiling", true),
                ("arn:aws:iam::${account_id}:policy/team/${account_id}-boundary", true),
                ("arn:aws:iam::${account}:policy/X", false),
                ("arn:aws:iam::${account_id:policy/X", false),
            ],
        );
        assert_eq!(
            check_policy_arn("arn:aws:iam::${account}:policy/X").unwrap_err(),
            "uses unknown variable ${account}; known: ${partition}, ${account_id}"
        );
        assert_eq!(
            expand(
                "arn:${partition}:iam::${account_id}:policy/B",
                Place { partition: Partition::AwsCn, account_id: "111122223333", account_name: "x" }
            ),
            "arn:aws-cn:iam::111122223333:policy/B"
        );
        assert_eq!(
            check_policy_arn("arn:aws:iam::${account_id}:policy/${account_name}").unwrap_err(),
            "cannot use ${account_name} here (an account's name may hold characters it cannot); known here: \
             ${partition}, ${account_id}"
        );
    }

    #[test]
    fn tag_values_resolved_per_account_keep_to_what_iam_accepts() {
        let place = Place { partition: Partition::Aws, account_id: "111122223333", account_name: "Prod (EU), #1" };
        assert_eq!(expand_tag_value("${account_name}@${account_id}", place), "Prod _EU__ _1@111122223333");
        assert_eq!(expand_tag_value("plain (kept as written)", place), "plain (kept as written)");
        let long = Place { account_name: &"n".repeat(300), ..place };
        assert_eq!(expand_tag_value("${account_name}", long).chars().count(), 256);
        // IAM's pattern is by Unicode category: a tab, a newline or a carriage return is a control character, not
        // a separator (\p{Z}); a vowel sign is a mark, not a letter (\p{L}). A no-break space and letters and
        // digits of any script are kept.
        let cases = [
            ("Prod\tEU", "Prod_EU"),
            ("Prod\nEU\r\n", "Prod_EU__"),
            ("Prod\u{85}EU\u{2028}", "Prod_EU\u{2028}"),
            ("Entwicklung\u{a0}Zürich ٣", "Entwicklung\u{a0}Zürich ٣"),
            ("\u{915}\u{93f}", "\u{915}_"),
            ("日本 ½", "日本 ½"),
        ];
        for (name, expected) in cases {
            let got = expand_tag_value("${account_name}", Place { account_name: name, ..place });
            assert_eq!(got, expected, "{name:?}");
            assert!(check_tag_value(&got).is_ok(), "{got:?}");
        }
    }

    #[test]
    fn principal_arns() {
        check(
            check_principal_arn,
            &[
                ("*", true),
                ("arn:aws:iam::111122223333:role/Auditor", true),
                ("arn:aws:iam::111122223333:role/team/Auditor", true),
                ("arn:aws:iam::111122223333:user/alice", true),
                ("arn:aws:iam::111122223333:root", true),
                ("arn:aws:iam::111122223333:role/ops-*", true),
                ("arn:aws:iam::*:role/Auditor", false),
                ("arn:aws:sts::111122223333:assumed-role/A/s", false),
                ("arn:aws:iam::111122223333:group/admins", false),
                ("111122223333", false),
            ],
        );
    }

    #[test]
    fn tags() {
        check(
            check_tag_key,
            &[
                ("team", true),
                ("aws:foo", false),
                ("AWS:foo", false),
                ("", false),
                (&"k".repeat(129), false),
                ("cost-center", true),
                ("a;b", false),
            ],
        );
        check(
            check_tag_value,
            &[
                ("", true),
                ("x y", true),
                (&"v".repeat(256), true),
                (&"v".repeat(257), false),
                ("x\ty", false),
                ("x\ny", false),
                ("x\u{a0}y", true),
                ("ü1٣_.:/=+-@", true),
                ("x\u{93f}", false),
            ],
        );
        check(check_tag_key, &[("team\n", false), ("cost center", true)]);
    }

    #[test]
    fn spec_names() {
        check(
            check_spec_name,
            &[
                ("security-audit", true),
                ("a1", true),
                ("", false),
                ("1abc", false),
                ("Upper", false),
                ("under_score", false),
                (&"a".repeat(65), false),
            ],
        );
    }

    #[test]
    fn arns_are_built_per_partition() {
        assert_eq!(role_arn(Partition::AwsCn, "123456789012", "/x/", "R"), "arn:aws-cn:iam::123456789012:role/x/R");
        assert_eq!(account_root_arn(Partition::AwsUsGov, "123456789012"), "arn:aws-us-gov:iam::123456789012:root");
    }
}
