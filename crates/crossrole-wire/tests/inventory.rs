//! The inventory's conversions both ways: an inventory role (entrants, conditions, findings) and an import, sent to
//! the API and read back, are the same, for values drawn from every variant of every enum; what does not fit is
//! refused naming the field.

use std::collections::BTreeSet;

use crossrole_core::inventory::{
    AccountDifference, Aspect, Entrant, EntrantKind, Finding, FindingKind, Guards, Import, InventoryRole, LastUsed,
    Severity,
};
use crossrole_wire::{FromWire, ToWire, enums::Known, pb};
use proptest::{prelude::*, sample::select};

fn round_trip<T>(value: &T)
where
    T: ToWire + FromWire<T::Wire> + PartialEq + std::fmt::Debug,
{
    let wire = value.to_wire();
    assert_eq!(&T::from_wire(&wire).expect("reads back"), value);
}

fn word() -> impl Strategy<Value = String> {
    "[a-z0-9:/-]{1,12}"
}

fn words() -> impl Strategy<Value = BTreeSet<String>> {
    prop::collection::btree_set(word(), 0..3)
}

fn guards() -> impl Strategy<Value = Guards> {
    (any::<[bool; 3]>(), prop::collection::btree_map(word(), words(), 0..3), words(), words()).prop_map(
        |([external_id, mfa, source_identity], organization, principal_arns, other_keys)| Guards {
            external_id,
            mfa,
            organization,
            source_identity,
            principal_arns,
            other_keys,
        },
    )
}

fn entrant() -> impl Strategy<Value = Entrant> {
    let kinds = vec![
        EntrantKind::OrganizationAccount,
        EntrantKind::OutsideAccount,
        EntrantKind::FormerMember,
        EntrantKind::Service,
        EntrantKind::Federated,
        EntrantKind::Anyone,
        EntrantKind::UnresolvableId,
        EntrantKind::Other,
    ];
    (select(kinds), word(), prop::option::of("[0-9]{12}"), any::<bool>(), words(), guards()).prop_map(
        |(kind, principal, account_id, whole_account, actions, conditions)| Entrant {
            kind,
            principal,
            account_id,
            whole_account,
            actions,
            conditions,
        },
    )
}

fn finding() -> impl Strategy<Value = Finding> {
    let kinds = vec![
        FindingKind::AnyoneCanEnter,
        FindingKind::OutsideWithoutExternalId,
        FindingKind::OutsideAccountRoot,
        FindingKind::BrokenPrincipal,
        FindingKind::Unused,
        FindingKind::FormerMember,
        FindingKind::Drifted,
        FindingKind::UnreadableTrust,
    ];
    let severities = vec![Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];
    (select(kinds), select(severities), ".{0,20}").prop_map(|(kind, severity, reason)| Finding {
        kind,
        severity,
        reason,
    })
}

fn role() -> impl Strategy<Value = InventoryRole> {
    (
        ("[0-9]{12}", word(), word(), word()),
        (prop::option::of(0i64..4_000_000_000), prop::option::of((0i64..4_000_000_000, prop::option::of(word())))),
        (words(), words(), prop::option::of(word()), prop::option::of(word()), ".{0,30}"),
        (prop::collection::vec(entrant(), 0..3), prop::collection::vec(finding(), 0..3)),
    )
        .prop_map(
            |(
                (account_id, name, path, arn),
                (created, used),
                (managed, inline, boundary, owner, trust),
                (entrants, findings),
            )| {
                InventoryRole {
                    account_id,
                    name,
                    path,
                    arn,
                    created,
                    last_used: used.map(|(at, region)| LastUsed { at, region }),
                    managed_policy_arns: managed,
                    inline_policy_names: inline,
                    permissions_boundary_arn: boundary,
                    owner,
                    trust_policy: trust,
                    entrants,
                    findings,
                }
            },
        )
}

proptest! {
    #[test]
    fn an_inventory_role_reads_back_as_it_was(r in role()) {
        round_trip(&r);
    }
}

#[test]
fn an_import_reads_back_as_it_was() {
    let aspects = [Aspect::Trust, Aspect::Managed, Aspect::Inline, Aspect::Boundary, Aspect::Path];
    let import = Import {
        spec_yaml: "name: vendor\n".into(),
        accounts: vec!["111111111111".into(), "222222222222".into()],
        differences: aspects
            .into_iter()
            .map(|aspect| AccountDifference { account_id: "222222222222".into(), aspect, detail: "differs".into() })
            .collect(),
        not_expressible: vec!["222222222222: a Deny".into()],
        notes: vec!["replace the ExternalId".into()],
    };
    round_trip(&import);
}

#[test]
fn what_does_not_fit_is_refused_naming_the_field() {
    let mut w = InventoryRole {
        account_id: "111111111111".into(),
        name: "R".into(),
        path: "/".into(),
        arn: "arn:aws:iam::111111111111:role/R".into(),
        created: None,
        last_used: None,
        managed_policy_arns: BTreeSet::new(),
        inline_policy_names: BTreeSet::new(),
        permissions_boundary_arn: None,
        owner: None,
        trust_policy: String::new(),
        entrants: Vec::new(),
        findings: vec![Finding { kind: FindingKind::Unused, severity: Severity::Low, reason: "old".into() }],
    }
    .to_wire();
    w.findings[0].severity = 42;
    let e = InventoryRole::from_wire(&w).unwrap_err().to_string();
    assert!(e.starts_with("findings[0].severity"), "{e}");
    let bad = pb::ImportDifference { account_id: "1".into(), aspect: "colour".into(), detail: String::new() };
    assert!(AccountDifference::from_wire(&bad).unwrap_err().to_string().starts_with("aspect"));
    // The API's numbers: 0 is no value, each kind its own.
    assert_eq!(Severity::known(0), None);
    assert_eq!(Severity::known(pb::InventorySeverity::Critical as i32), Some(Severity::Critical));
}
