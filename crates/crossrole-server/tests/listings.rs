//! crossroled's paged listings, in-process: each pages through with the tokens it issued and refuses any other,
//! naming `page_token`, and a record the journal holds that crossroled cannot read is shown with why, not fatal.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use crossrole_client::{Client, Error, proto};
use crossrole_core::{AccessSpec, spec::RawSpec};
use crossrole_store::{AccountRow, BindingRow, NewOperation, StoredKind, StoredOutcome, StoredState};
use tonic::Code;

/// Every page of a listing, from the first token to the empty one.
async fn pages<F, Fut>(mut page: F) -> Vec<Vec<String>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<String>, String), Error>>,
{
    let (mut all, mut token) = (Vec::new(), String::new());
    loop {
        let (items, next) = page(token).await.unwrap();
        all.push(items);
        if next.is_empty() {
            return all;
        }
        assert!(all.len() < 100, "the listing never ends");
        token = next;
    }
}

fn refused_naming_page_token(result: Result<impl std::fmt::Debug, Error>, what: &str) {
    let e = result.expect_err(what);
    assert_eq!(e.violations().first().map(|v| v.field.as_str()), Some("page_token"), "{what}: {e}");
    assert!(e.violations()[0].description.contains("not a token this listing issued"), "{what}: {e}");
}

async fn operations(c: &Client, token: String) -> Result<(Vec<String>, String), Error> {
    let r = c.list_operations(proto::ListOperationsRequest { page_size: 1, page_token: token, ..Default::default() });
    let r = r.await?;
    Ok((r.operations.into_iter().map(|o| o.id).collect(), r.next_page_token))
}

async fn results(c: &Client, op: &str, token: String) -> Result<(Vec<String>, String), Error> {
    let request = proto::ListAccountResultsRequest {
        operation_id: op.into(),
        page_size: 1,
        page_token: token,
        ..Default::default()
    };
    let r = c.list_account_results(request).await?;
    Ok((r.results.into_iter().map(|r| r.account_id).collect(), r.next_page_token))
}

async fn bindings(c: &Client, token: String) -> Result<(Vec<String>, String), Error> {
    let r = c.list_bindings(proto::ListBindingsRequest { page_size: 1, page_token: token }).await?;
    Ok((r.bindings.into_iter().map(|b| b.name).collect(), r.next_page_token))
}

async fn accounts(c: &Client, token: String) -> Result<(Vec<String>, String), Error> {
    let selector =
        proto::TargetSelector { organizational_unit_ids: vec!["ou-root-workload".into()], ..Default::default() };
    let request =
        proto::ListAccountsRequest { selector: Some(selector), page_size: 1, page_token: token, refresh: false };
    let r = c.list_accounts(request).await?;
    Ok((r.accounts.into_iter().map(|a| a.id).collect(), r.next_page_token))
}

async fn audit(c: &Client, token: String) -> Result<(Vec<String>, String), Error> {
    let r =
        c.list_audit_events(proto::ListAuditEventsRequest { page_size: 1, page_token: token, ..Default::default() });
    let r = r.await?;
    Ok((r.events.into_iter().map(|e| format!("{}:{}", e.method, e.operation_id)).collect(), r.next_page_token))
}

fn named(name: &str) -> proto::AccessSpec {
    let mut s = spec();
    s.name = name.into();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listing_pages_with_its_own_tokens_and_refuses_any_other() {
    let h = start(3, 0).await;
    let deployer = h.client("apply-token").await;
    let mut ops = Vec::new();
    for _ in 0..3 {
        let op = deployer.apply(spec(), None).await.unwrap();
        ops.push(op.id().to_string());
        op.wait().await.unwrap();
    }
    for name in ["audit-a", "audit-b"] {
        deployer.create_binding(proto::Binding { spec: Some(named(name)), ..Default::default() }).await.unwrap();
    }
    let c = h.client("read-token").await;

    // Each listing, a page at a time, with the tokens it issued: everything, once.
    let listed: Vec<String> = pages(|t| operations(&c, t)).await.into_iter().flatten().collect();
    assert!(ops.iter().all(|id| listed.contains(id)), "{listed:?}");
    assert_eq!(listed.len(), listed.iter().collect::<std::collections::BTreeSet<_>>().len(), "{listed:?}");
    let of_first = pages(|t| results(&c, &ops[0], t)).await;
    assert_eq!(of_first.len(), 3, "one account a page: {of_first:?}");
    let names = pages(|t| bindings(&c, t)).await;
    assert_eq!(names, [vec!["audit-a".to_string()], vec!["audit-b".to_string()]]);
    let ids: Vec<String> = pages(|t| accounts(&c, t)).await.into_iter().flatten().collect();
    assert_eq!(ids, ["200000000000", "200000000001", "200000000002"]);
    let entries: Vec<String> = pages(|t| audit(&c, t)).await.into_iter().flatten().collect();
    assert!(entries.len() >= 5, "3 applies and 2 bindings audited: {entries:?}");

    // A token of each listing, to hand to the others.
    let op_token = operations(&c, String::new()).await.unwrap().1;
    let result_token = results(&c, &ops[0], String::new()).await.unwrap().1;
    let binding_token = bindings(&c, String::new()).await.unwrap().1;
    let account_token = accounts(&c, String::new()).await.unwrap().1;
    let audit_token = audit(&c, String::new()).await.unwrap().1;
    let tokens = [&op_token, &result_token, &binding_token, &account_token, &audit_token];
    assert!(tokens.iter().all(|t| !t.is_empty()), "{tokens:?}");

    // Made up, tampered with, or another listing's: refused, naming page_token.
    let mut tampered = op_token.clone();
    tampered.replace_range(..2, if tampered.starts_with("00") { "11" } else { "00" });
    let forged = |own: &String| {
        let mut all =
            vec!["1".to_string(), "9999999".into(), "audit-a".into(), "200000000001".into(), tampered.clone()];
        all.extend(tokens.iter().filter(|t| **t != own).map(|t| t.to_string()));
        all
    };
    for t in forged(&op_token) {
        refused_naming_page_token(operations(&c, t.clone()).await, &format!("ListOperations {t}"));
    }
    for t in forged(&result_token) {
        refused_naming_page_token(results(&c, &ops[0], t.clone()).await, &format!("ListAccountResults {t}"));
    }
    // The results of one operation do not page another's.
    refused_naming_page_token(results(&c, &ops[1], result_token.clone()).await, "another operation's token");
    for t in forged(&binding_token) {
        refused_naming_page_token(bindings(&c, t.clone()).await, &format!("ListBindings {t}"));
    }
    for t in forged(&account_token) {
        refused_naming_page_token(accounts(&c, t.clone()).await, &format!("ListAccounts {t}"));
    }
    for t in forged(&audit_token) {
        refused_naming_page_token(audit(&c, t.clone()).await, &format!("ListAuditEvents {t}"));
    }
    // Checked before the journal is asked: a forged token for an operation that does not exist is still refused as
    // a token, not NOT_FOUND.
    let nowhere = "0190a3c4-0000-7000-8000-000000000000";
    refused_naming_page_token(results(&c, nowhere, "1".into()).await, "a token for no operation");
    h.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_crossroled_cannot_read_is_shown_with_why_and_the_rest_are_listed() {
    let h = start(2, 0).await;
    let deployer = h.client("apply-token").await;
    let op = deployer.apply(spec(), None).await.unwrap();
    op.wait().await.unwrap();
    deployer.create_binding(proto::Binding { spec: Some(named("audit-a")), ..Default::default() }).await.unwrap();

    // What a damaged journal, a newer crossroled or another journal key leave behind.
    let journal = h.server.engine.journal().clone();
    let mut other_key = RawSpec::from(&AccessSpec::from_yaml(&spec_yaml()).unwrap());
    let other = crossrole_store::JournalKey::generate().unwrap();
    other_key.role.as_mut().unwrap().trust.as_mut().unwrap().external_id =
        other.seal("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "01900000-0000-7000-8000-000000000003").unwrap();
    let bad_specs = [
        ("01900000-0000-7000-8000-000000000001", br#"{"v":2,"record":{"name":"audit"}}"#.to_vec()),
        ("01900000-0000-7000-8000-000000000002", br#"{"v":1,"record":{"name":"aud"#.to_vec()),
        ("01900000-0000-7000-8000-000000000003", crossrole_engine::records::encode_operation_spec(&other_key, None)),
    ];
    for (id, spec) in &bad_specs {
        journal
            .create_operation(NewOperation {
                id: id.to_string(),
                kind: StoredKind::Apply,
                spec_name: "audit".into(),
                spec: spec.clone(),
                idempotency_key: None,
                request_fingerprint: "x".into(),
                binding_name: None,
                created_by: "someone".into(),
                create_time: 1_700_000_000_000,
                state: StoredState::Succeeded,
                dry_run: false,
            })
            .await
            .unwrap();
    }
    let account = "200000000009".to_string();
    let garbage = AccountRow {
        index: 9,
        account_id: account.clone(),
        outcome: StoredOutcome::Changed,
        result: b"\x00\x01".to_vec(),
    };
    journal.put_accounts(op.id(), vec![garbage]).await.unwrap();
    journal
        .create_binding(BindingRow {
            name: "audit-b".into(),
            version: 3,
            binding: br#"{"v":7,"record":{}}"#.to_vec(),
            status: Vec::new(),
            create_time: 1,
            update_time: 2,
        })
        .await
        .unwrap();

    let c = h.client("read-token").await;
    // Operations: the readable one whole, each unreadable one with its columns and why.
    let of_audit = proto::ListOperationsRequest { spec_name: "audit".into(), ..Default::default() };
    let listed = c.list_operations(of_audit).await.unwrap().operations;
    assert_eq!(listed.len(), 4, "{listed:?}");
    let good = listed.iter().find(|o| o.id == op.id()).unwrap();
    assert!(good.unreadable.is_empty() && good.spec.as_ref().unwrap().role.is_some(), "{good:?}");
    let why = |id: &str| listed.iter().find(|o| o.id == id).map(|o| o.unreadable.clone()).unwrap();
    assert!(
        why(bad_specs[0].0).contains("is a version 2 record; this crossroled reads version 1"),
        "{}",
        why(bad_specs[0].0)
    );
    assert!(why(bad_specs[1].0).contains("is not well-formed JSON"), "{}", why(bad_specs[1].0));
    assert!(why(bad_specs[2].0).contains("sealed with another journal key"), "{}", why(bad_specs[2].0));
    let shown = listed.iter().find(|o| o.id == bad_specs[0].0).unwrap();
    assert_eq!((shown.spec.as_ref().unwrap().name.as_str(), shown.created_by.as_str()), ("audit", "someone"));
    assert_eq!(shown.state, proto::OperationState::Succeeded as i32);
    // Getting one directly fails, naming it.
    for (id, _) in &bad_specs {
        match c.operation(id).await {
            Err(Error::Other { code: Code::DataLoss, message }) => assert!(message.contains(id), "{message}"),
            other => panic!("{id}: {other:?}"),
        }
    }

    // Account results: the readable ones, and the damaged one with its account and outcome.
    let request = proto::ListAccountResultsRequest { operation_id: op.id().into(), ..Default::default() };
    let results = c.list_account_results(request).await.unwrap().results;
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results.iter().filter(|r| r.unreadable.is_empty() && !r.role_arn.is_empty()).count(), 2);
    let damaged = results.iter().find(|r| r.account_id == account).unwrap();
    assert!(damaged.unreadable.contains(&format!("the result of account {account} of operation {}", op.id())));
    assert_eq!(damaged.outcome, proto::AccountOutcome::Changed as i32);
    // The operation itself still reads, its counts with it.
    assert!(c.operation(op.id()).await.unwrap().unreadable.is_empty());

    // Bindings: the readable one whole, the newer one by name and version.
    let listed = c.list_bindings(proto::ListBindingsRequest::default()).await.unwrap().bindings;
    assert_eq!(
        listed.iter().map(|b| (b.name.as_str(), b.unreadable.is_empty())).collect::<Vec<_>>(),
        [("audit-a", true), ("audit-b", false)]
    );
    assert!(listed[1].unreadable.contains("binding audit-b is a version 7 record"), "{}", listed[1].unreadable);
    assert_eq!(listed[1].version, 3);
    match c.binding("audit-b").await {
        Err(Error::Other { code: Code::DataLoss, message }) => assert!(message.contains("audit-b"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The metrics still count every binding.
    let metrics = metrics_page(h.server.metrics_addr.unwrap()).await;
    assert!(metrics.contains("crossrole_bindings 2"), "{metrics}");
    h.server.stop().await.unwrap();
}

/// The metrics page, over a plain TCP connection (HTTP/1.0).
async fn metrics_page(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
