//! A rollout through the least-privilege bootstrap role of deploy/aws/crossrole-bootstrap.yaml, deployed by
//! CloudFormation in the e2e setup with the ceiling on, instead of OrganizationAccountAccessRole.
//!
//! The emulators do not enforce the role's permissions: this proves the template deploys (its ceiling policy
//! included), that crossroled works through the role it makes (name, path, trust) and that every role it creates
//! carries the ceiling as its boundary. That IAM refuses what the role's policy does not allow (a role without the
//! ceiling, a forbidden policy, lifting the ceiling) is proven offline, by crossrole-core's ceiling_templates test,
//! which evaluates the template's policy; no emulator here could show it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use crossrole_client::proto;
use crossrole_core::{AccessSpec, policy::PolicyDocument};
use crossrole_e2e::{Aws, Crossroled, Manifest};
use crossrole_wire::ToWire;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_through_the_least_privilege_bootstrap_role() {
    let m = Manifest::load();
    let lp = m.least_privilege_bootstrap.clone().expect("the setup deploys the bootstrap template");
    let aws = Aws::new().await;

    // What CloudFormation made: the role, at its path, trusting only crossroled's role.
    let sandbox: Vec<String> = m.active_under("/Root/Sandbox").iter().map(|a| a.id.clone()).collect();
    for account in sandbox.iter().chain([&m.security_account]) {
        let role = aws.role(account, &lp.role).await.unwrap_or_else(|| panic!("no {} in {account}", lp.role));
        assert_eq!(role.path, lp.path);
        assert_eq!(role.arn, format!("arn:aws:iam::{account}:role{}{}", lp.path, lp.role));
        let trust = PolicyDocument::parse_observed(&role.trust_policy).unwrap();
        let expected = PolicyDocument::parse_observed(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
            lp.crossroled_role_arn
        ))
        .unwrap();
        assert_eq!(trust, expected, "the bootstrap role trusts only crossroled");
        assert!(role.inline_policies.contains_key("crossrole-bootstrap"));
    }

    // The ceiling policy the template deployed in each account.
    let ceiling = |account: &str| format!("arn:aws:iam::{account}:policy{}", lp.ceiling_policy);
    for account in sandbox.iter().chain([&m.security_account]) {
        let iam = aws.iam(account).await;
        let policy = iam.get_policy().policy_arn(ceiling(account)).send().await;
        assert!(policy.is_ok(), "no ceiling policy in {account}: {policy:?}");
    }

    // crossroled configured with it, and with the ceiling the template enforces.
    let extra = format!(
        "\n[aws]\nbootstrap_role = \"{}\"\nbootstrap_role_path = \"{}\"\n[ceiling]\npermissions_boundary = \"arn:${{partition}}:iam::${{account_id}}:policy{}\"\nrole_path = \"/crossrole/\"\nallowed_managed_policies = [\"arn:aws:iam::aws:policy/SecurityAudit\", \"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\nallowed_trusted_accounts = [\"{}\"]\n",
        lp.role, lp.path, lp.ceiling_policy, m.security_account
    );
    let server = Crossroled::start_with(&crossrole_e2e::test_dir("least_privilege"), &extra).await.unwrap();
    let client = server.client().await;
    let yaml = m
        .example_spec()
        .replace("name: security-audit", "name: lp-audit")
        .replace("name: SecurityAudit", "name: LpAudit")
        .replace("[/Root/Workloads]", "[/Root/Sandbox]");
    // Under the ceiling a spec asks for no boundary of its own: crossrole sets the ceiling's. Asked for another, it
    // is refused before any call, naming the field.
    let refused: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let e = client.apply(refused, None).await.err().unwrap();
    assert_eq!(e.violations()[0].field, "spec.role.permissions_boundary_arn", "{e}");
    let yaml = yaml.replace("  permissions_boundary_arn: arn:aws:iam::aws:policy/ReadOnlyAccess\n", "");
    let spec: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let done = client.apply(spec.clone(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    for a in &sandbox {
        let role = aws.role(a, "LpAudit").await.unwrap();
        assert_eq!(
            role.tags.get("crossrole:managed-by").map(String::as_str),
            Some("crossrole"),
            "created with the ownership tag the role's policy requires"
        );
        assert_eq!(role.permissions_boundary_arn, Some(ceiling(a)), "created under the ceiling");
    }
    let v = client.verify(spec.clone()).await.unwrap();
    assert!(
        v.accounts.iter().all(|a| a.assume.as_ref().is_some_and(|c| c.outcome == proto::CheckOutcome::Passed as i32)),
        "{v:?}"
    );
    // The live check ran as the least-privilege role of the security account.
    let caller = v.accounts[0].assume.as_ref().unwrap().caller_arn.clone();
    assert_eq!(caller, format!("arn:aws:iam::{}:role{}{}", m.security_account, lp.path, lp.role));
    client.destroy(spec, None).await.unwrap().wait().await.unwrap();
    assert!(aws.role(&sandbox[0], "LpAudit").await.is_none());
}
