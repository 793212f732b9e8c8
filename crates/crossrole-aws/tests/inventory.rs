//! The inventory's read against the in-memory AWS: every role of an account, page by page through the call layer,
//! as IAM lists them; IAM's limits on `MaxItems` and markers; nothing written.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use crossrole_aws::{
    api::AwsConnector,
    calls::{CallContext, CallPolicy, Rates, RetryPolicy},
    fake::{FakeAws, FakeConfig},
    inventory::MAX_ITEMS,
    reconcile::AccountIam,
};
use crossrole_core::{
    inventory::LastUsed,
    org::{OrgTree, fixture::TreeBuilder},
    spec::AccountState,
};

const MGMT: &str = "123456789012";
const MEMBER: &str = "210987654321";

fn tree() -> OrgTree {
    TreeBuilder::new("o-abcdefghij", MGMT, "r-root").account("r-root", MEMBER, "member", AccountState::Active).build()
}

fn trust(principal: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

#[tokio::test(start_paused = true)]
async fn every_role_is_read_page_by_page_as_iam_lists_it_and_nothing_is_written() {
    // IAM may return fewer roles than MaxItems asks, with a marker: pages of 3.
    let fake = FakeAws::new(tree(), FakeConfig { details_page_size: 3, ..FakeConfig::default() });
    fake.with_account(MEMBER, |a| {
        for i in 0..7 {
            a.create_role_by_hand(MEMBER, &format!("Vendor{i}"), &trust("arn:aws:iam::999988887777:root"));
        }
        a.put_inline_by_hand("Vendor3", "read", r#"{"Version":"2012-10-17","Statement":[]}"#);
        a.attach_by_hand("Vendor3", "arn:aws:iam::aws:policy/ReadOnlyAccess");
        a.set_boundary_by_hand("Vendor3", Some("arn:aws:iam::aws:policy/PowerUserAccess"));
        a.tag_by_hand("Vendor3", "team", "payments");
        a.set_used_by_hand(
            "Vendor3",
            Some(1_600_000_000),
            Some(LastUsed { at: 1_700_000_000, region: Some("eu-west-1".into()) }),
        );
    });
    let calls = CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default());
    let ctx = CallContext::new();
    let credentials =
        fake.credentials_for(MEMBER, &format!("arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole"));
    let iam = AccountIam { iam: fake.iam(&credentials), account: MEMBER.into(), calls: &calls, ctx: &ctx };
    let roles = iam.role_details().await.unwrap();

    // The seven made by hand and the bootstrap role, each once.
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.contains(&"OrganizationAccountAccessRole"));
    assert_eq!(ctx.stats.snapshot().get("iam:GetAccountAuthorizationDetails"), Some(&3), "8 roles, 3 a page");
    let v3 = roles.iter().find(|r| r.name == "Vendor3").unwrap();
    assert_eq!(v3.account_id, MEMBER);
    assert_eq!(v3.arn, format!("arn:aws:iam::{MEMBER}:role/Vendor3"));
    assert!(v3.role_id.starts_with("AROA") && v3.role_id.len() == 21, "{}", v3.role_id);
    // Documents come back URL-encoded, as from IAM.
    assert!(v3.trust_policy.contains("%22Principal%22"), "{}", v3.trust_policy);
    assert!(v3.inline_policies["read"].starts_with("%7B"), "{:?}", v3.inline_policies);
    assert_eq!(v3.managed_policy_arns.iter().collect::<Vec<_>>(), ["arn:aws:iam::aws:policy/ReadOnlyAccess"]);
    assert_eq!(v3.permissions_boundary_arn.as_deref(), Some("arn:aws:iam::aws:policy/PowerUserAccess"));
    assert_eq!(v3.tags.get("team").map(String::as_str), Some("payments"));
    assert_eq!((v3.created, v3.last_used.as_ref().map(|u| u.at)), (Some(1_600_000_000), Some(1_700_000_000)));
    assert_eq!(roles.iter().find(|r| r.name == "Vendor0").unwrap().last_used, None);
    assert_eq!(fake.iam_writes(), 0, "the inventory's read writes nothing");
}

#[tokio::test(start_paused = true)]
async fn iam_refuses_max_items_outside_its_range_and_markers_it_did_not_give() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    let credentials =
        fake.credentials_for(MEMBER, &format!("arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole"));
    let iam = fake.iam(&credentials);
    for bad in [0, MAX_ITEMS + 1] {
        let e = iam.get_account_authorization_details_roles(None, bad).await.unwrap_err();
        assert_eq!(e.code.as_deref(), Some("ValidationError"), "{bad}: {e}");
    }
    let e = iam.get_account_authorization_details_roles(Some("not-a-marker".into()), 10).await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("ValidationError"), "{e}");
    let page = iam.get_account_authorization_details_roles(None, MAX_ITEMS).await.unwrap();
    assert_eq!((page.items.len(), page.next_token), (1, None), "the bootstrap role alone, one page");
}
