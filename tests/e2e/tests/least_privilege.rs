//! A rollout through the least-privilege bootstrap role of deploy/aws/crossrole-bootstrap.yaml, deployed by
//! CloudFormation in the e2e setup with the ceiling on, instead of OrganizationAccountAccessRole — judged by an IAM
//! policy evaluator crossrole did not write (`@cloud-copilot/iam-simulate`, `crossrole_e2e::judge`).
//!
//! The emulators enforce no IAM policy. So every call crossroled makes goes through a recording proxy, and the
//! judge decides each one against the bootstrap role's policy *as CloudFormation deployed it* (read back from the
//! emulator), with the context IAM would send (the role's tags and boundary just before the call): all must be
//! allowed — creating, repairing a role made before the ceiling (bounded first), leaving a role with another
//! boundary alone, the trusted side's grant, the live check, and the destroy. Then the trust and grant policies
//! crossroled wrote, read back from the emulator, are judged as the requests people and attackers would make:
//! the trusted principal with the right ExternalId (and MFA where required) is allowed; a wrong or missing
//! ExternalId, no MFA, a principal outside the organization, another account, an anonymous caller are denied; the
//! grant allows exactly the roles crossrole owns and applied.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::BTreeMap;

use crossrole_client::proto;
use crossrole_core::{AccessSpec, policy::PolicyDocument};
use crossrole_e2e::{
    Aws, Crossroled, Manifest,
    calls::{Caller, Entity, World},
    judge::{Case, assume_role, judge_all, simulation},
    proxy::Proxied,
};
use crossrole_wire::ToWire;
use serde_json::{Value, json};

const EXTERNAL_ID: &str = "8f3kQ2mZ7xV1pL9wR4tY6uB0nC5hJ2dS";
const OUTSIDER: &str = "444455556666";

fn decode(doc: &str) -> Value {
    serde_json::from_str(&percent_encoding::percent_decode_str(doc).decode_utf8_lossy())
        .unwrap_or_else(|e| panic!("not a JSON policy document ({e}): {doc}"))
}

/// The bootstrap role's policy in each account, as CloudFormation deployed it.
async fn callers(
    aws: &Aws,
    accounts: &[String],
    role_arn: impl Fn(&str) -> String,
    role: &str,
) -> BTreeMap<String, Caller> {
    let mut out = BTreeMap::new();
    for a in accounts {
        let iam = aws.iam(a).await;
        let doc = iam.get_role_policy().role_name(role).policy_name("crossrole-bootstrap").send().await.unwrap();
        out.insert(
            a.clone(),
            Caller {
                role_arn: role_arn(a),
                policies: vec![("crossrole-bootstrap".into(), decode(doc.policy_document()))],
            },
        );
    }
    out
}

/// The grant policy crossroled keeps for `spec` in the security account: its ARN and document.
async fn grant(aws: &Aws, account: &str, spec: &str) -> (String, Value) {
    let iam = aws.iam(account).await;
    let listed = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .path_prefix("/crossrole/")
        .send()
        .await
        .unwrap();
    for p in listed.policies() {
        let arn = p.arn().unwrap_or_default().to_string();
        let tags = iam.list_policy_tags().policy_arn(&arn).send().await.unwrap();
        if tags.tags().iter().any(|t| t.key() == "crossrole:spec" && t.value() == spec) {
            let version = iam.get_policy().policy_arn(&arn).send().await.unwrap();
            let v = version.policy().and_then(|p| p.default_version_id()).unwrap_or_default().to_string();
            let doc = iam.get_policy_version().policy_arn(&arn).version_id(v).send().await.unwrap();
            return (arn, decode(doc.policy_version().and_then(|v| v.document()).unwrap_or_default()));
        }
    }
    panic!("no grant policy of {spec} in {account}")
}

/// What the run touches, as it is before: the roles of `role` in `accounts`, the security account's principals.
async fn snapshot(aws: &Aws, m: &Manifest, accounts: &[String], role: &str) -> World {
    let mut world = World::default();
    for a in accounts {
        if let Some(r) = aws.role(a, role).await {
            world.roles.insert(
                (a.clone(), role.to_string()),
                Entity {
                    path: r.attributes.path,
                    tags: r.attributes.tags,
                    boundary: r.attributes.permissions_boundary_arn,
                },
            );
        }
    }
    let iam = aws.iam(&m.security_account).await;
    for user in ["alice", "bob"] {
        let u = iam.get_user().user_name(user).send().await.unwrap();
        let u = u.user().unwrap();
        let tags = iam.list_user_tags().user_name(user).send().await.unwrap();
        world.users.insert(
            (m.security_account.clone(), user.to_string()),
            Entity {
                path: u.path().to_string(),
                tags: tags.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect(),
                boundary: None,
            },
        );
    }
    let g = iam.get_group().group_name("auditors").send().await.unwrap();
    world.groups.insert(
        (m.security_account.clone(), "auditors".into()),
        Entity { path: g.group().unwrap().path().to_string(), ..Entity::default() },
    );
    world
}

/// Every call the proxies kept, judged against the deployed bootstrap policies; returns how many were judged.
fn judge_calls(
    title: &str,
    proxied: &Proxied,
    world: &mut World,
    callers: &BTreeMap<String, Caller>,
    org: &str,
) -> usize {
    let mut recorded = proxied.iam.recorded();
    recorded.extend(
        proxied.sts.recorded().into_iter().filter(|r| r.action == "AssumeRole" && callers.contains_key(&r.account)),
    );
    recorded.sort_by_key(|r| r.at);
    let cases = world.cases(&recorded, callers, org);
    let n = cases.len();
    judge_all(title, &cases);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_through_the_least_privilege_bootstrap_role() {
    let m = Manifest::load();
    let lp = m.least_privilege_bootstrap.clone().expect("the setup deploys the bootstrap template");
    let aws = Aws::new().await;
    let org = m.organization_id.clone();
    let security = m.security_account.clone();
    let bootstrap_arn = |a: &str| format!("arn:aws:iam::{a}:role{}{}", lp.path, lp.role);

    // What CloudFormation made: the role, at its path, trusting only crossroled's role.
    let sandbox: Vec<String> = m.active_under("/Root/Sandbox").iter().map(|a| a.id.clone()).collect();
    for account in sandbox.iter().chain([&security]) {
        let role = aws.role(account, &lp.role).await.unwrap_or_else(|| panic!("no {} in {account}", lp.role));
        assert_eq!(role.attributes.path, lp.path);
        assert_eq!(role.arn, bootstrap_arn(account));
        let trust = PolicyDocument::parse_observed(&role.attributes.trust_policy).unwrap();
        let expected = PolicyDocument::parse_observed(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
            lp.crossroled_role_arn
        ))
        .unwrap();
        assert_eq!(trust, expected, "the bootstrap role trusts only crossroled");
        assert!(role.inline_policies.contains_key("crossrole-bootstrap"));
    }
    let ceiling = |account: &str| format!("arn:aws:iam::{account}:policy{}", lp.ceiling_policy);
    for account in sandbox.iter().chain([&security]) {
        let policy = aws.iam(account).await.get_policy().policy_arn(ceiling(account)).send().await;
        assert!(policy.is_ok(), "no ceiling policy in {account}: {policy:?}");
    }

    // Roles already there: one crossrole made before the ceiling existed (no boundary), one someone gave another
    // boundary, one made by hand.
    let owned_tags = || {
        vec![
            aws_sdk_iam::types::Tag::builder().key("crossrole:managed-by").value("crossrole").build().unwrap(),
            aws_sdk_iam::types::Tag::builder().key("crossrole:spec").value("lp-audit").build().unwrap(),
        ]
    };
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{security}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let (legacy, other_boundary, hand_made) = (&sandbox[0], &sandbox[1], &sandbox[2]);
    let power_user = "arn:aws:iam::aws:policy/PowerUserAccess";
    for (account, tags, boundary) in
        [(legacy, owned_tags(), None), (other_boundary, owned_tags(), Some(power_user)), (hand_made, vec![], None)]
    {
        let iam = aws.iam(account).await;
        let mut create = iam
            .create_role()
            .role_name("LpAudit")
            .path("/crossrole/")
            .assume_role_policy_document(&trust)
            .set_tags(Some(tags));
        if let Some(b) = boundary {
            create = create.permissions_boundary(b);
        }
        create.send().await.unwrap();
        iam.attach_role_policy()
            .role_name("LpAudit")
            .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
            .send()
            .await
            .unwrap();
    }

    // crossroled with the ceiling the template enforces, every call through a recording proxy.
    let proxied = Proxied::start(7).await;
    proxied.record(true);
    let extra = format!(
        "\n[aws]\nbootstrap_role = \"{}\"\nbootstrap_role_path = \"{}\"\n[ceiling]\npermissions_boundary = \"arn:${{partition}}:iam::${{account_id}}:policy{}\"\nrole_path = \"/crossrole/\"\nallowed_managed_policies = [\"arn:aws:iam::aws:policy/SecurityAudit\", \"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\nallowed_trusted_accounts = [\"{security}\"]\ntrust_within_organization = true\n",
        lp.role, lp.path, lp.ceiling_policy
    );
    let server =
        Crossroled::start_with_env(&crossrole_e2e::test_dir("least_privilege"), &extra, &proxied.env()).await.unwrap();
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

    let lp_accounts: Vec<String> = lp.accounts.clone();
    let callers = callers(&aws, &lp_accounts, bootstrap_arn, &lp.role).await;
    let mut world = snapshot(&aws, &m, &sandbox, "LpAudit").await;
    let done = client.apply(spec.clone(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let results = client
        .list_account_results(proto::ListAccountResultsRequest {
            operation_id: done.id.clone(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .results;
    let result = |a: &str| results.iter().find(|r| r.account_id == a).unwrap();
    // Made before the ceiling: bounded first, then repaired. Another boundary: left alone, saying why.
    assert_eq!(
        result(legacy).changes[0].kind,
        proto::ChangeKind::PutPermissionsBoundary as i32,
        "{:?}",
        result(legacy)
    );
    assert_eq!(result(other_boundary).outcome, proto::AccountOutcome::Skipped as i32);
    assert_eq!(result(other_boundary).error.as_ref().unwrap().code, "outside_ceiling");
    assert_eq!(result(hand_made).error.as_ref().unwrap().code, "not_owned");
    let applied: Vec<&String> = sandbox.iter().filter(|a| ![other_boundary, hand_made].contains(a)).collect();
    for a in &applied {
        let role = aws.role(a, "LpAudit").await.unwrap();
        assert_eq!(role.attributes.tags.get("crossrole:managed-by").map(String::as_str), Some("crossrole"));
        assert_eq!(role.attributes.permissions_boundary_arn, Some(ceiling(a)), "under the ceiling");
        assert!(!role.managed_policy_arns.contains("arn:aws:iam::aws:policy/AdministratorAccess"));
    }
    let untouched = aws.role(other_boundary, "LpAudit").await.unwrap();
    assert_eq!(untouched.attributes.permissions_boundary_arn.as_deref(), Some(power_user));
    assert!(untouched.managed_policy_arns.contains("arn:aws:iam::aws:policy/AdministratorAccess"));

    // The trust each role has when the live checks assume it (judged with the calls, below).
    for a in &sandbox {
        let role = aws.role(a, "LpAudit").await.unwrap();
        world.trusts.insert(role.arn.clone(), decode(&role.attributes.trust_policy));
    }

    let v = client.verify(spec.clone()).await.unwrap();
    let live: Vec<_> = v.accounts.iter().filter(|a| applied.contains(&&a.account_id)).collect();
    assert!(
        live.iter().all(|a| a.assume.as_ref().is_some_and(|c| c.outcome == proto::CheckOutcome::Passed as i32)),
        "{v:?}"
    );
    // The live check ran as the least-privilege role of the security account.
    assert_eq!(live[0].assume.as_ref().unwrap().caller_arn, bootstrap_arn(&security));

    // The trust and grant policies crossroled wrote, judged as requests people and attackers would make.
    let (grant_arn, grant_doc) = grant(&aws, &security, "lp-audit").await;
    let mut cases = Vec::new();
    let alice = format!("arn:aws:iam::{security}:user/alice");
    let bob = format!("arn:aws:iam::{security}:user/bob");
    let ctx = |principal: &str, account: &str, org: &str, external_id: Option<&str>| {
        let mut c = json!({"aws:PrincipalArn": principal, "aws:PrincipalAccount": account, "aws:PrincipalOrgID": org,
                           "aws:MultiFactorAuthPresent": "false"});
        if let Some(x) = external_id {
            c["sts:ExternalId"] = json!(x);
        }
        c
    };
    let admin = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    for a in &applied {
        let role = aws.role(a, "LpAudit").await.unwrap();
        let trust = decode(&role.attributes.trust_policy);
        let case = |name: String,
                    expect,
                    principal: &str,
                    account: &str,
                    org: &str,
                    x: Option<&str>,
                    identity: Vec<(&str, Value)>| Case {
            name: format!("{name} → {a}"),
            expect,
            simulation: simulation(
                assume_role(principal, &role.arn, ctx(principal, account, org, x)),
                &identity,
                Some(trust.clone()),
            ),
        };
        let granted = || vec![("grant", grant_doc.clone())];
        cases.push(case(
            "alice (granted), the right ExternalId".into(),
            "Allowed",
            &alice,
            &security,
            &org,
            Some(EXTERNAL_ID),
            granted(),
        ));
        cases.push(case(
            "alice, a wrong ExternalId".into(),
            "Denied",
            &alice,
            &security,
            &org,
            Some("guess-8f3kQ2mZ7xV1pL9wR4tY6uB0nC5h"),
            granted(),
        ));
        cases.push(case("alice, no ExternalId".into(), "Denied", &alice, &security, &org, None, granted()));
        cases.push(case(
            "bob (not granted), the right ExternalId".into(),
            "Denied",
            &bob,
            &security,
            &org,
            Some(EXTERNAL_ID),
            vec![],
        ));
        let mallory = format!("arn:aws:iam::{OUTSIDER}:user/mallory");
        cases.push(case(
            "an admin outside the organization, the right ExternalId".into(),
            "Denied",
            &mallory,
            OUTSIDER,
            "o-outsider000",
            Some(EXTERNAL_ID),
            vec![("admin", admin.clone())],
        ));
        let neighbour = format!("arn:aws:iam::{}:role/Admin", m.account("prod-01").id);
        cases.push(case(
            "an admin of another account of the organization, the right ExternalId".into(),
            "Denied",
            &neighbour,
            &m.account("prod-01").id,
            &org,
            Some(EXTERNAL_ID),
            vec![("admin", admin.clone())],
        ));
        cases.push(Case {
            name: format!("anyone, unsigned → {a}"),
            expect: "Denied",
            simulation: simulation(
                json!({"principal": {"type": "Anonymous"}, "action": "sts:AssumeRole", "resource": {"resource": role.arn, "accountId": a}, "contextVariables": {"sts:ExternalId": EXTERNAL_ID}}),
                &[],
                Some(trust.clone()),
            ),
        });
    }
    // The grant names exactly the roles crossrole owns and applied: judged with a trust that would let alice in,
    // so that the grant alone decides.
    let open = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{security}:root")}, "Action": "sts:AssumeRole"}]});
    let grant_only = |name: String, expect, role_arn: String| Case {
        name,
        expect,
        simulation: simulation(
            assume_role(&alice, &role_arn, ctx(&alice, &security, &org, Some(EXTERNAL_ID))),
            &[("grant", grant_doc.clone())],
            Some(open.clone()),
        ),
    };
    for a in &sandbox {
        let arn = format!("arn:aws:iam::{a}:role/crossrole/LpAudit");
        let expect = if applied.contains(&a) { "Allowed" } else { "Denied" };
        cases.push(grant_only(
            format!(
                "the grant, for the role in {a} ({})",
                if expect == "Allowed" { "applied" } else { "not crossrole's to grant" }
            ),
            expect,
            arn,
        ));
    }
    let workload = &m.active_under("/Root/Workloads")[0].id;
    cases.push(grant_only(
        format!("the grant, for the same role in {workload}, outside the spec's targets"),
        "Denied",
        format!("arn:aws:iam::{workload}:role/crossrole/LpAudit"),
    ));
    cases.push(grant_only(
        format!("the grant, for another role in {}", applied[0]),
        "Denied",
        format!("arn:aws:iam::{}:role/crossrole/Admin", applied[0]),
    ));
    judge_all(&format!("the trust and grant ({grant_arn}) policies crossroled wrote"), &cases);

    // MFA and the organization: a second spec that requires both.
    let mfa_yaml = format!(
        "name: lp-mfa\nrole:\n  name: LpMfa\n  path: /crossrole/\n  trust:\n    account_ids: [\"{security}\"]\n    require_mfa: true\n    principal_org_id: {org}\n  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]\ntargets:\n  account_ids: [\"{}\"]\ngrant:\n  account_id: \"{security}\"\n  user_names: [alice]\n",
        applied[1]
    );
    let mfa: proto::AccessSpec = AccessSpec::from_yaml(&mfa_yaml).unwrap().to_wire();
    let done = client.apply(mfa.clone(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let role = aws.role(applied[1], "LpMfa").await.unwrap();
    world.trusts.insert(role.arn.clone(), decode(&role.attributes.trust_policy));
    let trust = decode(&role.attributes.trust_policy);
    let (_, mfa_grant) = grant(&aws, &security, "lp-mfa").await;
    let with = |name: &str, expect, principal: &str, account: &str, org: &str, mfa: bool| {
        let mut c = ctx(principal, account, org, None);
        c["aws:MultiFactorAuthPresent"] = json!(mfa.to_string());
        Case {
            name: name.to_string(),
            expect,
            simulation: simulation(
                assume_role(principal, &role.arn, c),
                &[("grant", mfa_grant.clone())],
                Some(trust.clone()),
            ),
        }
    };
    judge_all(
        "a trust that requires MFA and the organization",
        &[
            with("alice, signed in with MFA", "Allowed", &alice, &security, &org, true),
            with("alice, without MFA", "Denied", &alice, &security, &org, false),
            with(
                "alice, as if her account had left the organization",
                "Denied",
                &alice,
                &security,
                "o-elsewhere00",
                true,
            ),
        ],
    );

    // The destroys: every call judged again (a role with another boundary is bounded first, then removed).
    for s in [mfa, spec] {
        let done = client.destroy(s, None).await.unwrap().wait().await.unwrap();
        assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    }
    let judged = judge_calls(
        "every call crossroled made (applies, live checks, destroys), against the deployed bootstrap policy",
        &proxied,
        &mut world,
        &callers,
        &org,
    );
    assert!(judged > 5 * applied.len(), "{judged} calls judged");
    for a in &applied {
        assert!(aws.role(a, "LpAudit").await.is_none(), "destroyed in {a}");
    }
    assert!(aws.role(other_boundary, "LpAudit").await.is_none(), "a destroy is never refused");
    assert!(aws.role(hand_made, "LpAudit").await.is_some(), "a role crossrole does not own stays");
}
