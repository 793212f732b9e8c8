//! Revocation over the API: `RevokeSessions` wants an `apply` token, is audited, refuses bad requests by field,
//! revokes where the spec is placed (a spec's or a binding's), and an apply or a plan with `keep_sessions` revokes
//! nothing and says so.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::*;
use crossrole_client::{Error, RevokeTarget, proto};

const POLICY: &str = "AWSRevokeOlderSessions";

/// The API's access service as it is, for the request fields the SDK does not take.
async fn raw(
    h: &Harness,
) -> proto::access_service_client::AccessServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, impl tonic::service::Interceptor>,
> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", h.server.addr)).unwrap().connect().await;
    proto::access_service_client::AccessServiceClient::with_interceptor(channel.unwrap(), |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", "Bearer apply-token".parse().unwrap());
        Ok(r)
    })
}

fn account(i: u64) -> String {
    format!("{:012}", 200_000_000_000 + i)
}

fn has_revocation(h: &Harness, i: u64) -> bool {
    h.fake.role(&account(i), "Audit").is_some_and(|r| r.inline_policies.contains_key(POLICY))
}

#[tokio::test]
async fn revoke_sessions_over_the_api_scopes_audits_and_refuses_bad_requests() {
    let h = start(3, 0).await;
    let deployer = h.client("apply-token").await;
    let planner = h.client("plan-token").await;
    let done = deployer.apply(spec(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    assert!((0..3).all(|i| !has_revocation(&h, i)));

    // A plan token may not revoke.
    let refused = planner.revoke(RevokeTarget::Spec(Box::new(spec())), vec![], None).await;
    assert!(matches!(refused, Err(Error::PermissionDenied(_))), "{refused:?}");
    // Bad requests, each named by its field.
    for (target, accounts, field) in [
        (RevokeTarget::Binding(String::new()), vec![], "spec"),
        (RevokeTarget::Spec(Box::new(spec())), vec!["12345".to_string()], "account_ids"),
        (RevokeTarget::Spec(Box::new(spec())), vec![account(0), account(0)], "account_ids"),
        (RevokeTarget::Binding("nope".into()), vec![], "binding"),
    ] {
        let e = deployer.revoke(target, accounts, None).await.unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }

    let op = deployer
        .revoke(RevokeTarget::Spec(Box::new(spec())), vec![account(1)], None)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(op.kind, proto::OperationKind::Revoke as i32);
    assert_eq!(op.state, proto::OperationState::Succeeded as i32, "{}", op.message);
    assert!(has_revocation(&h, 1) && !has_revocation(&h, 0) && !has_revocation(&h, 2));
    let all = deployer.revoke(RevokeTarget::Spec(Box::new(spec())), vec![], None).await.unwrap().wait().await.unwrap();
    assert_eq!(all.state, proto::OperationState::Succeeded as i32, "{}", all.message);
    assert!((0..3).all(|i| has_revocation(&h, i)));

    // Audited: who, what, the operation it started.
    let audit = h
        .client("read-token")
        .await
        .list_audit_events(proto::ListAuditEventsRequest { method: "RevokeSessions".into(), ..Default::default() })
        .await
        .unwrap();
    assert!(audit.events.iter().any(|e| e.operation_id == op.id && e.caller == "deployer"), "{:?}", audit.events);
    assert!(audit.events.iter().any(|e| e.outcome != "ok"), "refusals are audited too");
}

#[tokio::test]
async fn an_apply_that_keeps_sessions_narrows_without_revoking_and_says_so() {
    let h = start(2, 0).await;
    let deployer = h.client("apply-token").await;
    deployer.apply(spec(), None).await.unwrap().wait().await.unwrap();
    // MFA required from now on: narrower.
    let mut narrower = spec();
    narrower.role.as_mut().unwrap().trust.as_mut().unwrap().require_mfa = true;
    let mut api = raw(&h).await;
    let plan = api
        .plan_access(proto::PlanAccessRequest {
            spec: Some(narrower.clone()),
            keep_sessions: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    let kinds: Vec<i32> = plan.accounts[0].changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [proto::ChangeKind::SessionsNotRevoked as i32, proto::ChangeKind::UpdateTrustPolicy as i32],
        "{:?}",
        plan.accounts[0].changes
    );
    let started = api
        .apply_access(proto::ApplyAccessRequest {
            spec: Some(narrower.clone()),
            keep_sessions: true,
            plan_fingerprint: plan.fingerprint.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let op = deployer.operation_handle(started.id).wait().await.unwrap();
    assert_eq!(op.state, proto::OperationState::Succeeded as i32, "{}", op.message);
    assert!((0..2).all(|i| !has_revocation(&h, i)), "kept, as asked");
    // Without it, the same narrowing (MFA and an organization now) revokes once the trust is written.
    narrower.role.as_mut().unwrap().trust.as_mut().unwrap().principal_org_id = "o-abcdefghij".into();
    deployer.apply(narrower, None).await.unwrap().wait().await.unwrap();
    assert!((0..2).all(|i| has_revocation(&h, i)));
}
