//! The per-account hot paths of crossrole-core: normalizing a document as IAM returns it, planning a role that is
//! in sync (every account of a no-op re-apply), and selecting targets from a large organization.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossrole_core::{
    AccessSpec, Partition,
    org::{self, AccountTags, fixture::TreeBuilder},
    plan::{DesiredRole, ObservedRole, plan, simulate},
    policy::PolicyDocument,
    spec::{AccountState, TargetSelector},
};

const SPEC: &str = r#"
name: bench
role:
  name: BenchAudit
  path: /crossrole/
  trust:
    account_ids: ["111122223333"]
    principal_arns: [arn:aws:iam::111122223333:role/Auditor]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
    require_mfa: true
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit, arn:aws:iam::aws:policy/ReadOnlyAccess]
  inline_policies:
    deny: {Version: "2012-10-17", Statement: [{Effect: Deny, Action: ["secretsmanager:GetSecretValue", "kms:Decrypt"], Resource: "*"}]}
  tags: {team: security}
targets:
  organizational_unit_ids: [r-root]
"#;

fn observed(desired: &DesiredRole) -> ObservedRole {
    simulate(Partition::Aws, "222233334444", None, plan(desired, None).changes()).expect("created")
}

fn benches(c: &mut Criterion) {
    let spec = AccessSpec::from_yaml(SPEC).expect("spec");
    let desired = DesiredRole::from_spec(&spec, Partition::Aws);
    let role = observed(&desired);
    c.bench_function("normalize an IAM-returned trust policy", |b| {
        b.iter(|| PolicyDocument::parse_observed(black_box(&role.attributes.trust_policy)).expect("parses"))
    });
    c.bench_function("plan a role that is in sync", |b| b.iter(|| plan(black_box(&desired), Some(black_box(&role)))));

    let mut tree = TreeBuilder::new("o-benchmark0", "123456789012", "r-root");
    for o in 0..20 {
        tree = tree.unit("r-root", &format!("ou-root-w{o:07}"), &format!("W{o}"));
    }
    for i in 0..10_000u64 {
        tree = tree.account(
            &format!("ou-root-w{:07}", i % 20),
            &format!("{:012}", 200_000_000_000 + i),
            &format!("a{i}"),
            AccountState::Active,
        );
    }
    let tree = tree.build();
    let selector = TargetSelector {
        organizational_unit_ids: vec!["r-root".into()],
        exclude_organizational_unit_ids: vec!["ou-root-w0000003".into()],
        states: [AccountState::Active].into(),
        ..Default::default()
    };
    c.bench_function("select from 10,000 accounts", |b| {
        b.iter(|| {
            org::resolve(black_box(&tree), black_box(&selector), "targets")
                .expect("resolves")
                .finish(&AccountTags::new())
        })
    });
}

criterion_group!(core, benches);
criterion_main!(core);
