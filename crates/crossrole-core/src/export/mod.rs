//! Access exports: a spec's role in each account as the tools people switch roles with read it.
//!
//! - [`Format::AwsConfig`]: `~/.aws/config` profile sections (`role_arn`, `source_profile`, `external_id`,
//!   `mfa_serial`, `duration_seconds`, `role_session_name`), which the AWS CLI, the SDKs and granted read
//!   ([`granted_registry`] names such a file for a granted profile registry);
//! - [`Format::Aesr`]: the configuration of AWS Extend Switch Roles, the browser extension that lists Switch Role
//!   targets in the console's menu (`aws_account_id`, `role_name`, `color`); a role that requires an ExternalId is
//!   left out with a comment, since the console cannot send one;
//! - [`Format::Json`]: one object per account, for programs.
//!
//! Only accounts where crossrole applied the spec (so the role there is crossrole's) are exported, unless
//! [`Options::include_unapplied`] asks for the others; every account left out comes back with the reason
//! ([`LeftOut`]), and [`usable`] makes the same choice for Switch Role links. Profiles are named by a template
//! (`${spec}-${account_name}` by default; also `${account_id}`), and a name never moves to another account
//! ([`naming`]'s rule). The session lasts [`CHAINED_SESSION`] unless asked for longer: that is what AWS allows when
//! the source profile is itself a role or an SSO session (role chaining). The role's ExternalId is written only
//! when the caller may see it; otherwise a comment says it is needed.

mod formats;
mod naming;

use std::time::Duration;

pub use formats::granted_registry;
pub use naming::{DEFAULT_NAME_TEMPLATE, NAME_VARIABLES, check_name_template};

use crate::{Partition, names, spec::AccessSpec};

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

/// The session a profile asks for by default: one hour, the most AWS grants under role chaining (a source profile
/// that is itself a role or an SSO session), and the least any role allows.
pub const CHAINED_SESSION: Duration = Duration::from_secs(3600);

/// A target account, as exports and links need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// 12-digit id.
    pub id: String,
    /// Its name in the organization.
    pub name: String,
    /// When it joined the organization (Unix seconds), if known: profile names stay with the first to join.
    pub joined_at: Option<u64>,
    /// Whether crossrole applied the spec here (the journal's placement): the role there is crossrole's.
    pub applied: bool,
}

/// An account left out of an export or of the links, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// Its id.
    pub account_id: String,
    /// Its name.
    pub account_name: String,
    /// Why, for people.
    pub reason: String,
}

/// What goes into every profile.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The profile holding the trusted side's credentials (`source_profile`); needed by [`Format::AwsConfig`]
    /// alone (JSON carries it when given).
    pub source_profile: &'a str,
    /// The MFA device for roles that require MFA.
    pub mfa_serial: Option<&'a str>,
    /// Write the ExternalId (only for callers allowed to see it).
    pub reveal_external_id: bool,
    /// How profiles are named; [`DEFAULT_NAME_TEMPLATE`] when `None`.
    pub name_template: Option<&'a str>,
    /// Also the accounts where crossrole has not applied the spec (the role there may be someone else's, or none).
    pub include_unapplied: bool,
    /// The session each profile asks for; [`CHAINED_SESSION`] when `None` (checked by [`check_session`]).
    pub session: Option<Duration>,
}

impl Options<'_> {
    fn duration_seconds(&self) -> u64 {
        self.session.unwrap_or(CHAINED_SESSION).as_secs()
    }
}

/// Checks a profile's session: from 15 minutes (AssumeRole's least) to the role's maximum session.
pub fn check_session(spec: &AccessSpec, session: Duration) -> Result<(), String> {
    let max = spec.role.max_session_duration.as_secs();
    let secs = session.as_secs();
    if session.subsec_nanos() != 0 || !(900..=max).contains(&secs) {
        return Err(format!(
            "must be whole seconds from 900 (15m) to the role's maximum session, {max} (role.max_session_duration), \
             got {secs}s; over 3600 (1h) works only when the source profile holds long-term IAM user credentials \
             (AWS caps role chaining at one hour)"
        ));
    }
    Ok(())
}

/// Why an account is left out where crossrole has not applied the spec.
fn unapplied_reason(spec: &AccessSpec) -> String {
    format!(
        "crossrole has not applied spec {} in this account: it was never applied here, or the role {} there is not \
         crossrole's (`crossrole plan -f <spec file>` says which); --include-unapplied (include_unapplied in the API) \
         lists it anyway",
        spec.name, spec.role.name
    )
}

/// The accounts people can use the role in: those where crossrole applied the spec (all of them with
/// `include_unapplied`), and the others with the reason they are left out.
pub fn usable<'a>(
    spec: &AccessSpec,
    accounts: &'a [Account],
    include_unapplied: bool,
) -> (Vec<&'a Account>, Vec<LeftOut>) {
    let (used, left): (Vec<&Account>, Vec<&Account>) = accounts.iter().partition(|a| a.applied || include_unapplied);
    let left_out = left
        .into_iter()
        .map(|a| LeftOut { account_id: a.id.clone(), account_name: a.name.clone(), reason: unapplied_reason(spec) })
        .collect();
    (used, left_out)
}

/// One account's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Profile {
    name: String,
    account_id: String,
    account_name: String,
    role_arn: String,
}

/// An export: its text, how many profiles it holds, and the accounts left out with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The text, in the format asked for.
    pub text: String,
    /// How many accounts it holds.
    pub profiles: usize,
    /// The target accounts left out, and why.
    pub left_out: Vec<LeftOut>,
}

/// `spec`'s role in the target `accounts`, in `format`. Names are given over every target, so that which accounts
/// are left out never changes another account's name.
pub fn export(
    spec: &AccessSpec,
    partition: Partition,
    accounts: &[Account],
    format: Format,
    options: Options<'_>,
) -> Exported {
    let template = options.name_template.unwrap_or(DEFAULT_NAME_TEMPLATE);
    let names = naming::profile_names(&spec.name, template, accounts);
    let (used, left_out) = usable(spec, accounts, options.include_unapplied);
    let profiles: Vec<Profile> = accounts
        .iter()
        .zip(names)
        .filter(|(a, _)| used.iter().any(|u| std::ptr::eq(*u, *a)))
        .map(|(a, name)| Profile {
            name,
            account_id: a.id.clone(),
            account_name: a.name.clone(),
            role_arn: names::role_arn(partition, &a.id, &spec.role.path, &spec.role.name),
        })
        .collect();
    let text = match format {
        Format::AwsConfig => formats::aws_config(spec, partition, &profiles, options),
        Format::Aesr => formats::aesr(spec, partition, &profiles),
        Format::Json => formats::as_json(spec, partition, &profiles, options),
    };
    Exported { text, profiles: profiles.len(), left_out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(trust_extra: &str) -> AccessSpec {
        AccessSpec::from_yaml(&format!(
            "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  max_session_duration: 12h\n  trust:\n    account_ids: [\"111122223333\"]\n{trust_extra}targets:\n  account_ids: [\"222233334444\"]\n"
        ))
        .unwrap()
    }

    fn account(id: &str, name: &str, joined_at: u64) -> Account {
        Account { id: id.into(), name: name.into(), joined_at: Some(joined_at), applied: true }
    }

    /// "Prod EU" joined first; "prod-eu" after it, with a higher id; one account has no name.
    fn accounts() -> Vec<Account> {
        vec![
            account("222233334444", "Prod EU", 1_500_000_000),
            account("333344445555", "prod-eu", 1_600_000_000),
            account("444455556666", "", 1_700_000_000),
        ]
    }

    const OPTIONS: Options<'static> = Options {
        source_profile: "security",
        mfa_serial: None,
        reveal_external_id: false,
        name_template: None,
        include_unapplied: false,
        session: None,
    };

    fn text(s: &AccessSpec, accounts: &[Account], format: Format, options: Options<'_>) -> String {
        export(s, Partition::Aws, accounts, format, options).text
    }

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
        .assert_eq(&text(&s, &accounts(), Format::AwsConfig, mfa));
        let withheld = text(&s, &accounts(), Format::AwsConfig, OPTIONS);
        assert!(!withheld.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "{withheld}");
        assert!(withheld.contains("# the role requires an ExternalId"), "{withheld}");
        let json = text(&s, &accounts(), Format::Json, OPTIONS);
        assert!(!json.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "{json}");
    }

    #[test]
    fn aesr_lists_console_targets_and_leaves_out_what_the_console_cannot_assume() {
        expect_test::expect![[r#"
            [audit-prod-eu]
            aws_account_id = 222233334444
            role_name = crossrole/Audit
            color = 982471

            [audit-prod-eu-333344445555]
            aws_account_id = 333344445555
            role_name = crossrole/Audit
            color = ce9b8d

            [audit-444455556666]
            aws_account_id = 444455556666
            role_name = crossrole/Audit
            color = a8da93

        "#]]
        .assert_eq(&text(&spec(""), &accounts(), Format::Aesr, OPTIONS));
        let with_external_id =
            text(&spec("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n"), &accounts()[..1], Format::Aesr, OPTIONS);
        assert!(
            with_external_id.starts_with("; audit-prod-eu: left out: the role requires an ExternalId"),
            "{with_external_id}"
        );
    }

    #[test]
    fn json_for_programs() {
        let exported = export(&spec(""), Partition::AwsUsGov, &accounts()[..1], Format::Json, OPTIONS);
        let v: serde_json::Value = serde_json::from_str(&exported.text).unwrap();
        assert_eq!(v[0]["profile"], "audit-prod-eu");
        assert_eq!(v[0]["role_arn"], "arn:aws-us-gov:iam::222233334444:role/crossrole/Audit");
        assert_eq!(v[0]["external_id_required"], false);
        assert_eq!(v[0]["source_profile"], "security");
        assert!(
            v[0]["switch_role_url"].as_str().unwrap().starts_with("https://signin.amazonaws-us-gov.com/switchrole?")
        );
        // No source profile given: JSON leaves the field out rather than write an empty one.
        let bare = export(
            &spec(""),
            Partition::Aws,
            &accounts()[..1],
            Format::Json,
            Options { source_profile: "", ..OPTIONS },
        );
        let v: serde_json::Value = serde_json::from_str(&bare.text).unwrap();
        assert!(v[0].get("source_profile").is_none(), "{v}");
    }

    #[test]
    fn only_accounts_where_crossrole_applied_the_spec_unless_asked_and_each_left_out_says_why() {
        let mut targets = accounts();
        // An unowned same-named role there (the plan says conflict), or the spec never applied: no placement.
        targets[1].applied = false;
        let s = spec("    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n");
        let revealing = Options { reveal_external_id: true, ..OPTIONS };
        for format in [Format::AwsConfig, Format::Aesr, Format::Json] {
            let exported = export(&s, Partition::Aws, &targets, format, revealing);
            assert!(!exported.text.contains("333344445555"), "{format:?}: {}", exported.text);
            assert_eq!(exported.profiles, 2);
            assert_eq!(exported.left_out.len(), 1);
            assert_eq!(exported.left_out[0].account_id, "333344445555");
            assert!(exported.left_out[0].reason.contains("not applied spec audit"), "{:?}", exported.left_out);
        }
        let all =
            export(&s, Partition::Aws, &targets, Format::AwsConfig, Options { include_unapplied: true, ..revealing });
        assert!(all.text.contains("[profile audit-prod-eu-333344445555]"), "{}", all.text);
        assert_eq!((all.profiles, all.left_out.len()), (3, 0));
        // Which accounts are left out never renames the others: "Prod EU" keeps its name while "prod-eu" is out.
        targets[0].applied = false;
        targets[1].applied = true;
        let other = text(&s, &targets, Format::AwsConfig, OPTIONS);
        assert!(
            other.contains("[profile audit-prod-eu-333344445555]") && !other.contains("[profile audit-prod-eu]\n"),
            "{other}"
        );
    }

    #[test]
    fn a_session_that_works_under_role_chaining_unless_a_longer_one_is_asked_for() {
        let s = spec("");
        let default = text(&s, &accounts()[..1], Format::AwsConfig, OPTIONS);
        assert!(default.contains("duration_seconds = 3600\n"), "{default}");
        let long = Options { session: Some(Duration::from_secs(43_200)), ..OPTIONS };
        assert!(text(&s, &accounts()[..1], Format::AwsConfig, long).contains("duration_seconds = 43200\n"));
        assert!(text(&s, &accounts()[..1], Format::Json, long).contains("\"duration_seconds\": 43200"));
        assert!(check_session(&s, Duration::from_secs(43_200)).is_ok());
        assert!(check_session(&s, Duration::from_secs(900)).is_ok());
        let too_long = check_session(&spec("").clone(), Duration::from_secs(43_201)).unwrap_err();
        assert!(too_long.contains("role's maximum session, 43200"), "{too_long}");
        assert!(check_session(&s, Duration::from_secs(899)).is_err());
    }

    #[test]
    fn profile_names_follow_the_template_and_stay_unique() {
        let names = |template: &str| {
            let text =
                text(&spec(""), &accounts(), Format::AwsConfig, Options { name_template: Some(template), ..OPTIONS });
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
        let unnamed = |id: &str| Account { id: id.into(), name: String::new(), joined_at: None, applied: true };
        let clash = [
            Account { name: "333344445555".into(), ..unnamed("222233334444") },
            unnamed("333344445555"),
            unnamed("333344445555"),
        ];
        let text = text(&spec(""), &clash, Format::AwsConfig, OPTIONS);
        let names: Vec<&str> = text.lines().filter(|l| l.starts_with("[profile")).collect();
        assert_eq!(
            names,
            [
                "[profile audit-333344445555-222233334444]",
                "[profile audit-333344445555]",
                "[profile audit-333344445555-2]"
            ]
        );
        assert_eq!(
            check_name_template("${account}").unwrap_err(),
            "uses unknown variable ${account}; known: ${spec}, ${account_name}, ${account_id}"
        );
        assert!(check_name_template("--").is_err());
        assert!(check_name_template("${account_id}").is_ok());
    }

    #[test]
    fn adding_a_same_named_account_changes_no_existing_profiles_account() {
        let before = vec![account("333344445555", "prod-eu", 1_600_000_000)];
        let mut after = before.clone();
        // Named alike, with a lower id (it sorts first), joined later.
        after.insert(0, account("111100002222", "Prod EU", 1_700_000_000));
        let profiles = |accounts: &[Account]| -> std::collections::BTreeMap<String, String> {
            let text = text(&spec(""), accounts, Format::AwsConfig, OPTIONS);
            let mut out = std::collections::BTreeMap::new();
            let mut name = String::new();
            for line in text.lines() {
                if let Some(n) = line.strip_prefix("[profile ") {
                    name = n.trim_end_matches(']').to_string();
                } else if let Some(arn) = line.strip_prefix("role_arn = ") {
                    out.insert(name.clone(), arn.to_string());
                }
            }
            out
        };
        let (was, is) = (profiles(&before), profiles(&after));
        for (name, arn) in &was {
            assert_eq!(is.get(name), Some(arn), "profile {name} moved: before {was:?}, after {is:?}");
        }
        assert_eq!(is.len(), 2);
    }
}
