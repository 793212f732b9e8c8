//! The export formats' text: `~/.aws/config` sections, AWS Extend Switch Roles' configuration, JSON, and the
//! granted registry file that names an AWS config file.

use std::fmt::Write;

use serde_json::json;

use super::{Options, Profile};
use crate::{
    Partition,
    links::{self, SwitchRoleLink},
    spec::AccessSpec,
};

pub(super) fn aws_config(
    spec: &AccessSpec,
    partition: Partition,
    profiles: &[Profile],
    options: Options<'_>,
) -> String {
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
        let _ = writeln!(out, "duration_seconds = {}", options.duration_seconds());
        let _ = writeln!(out, "role_session_name = {}", spec.name);
        out.push('\n');
    }
    out
}

/// FNV-1a, 64 bits, its bits then mixed by SplitMix64's finalizer (ids that differ in one digit end far apart): a
/// hash that is the same on every machine and in every release.
fn hash(text: &str) -> u64 {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325, |h: u64, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A colour of the account's own, derived from its id alone (so the same in every export, whatever other accounts
/// there are): each of red, green and blue from its own bits of the id's hash, kept between 0x20 and 0xdf so that no
/// colour is lost against a white or a black background. Seven million colours: the accounts of an organization
/// look different, though two of very many may come out alike.
pub(super) fn colour(account_id: &str) -> String {
    let h = hash(account_id);
    let channel = |shift: u32| 0x20 + ((h >> shift) % 0xc0) as u8;
    format!("{:02x}{:02x}{:02x}", channel(0), channel(16), channel(32))
}

pub(super) fn aesr(spec: &AccessSpec, partition: Partition, profiles: &[Profile]) -> String {
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

pub(super) fn as_json(spec: &AccessSpec, partition: Partition, profiles: &[Profile], options: Options<'_>) -> String {
    let items: Vec<serde_json::Value> = profiles
        .iter()
        .map(|p| {
            let mut item = json!({
                "profile": p.name,
                "account_id": p.account_id,
                "account_name": p.account_name,
                "role_arn": p.role_arn,
                "external_id_required": spec.role.trust.external_id.is_some(),
                "mfa_required": spec.role.trust.require_mfa,
                "duration_seconds": options.duration_seconds(),
                "role_session_name": spec.name,
            });
            let Some(obj) = item.as_object_mut() else { return item };
            match links::switch_role_link(spec, partition, &p.account_id, &p.account_name) {
                SwitchRoleLink::Url(url) => obj.insert("switch_role_url".into(), json!(url)),
                SwitchRoleLink::Unusable(why) => obj.insert("switch_role_unusable".into(), json!(why)),
            };
            if !options.source_profile.is_empty() {
                obj.insert("source_profile".into(), json!(options.source_profile));
            }
            if let (Some(e), true) = (&spec.role.trust.external_id, options.reveal_external_id) {
                obj.insert("external_id".into(), json!(e.expose()));
            }
            if let (Some(m), true) = (options.mfa_serial, spec.role.trust.require_mfa) {
                obj.insert("mfa_serial".into(), json!(m));
            }
            item
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into());
    text.push('\n');
    text
}

/// The `granted.yml` of a granted profile registry whose profiles are in `config_file`, beside it: granted reads
/// the AWS config files its `awsConfig` key lists (paths inside the registry's repository).
pub fn granted_registry(config_file: &str) -> String {
    format!("awsConfig:\n  - ./{config_file}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_account_has_a_colour_of_its_own_that_no_other_account_changes() {
        let ids: Vec<String> = (0..1000u64).map(|i| format!("{:012}", 200_000_000_000 + i)).collect();
        let colours: std::collections::BTreeSet<String> = ids.iter().map(|id| colour(id)).collect();
        assert_eq!(colours.len(), ids.len(), "two of 1,000 consecutive accounts share a colour");
        assert_eq!(colour("222233334444"), colour("222233334444"));
        assert!(colours.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn the_granted_registry_names_its_config_file_under_the_key_granted_reads() {
        expect_test::expect![[r#"
            awsConfig:
              - ./crossrole-audit.config
        "#]]
        .assert_eq(&granted_registry("crossrole-audit.config"));
    }
}
