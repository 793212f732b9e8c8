//! Access exports: a spec's role in each account as the tools people switch roles with read it.
//!
//! - [`Format::AwsConfig`]: `~/.aws/config` profile sections (`role_arn`, `source_profile`, `external_id`,
//!   `mfa_serial`, `duration_seconds`, `role_session_name`), which the AWS CLI, the SDKs and granted read;
//! - [`Format::Aesr`]: the configuration of AWS Extend Switch Roles, the browser extension that lists Switch Role
//!   targets in the console's menu (`aws_account_id`, `role_name`, `color`); a role that requires an ExternalId is
//!   left out with a comment, since the console cannot send one;
//! - [`Format::Json`]: one object per account, for programs.
//!
//! Profiles are named by a template (`${spec}-${account_name}` by default; also `${account_id}`), made safe for
//! INI section names (lowercase letters, digits, `-`) and unique: a name taken already gets the account id, then a
//! number. The role's ExternalId is written only when the caller may see it; otherwise a comment says it is needed.

use std::{collections::BTreeSet, fmt::Write};

use serde_json::json;

use crate::{
    Partition,
    links::{self, SwitchRoleLink},
    names,
    spec::AccessSpec,
};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `~/.aws/config` profiles.
    AwsConfig,
    /// AWS Extend Switch Roles' configuration.
    Aesr,
    /// JSON, one object per account.
    Json,
}

/// The default profile name template.
pub const DEFAULT_NAME_TEMPLATE: &str = "${spec}-${account_name}";

/// The variables a profile name template may use.
pub const NAME_VARIABLES: [&str; 3] = ["spec", "account_name", "account_id"];

/// What goes into every profile.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The profile holding the trusted side's credentials (`source_profile`).
    pub source_profile: &'a str,
    /// The MFA device for roles that require MFA.
    pub mfa_serial: Option<&'a str>,
    /// Write the ExternalId (only for callers allowed to see it).
    pub reveal_external_id: bool,
    /// How profiles are named; [`DEFAULT_NAME_TEMPLATE`] when `None`.
    pub name_template: Option<&'a str>,
}

/// Checks a profile name template: every `${…}` is one of [`NAME_VARIABLES`], and it names something.
pub fn check_name_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("has an unclosed `${{` at {:?}", &rest[start..]));
        };
        let name = &rest[start + 2..start + len];
        if !NAME_VARIABLES.contains(&name) {
            let known = NAME_VARIABLES.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
            return Err(format!("uses unknown variable ${{{name}}}; known: {known}"));
        }
        rest = &rest[start + len + 1..];
    }
    if links::slug(&template.replace("${", "").replace('}', "")).is_empty() {
        return Err("must name something: letters or digits, or a variable".into());
    }
    Ok(())
}

/// One account's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Profile {
    name: String,
    account_id: String,
    account_name: String,
    role_arn: String,
}

/// Names each account's profile: the template, made safe and unique.
fn profiles(spec: &AccessSpec, partition: Partition, accounts: &[(String, String)], template: &str) -> Vec<Profile> {
    let mut used = BTreeSet::new();
    accounts
        .iter()
        .map(|(id, account_name)| {
            let named = |account_name: &str| {
                links::slug(
                    &template
                        .replace("${spec}", &spec.name)
                        .replace("${account_name}", account_name)
                        .replace("${account_id}", id),
                )
            };
            // Without a usable account name, the id stands in; a name taken already gets the id too.
            let mut name = named(account_name);
            if name.is_empty() || (template.contains("${account_name}") && links::slug(account_name).is_empty()) {
                name = links::slug(&format!("{}-{id}", named("")));
            } else if used.contains(&name) {
                name = format!("{name}-{id}");
            }
            let base = name.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            Profile {
                name,
                account_id: id.clone(),
                account_name: account_name.clone(),
                role_arn: names::role_arn(partition, id, &spec.role.path, &spec.role.name),
            }
        })
        .collect()
}

/// `spec`'s role in each `(account id, account name)`, in `format`.
pub fn export(
    spec: &AccessSpec,
    partition: Partition,
    accounts: &[(String, String)],
    format: Format,
    options: Options<'_>,
) -> String {
    let profiles = profiles(spec, partition, accounts, options.name_template.unwrap_or(DEFAULT_NAME_TEMPLATE));
    match format {
        Format::AwsConfig => aws_config(spec, partition, &profiles, options),
        Format::Aesr => aesr(spec, partition, &profiles),
        Format::Json => as_json(spec, partition, &profiles, options),
    }
}

fn aws_config(spec: &AccessSpec, partition: Partition, profiles: &[Profile], options: Options<'_>) -> String {
    let mut out = String::new();
    for p in profiles {
        let _ = writeln!(out, "[profile {}]", p.name);
        let _ = writeln!(out, "role_arn = {}", p.role_arn);
        let _ = writeln!(out, "source_profile = {}", options.source_profile);
        if let Some(e) = &spec.role.trust.external_id {
            if options.reveal_external_id {
                let _ = writeln!(out, "external_id = {}", e.expose());
            } else {
                let _ = writeln!(
                    out,
                    "# the role requires an ExternalId: add external_id = <the ExternalId you were given>"
                );
            }
        }
        if spec.role.trust.require_mfa {
            match options.mfa_serial {
                Some(m) => {
                    let _ = writeln!(out, "mfa_serial = {m}");
                }
                None => {
                    let _ = writeln!(
                        out,
                        "# the role requires MFA: add mfa_serial = arn:{partition}:iam::<account>:mfa/<device>"
                    );
                }
            }
        }
        let _ = writeln!(out, "duration_seconds = {}", spec.role.max_session_duration.as_secs());
        let _ = writeln!(out, "role_session_name = {}", spec.name);
        out.push('\n');
    }
    out
}

/// A colour per account, stable across exports: AESR shows it in the console's header after the switch.
fn colour(account_id: &str) -> String {
    const PALETTE: [&str; 8] = ["1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "17becf"];
    let sum: usize = account_id.bytes().map(usize::from).sum();
    PALETTE[sum % PALETTE.len()].to_string()
}

fn aesr(spec: &AccessSpec, partition: Partition, profiles: &[Profile]) -> String {
    let mut out = String::new();
    for p in profiles {
        match links::switch_role_link(spec, partition, &p.account_id, &p.account_name) {
            SwitchRoleLink::Unusable(why) => {
                let _ = writeln!(out, "; {}: left out: {why}\n", p.name);
            }
            SwitchRoleLink::Url(_) => {
                let _ = writeln!(out, "[{}]", p.name);
                let _ = writeln!(out, "aws_account_id = {}", p.account_id);
                let _ = writeln!(out, "role_name = {}{}", spec.role.path.trim_start_matches('/'), spec.role.name);
                let _ = writeln!(out, "color = {}\n", colour(&p.account_id));
            }
        }
    }
    out
}

fn as_json(spec: &AccessSpec, partition: Partition, profiles: &[Profile], options: Options<'_>) -> String {
    let items: Vec<serde_json::Value> = profiles
        .iter()
        .map(|p| {
            let link = match links::switch_role_link(spec, partition, &p.account_id, &p.account_name) {
                SwitchRoleLink::Url(url) => json!({"switch_role_url": url}),
                SwitchRoleLink::Unusable(why) => json!({"switch_role_unusable": why}),
            };
            let mut item = json!({
                "profile": p.name,
                "account_id": p.account_id,
                "account_name": p.account_name,
                "role_arn": p.role_arn,
                "source_profile": options.source_profile,
                "external_id_required": spec.role.trust.external_id.is_some(),
                "mfa_required": spec.role.trust.require_mfa,
                "duration_seconds": spec.role.max_session_duration.as_secs(),
                "role_session_name": spec.name,
            });
            if let (Some(obj), Some(extra)) = (item.as_object_mut(), link.as_object()) {
                obj.extend(extra.clone());
                if let (Some(e), true) = (&spec.role.trust.external_id, options.reveal_external_id) {
                    obj.insert("external_id".into(), json!(e.expose()));
                }
                if let (Some(m), true) = (options.mfa_serial, spec.role.trust.require_mfa) {
                    obj.insert("mfa_serial".into(), json!(m));
                }
            }
            item
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(trust_extra: &str) -> AccessSpec {
        AccessSpec::from_yaml(&format!(
            "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n    account_ids: [\"111122223333\"]\n{trust_extra}targets:\n  account_ids: [\"222233334444\"]\n"
        ))
        .unwrap()
    }

    fn accounts() -> Vec<(String, String)> {
        vec![
            ("222233334444".to_string(), "Prod EU".to_string()),
            ("333344445555".to_string(), "prod-eu".to_string()),
            ("444455556666".to_string(), String::new()),
        ]
    }

    const OPTIONS: Options<'static> =
        Options { source_profile: "security", mfa_serial: None, reveal_external_id: false, name_template: None };

    #[test]
    fn aws_config_profiles_with_the_external_id_only_when_revealed() {
        let s = spec("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n    require_mfa: true\n");
        let mfa =
            Options { mfa_serial: Some("arn:aws:iam::111122223333:mfa/alice"), reveal_external_id: true, ..OPTIONS };
        expect_test::expect![[r#"
            [profile audit-prod-eu]
            role_arn = arn:aws:iam::222233334444:role/crossrole/Audit
            source_profile = security
            external_id = Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
            mfa_serial = arn:aws:iam::111122223333:mfa/alice
            duration_seconds = 3600
            role_session_name = audit

            [profile audit-prod-eu-333344445555]
            role_arn = arn:aws:iam::333344445555:role/crossrole/Audit
            source_profile = security
            external_id = Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
            mfa_serial = arn:aws:iam::111122223333:mfa/alice
            duration_seconds = 3600
            role_session_name = audit

            [profile audit-444455556666]
            role_arn = arn:aws:iam::444455556666:role/crossrole/Audit
            source_profile = security
            external_id = Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
            mfa_serial = arn:aws:iam::111122223333:mfa/alice
            duration_seconds = 3600
            role_session_name = audit

        "#]]
        .assert_eq(&export(&s, Partition::Aws, &accounts(), Format::AwsConfig, mfa));
        let withheld = export(&s, Partition::Aws, &accounts(), Format::AwsConfig, OPTIONS);
        assert!(!withheld.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "{withheld}");
        assert!(withheld.contains("# the role requires an ExternalId"), "{withheld}");
        let json = export(&s, Partition::Aws, &accounts(), Format::Json, OPTIONS);
        assert!(!json.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "{json}");
    }

    #[test]
    fn aesr_lists_console_targets_and_leaves_out_what_the_console_cannot_assume() {
        expect_test::expect![[r#"
            [audit-prod-eu]
            aws_account_id = 222233334444
            role_name = crossrole/Audit
            color = 9467bd

            [audit-prod-eu-333344445555]
            aws_account_id = 333344445555
            role_name = crossrole/Audit
            color = 1f77b4

            [audit-444455556666]
            aws_account_id = 444455556666
            role_name = crossrole/Audit
            color = 9467bd

        "#]]
        .assert_eq(&export(&spec(""), Partition::Aws, &accounts(), Format::Aesr, OPTIONS));
        let with_external_id = export(
            &spec("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n"),
            Partition::Aws,
            &accounts()[..1],
            Format::Aesr,
            OPTIONS,
        );
        assert!(
            with_external_id.starts_with("; audit-prod-eu: left out: the role requires an ExternalId"),
            "{with_external_id}"
        );
    }

    #[test]
    fn json_for_programs() {
        let text = export(&spec(""), Partition::AwsUsGov, &accounts()[..1], Format::Json, OPTIONS);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[0]["profile"], "audit-prod-eu");
        assert_eq!(v[0]["role_arn"], "arn:aws-us-gov:iam::222233334444:role/crossrole/Audit");
        assert_eq!(v[0]["external_id_required"], false);
        assert!(
            v[0]["switch_role_url"].as_str().unwrap().starts_with("https://signin.amazonaws-us-gov.com/switchrole?")
        );
    }

    #[test]
    fn profile_names_follow_the_template_and_stay_unique() {
        let names = |template: &str| {
            let text = export(
                &spec(""),
                Partition::Aws,
                &accounts(),
                Format::AwsConfig,
                Options { name_template: Some(template), ..OPTIONS },
            );
            text.lines()
                .filter_map(|l| l.strip_prefix("[profile ").map(|n| n.trim_end_matches(']').to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names("${account_id}"), ["222233334444", "333344445555", "444455556666"]);
        assert_eq!(
            names("Team ${account_name} / ${spec}"),
            ["team-prod-eu-audit", "team-prod-eu-audit-333344445555", "team-audit-444455556666"]
        );
        assert_eq!(names("static"), ["static", "static-333344445555", "static-444455556666"]);
        // Found by the `links` fuzz target: a name that is another account's fallback, or an account listed twice,
        // gave two profiles one name.
        let clash = [
            ("222233334444".to_string(), "333344445555".to_string()),
            ("333344445555".to_string(), String::new()),
            ("333344445555".to_string(), String::new()),
        ];
        let text = export(&spec(""), Partition::Aws, &clash, Format::AwsConfig, OPTIONS);
        let names: Vec<&str> = text.lines().filter(|l| l.starts_with("[profile")).collect();
        assert_eq!(
            names,
            ["[profile audit-333344445555]", "[profile audit-333344445555-2]", "[profile audit-333344445555-3]"]
        );
        assert_eq!(
            check_name_template("${account}").unwrap_err(),
            "uses unknown variable ${account}; known: ${spec}, ${account_name}, ${account_id}"
        );
        assert!(check_name_template("--").is_err());
        assert!(check_name_template("${account_id}").is_ok());
    }
}
