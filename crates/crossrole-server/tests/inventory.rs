//! The inventory over the API: scopes (starting one and importing read AWS: `plan`; listing: `read`), paging with
//! the listing's own tokens, each filter, an import of hand-made roles, and bad requests named by field.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeSet;

use common::*;
use crossrole_client::{Error, proto};

const VENDOR: &str = "999988887777";

fn account(i: u64) -> String {
    format!("{:012}", 200_000_000_000 + i)
}

fn vendor_trust(condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{VENDOR}:root"}},"Action":"sts:AssumeRole"{condition}}}]}}"#
    )
}

fn names(roles: &[proto::InventoryRole]) -> BTreeSet<String> {
    roles.iter().map(|r| format!("{}/{}", r.account_id, r.name)).collect()
}

#[tokio::test]
async fn the_inventory_over_the_api_scopes_pages_filters_and_imports() {
    let h = start(4, 0).await;
    // The vendor's role, made by hand in every workload account: without an ExternalId in one.
    for i in 0..4 {
        let a = account(i);
        let condition = if i == 0 {
            String::new()
        } else {
            r#","Condition":{"StringEquals":{"sts:ExternalId":"Vx9-secret"}}"#.into()
        };
        h.fake.with_account(&a, |s| {
            s.create_role_by_hand(&a, "VendorAccess", &vendor_trust(&condition));
            s.attach_by_hand("VendorAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess");
        });
    }
    let reader = h.client("read-token").await;
    let planner = h.client("plan-token").await;

    // Before any inventory: nothing to list.
    let none = reader.list_inventory(proto::ListInventoryRequest::default()).await;
    assert!(matches!(none, Err(Error::NotFound(_))), "{none:?}");
    // Starting one reads AWS: `plan`, as a plan.
    assert!(matches!(reader.start_inventory(vec![], None).await, Err(Error::PermissionDenied(_))));
    let handle = planner.start_inventory(vec![], None).await.unwrap();
    let done = handle.wait().await.unwrap();
    assert_eq!(done.kind, proto::OperationKind::Inventory as i32);
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    assert_eq!(h.fake.iam_writes(), 0, "the inventory wrote nothing to AWS");

    // Everything, page by page (2 at a time), as one listing.
    let all = proto::ListInventoryRequest::default();
    let (op, every) = reader.list_inventory_all(all.clone()).await.unwrap();
    assert_eq!(op.id, done.id);
    let mut paged = Vec::new();
    let mut request = proto::ListInventoryRequest { page_size: 2, ..all.clone() };
    loop {
        let page = reader.list_inventory(request.clone()).await.unwrap();
        assert!(page.roles.len() <= 2);
        paged.extend(page.roles);
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(paged, every);
    let vendor_roles: BTreeSet<String> = (0..4).map(|i| format!("{}/VendorAccess", account(i))).collect();
    assert!(names(&every).is_superset(&vendor_roles), "{:?}", names(&every));
    assert!(every.iter().all(|r| !r.trust_policy.contains("Vx9-secret")), "no ExternalId leaves crossroled");

    // Filters: where can the vendor go; the confused-deputy finding; by name; by account; unowned.
    let by = |f: fn(&mut proto::ListInventoryRequest)| {
        let mut r = all.clone();
        f(&mut r);
        r
    };
    let (_, vendor) = reader.list_inventory_all(by(|r| r.principal = VENDOR.into())).await.unwrap();
    assert_eq!(names(&vendor), vendor_roles);
    let deputy = by(|r| r.finding = proto::InventoryFindingKind::OutsideWithoutExternalId as i32);
    let (_, deputy) = reader.list_inventory_all(deputy).await.unwrap();
    assert_eq!(names(&deputy), [format!("{}/VendorAccess", account(0))].into());
    let (_, high) =
        reader.list_inventory_all(by(|r| r.min_severity = proto::InventorySeverity::High as i32)).await.unwrap();
    assert!(names(&high).contains(&format!("{}/VendorAccess", account(0))));
    let (_, named) = reader.list_inventory_all(by(|r| r.role_name = "VendorAccess".into())).await.unwrap();
    assert_eq!(names(&named), vendor_roles);
    let (_, in_one) = reader.list_inventory_all(by(|r| r.account_ids = vec![account(2)])).await.unwrap();
    assert!(!in_one.is_empty() && in_one.iter().all(|r| r.account_id == account(2)));
    let (_, owned) =
        reader.list_inventory_all(by(|r| r.ownership = proto::InventoryOwnership::Owned as i32)).await.unwrap();
    assert!(owned.is_empty(), "crossrole owns none yet: {:?}", names(&owned));
    // A page token is good for the filters it was issued for only.
    let first = reader.list_inventory(proto::ListInventoryRequest { page_size: 1, ..all.clone() }).await.unwrap();
    let other = proto::ListInventoryRequest { page_token: first.next_page_token, role_name: "X".into(), ..all.clone() };
    let refused = reader.list_inventory(other).await.unwrap_err();
    assert!(refused.violations().iter().any(|v| v.field == "page_token"), "{refused:?}");
    // Bad filters are named.
    for (bad, field) in [
        (by(|r| r.account_ids = vec!["12".into()]), "account_ids[0]"),
        (by(|r| r.finding = 99), "finding"),
        (by(|r| r.operation_id = "not-a-uuid".into()), "operation_id"),
        (by(|r| r.page_size = 5000), "page_size"),
        (by(|r| r.principal = "not-a-principal".into()), "principal"),
        (by(|r| r.principal = "arn:aws:iam::99998888777:root".into()), "principal"),
        (by(|r| r.principal = "*".into()), "principal"),
    ] {
        let e = reader.list_inventory(bad).await.unwrap_err();
        assert!(e.violations().iter().any(|v| v.field == field), "{field}: {e:?}");
    }
    // A malformed principal is refused with the rule, not answered with the roles anyone can enter.
    let e = reader.list_inventory(by(|r| r.principal = "arn:aws:iam::99998888777:root".into())).await.unwrap_err();
    assert!(
        e.violations().iter().any(|v| v.description.contains("12 digits") && v.description.contains("99998888777")),
        "{e:?}"
    );
    let (_, as_arn) =
        reader.list_inventory_all(by(|r| r.principal = format!(" arn:aws:iam::{VENDOR}:root "))).await.unwrap();
    assert_eq!(names(&as_arn), vendor_roles, "the vendor's root ARN, padded, is the vendor");

    // An import: `plan` (it reads the roles again); the common shape, the account that differs named.
    assert!(matches!(reader.import_roles("VendorAccess", "vendor", "").await, Err(Error::PermissionDenied(_))));
    let imported = planner.import_roles("VendorAccess", "vendor", "").await.unwrap();
    assert_eq!(imported.operation_id, done.id);
    assert_eq!(imported.account_ids.iter().cloned().collect::<BTreeSet<_>>(), (0..4).map(account).collect());
    assert!(
        imported.spec_yaml.contains("name: vendor") && imported.spec_yaml.contains(VENDOR),
        "{}",
        imported.spec_yaml
    );
    assert!(!imported.spec_yaml.contains("Vx9-secret"), "an ExternalId is never copied");
    assert!(imported.differences.iter().any(|d| d.account_id == account(0) && d.aspect == "trust"), "{imported:?}");
    let missing = planner.import_roles("NoSuchRole", "vendor", "").await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");

    // The days after which a role is unused reach the engine, which names the field when they are out of range.
    let start = |days: u32| proto::StartInventoryRequest { unused_after_days: days, ..Default::default() };
    let refused = planner.start_inventory_with(start(3651)).await.unwrap_err();
    assert!(
        refused.violations().iter().any(|v| v.field == "unused_after_days" && v.description.contains("from 1 to 3650")),
        "{refused:?}"
    );
    let taken = planner.start_inventory_with(start(30)).await.unwrap().wait().await.unwrap();
    assert_eq!(taken.state, proto::OperationState::Succeeded as i32, "{}", taken.message);
}
