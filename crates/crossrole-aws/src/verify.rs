//! Verification: does the role work for the trusted side?
//!
//! Two checks, both reported. The live check assumes the role as the trusted side (with the ExternalId) and asks
//! `GetCallerIdentity` which account the new credentials act in; IAM is eventually consistent, so a new role's
//! AccessDenied is waited out by the call layer ([`Patience`]) until a deadline. The static check
//! evaluates the role's trust policy as read from IAM for each granted principal — with the ExternalId and MFA it must be allowed, and without the ExternalId it
//! must be refused — which proves what no emulator enforces.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use crossrole_core::{
    names::{self, Partition},
    ops::{AssumeCheck, CheckOutcome, TrustCheck},
    policy::{
        PolicyDocument,
        eval::{Caller, evaluate},
    },
    secret::ExternalId,
    spec::AccessSpec,
};
use tokio::time::Instant;

use crate::{
    api::{AssumeRoleRequest, AwsConnector, Credentials},
    calls::{CallContext, CallPolicy, Patience, Quota},
    error::{AwsError, ErrorKind},
};

/// What a live check assumes, as whom.
#[derive(Debug, Clone)]
pub struct LiveCheck<'a> {
    /// The trusted side's credentials.
    pub as_credentials: &'a Credentials,
    /// Who that is, for the report.
    pub caller_arn: &'a str,
    /// The role to assume.
    pub role_arn: &'a str,
    /// The account the credentials must act in.
    pub account: &'a str,
    /// The ExternalId to present.
    pub external_id: Option<&'a ExternalId>,
    /// How long to retry while IAM propagates.
    pub timeout: Duration,
}

/// Assumes the role as the trusted side and checks the account it lands in, retrying until the timeout while
/// IAM propagates.
pub async fn live_check(
    connector: &dyn AwsConnector,
    calls: &CallPolicy,
    ctx: &CallContext,
    check: LiveCheck<'_>,
) -> AssumeCheck {
    let LiveCheck { as_credentials, caller_arn, role_arn, account, external_id, timeout } = check;
    let sts = connector.sts(Some(as_credentials));
    let request = AssumeRoleRequest {
        role_arn: role_arn.to_string(),
        session_name: "crossrole-verify".into(),
        external_id: external_id.cloned(),
        duration_seconds: 900,
    };
    // A new role is not assumable everywhere at once: AccessDenied and NotFound are waited out until the deadline.
    let patience = Patience {
        kinds: &[ErrorKind::AccessDenied, ErrorKind::NotFound],
        until: Instant::now() + timeout,
        base: Duration::from_millis(500),
        cap: Duration::from_secs(10),
    };
    let attempts = AtomicU32::new(0);
    let result = async {
        let creds = calls
            .call_patient(ctx, Quota::Sts(as_credentials.account_id.clone()), "AssumeRole", patience, || {
                attempts.fetch_add(1, Ordering::Relaxed);
                sts.assume_role(&request)
            })
            .await?;
        let assumed = connector.sts(Some(&creds));
        // The assumed session calls as the target account: its STS quota.
        calls
            .call(ctx, Quota::Sts(creds.account_id.clone()), "GetCallerIdentity", || assumed.get_caller_identity())
            .await
    }
    .await;
    let attempts = attempts.load(Ordering::Relaxed);
    let last_error: AwsError = {
        match result {
            Ok(identity) => {
                let landed = identity.account == account;
                return AssumeCheck {
                    outcome: if landed { CheckOutcome::Passed } else { CheckOutcome::Failed },
                    caller_arn: caller_arn.to_string(),
                    assumed_arn: identity.arn,
                    assumed_account_id: identity.account.clone(),
                    attempts,
                    error: if landed {
                        String::new()
                    } else {
                        format!("credentials act in {}, not {account}", identity.account)
                    },
                };
            }
            Err(e) => e,
        }
    };
    AssumeCheck {
        outcome: CheckOutcome::Failed,
        caller_arn: caller_arn.to_string(),
        assumed_arn: String::new(),
        assumed_account_id: String::new(),
        attempts,
        error: last_error.to_string(),
    }
}

/// The principals whose access the static check evaluates: the grant's users and roles (groups are not principals),
/// or, without a grant, the trusted principals and account roots of the spec.
pub fn principals_to_check(spec: &AccessSpec, partition: Partition) -> Vec<String> {
    if let Some(g) = &spec.grant {
        let mut out: Vec<String> =
            g.user_names.iter().map(|u| format!("arn:{partition}:iam::{}:user/{u}", g.account_id)).collect();
        out.extend(g.role_names.iter().map(|r| names::role_arn(partition, &g.account_id, "/", r)));
        if out.is_empty() {
            out.push(names::account_root_arn(partition, &g.account_id));
        }
        return out;
    }
    let trust = &spec.role.trust;
    let mut out: Vec<String> =
        trust.principal_arns.iter().filter(|p| *p != "*" && !p.contains('*') && !p.contains('?')).cloned().collect();
    out.extend(trust.account_ids.iter().map(|a| names::account_root_arn(partition, a)));
    out
}

/// Evaluates the role's trust policy as read from IAM (`observed_trust`, URL-encoded or not) for each principal.
pub fn static_checks(observed_trust: &str, spec: &AccessSpec, principals: &[String]) -> Vec<TrustCheck> {
    let policy = match PolicyDocument::parse_observed(observed_trust) {
        Ok(p) => p,
        Err(e) => {
            return vec![TrustCheck {
                principal_arn: String::new(),
                outcome: CheckOutcome::Failed,
                reason: format!(
                    "the trust policy in IAM does not parse: {}",
                    e.first().map(|v| v.to_string()).unwrap_or_default()
                ),
            }];
        }
    };
    let trust = &spec.role.trust;
    let mut out = Vec::new();
    for arn in principals {
        let caller = Caller {
            external_id: trust.external_id.as_ref().map(|e| e.expose().to_string()),
            mfa: Some(true),
            org_id: trust.principal_org_id.clone(),
            ..Caller::from_arn(arn)
        };
        let e = evaluate(&policy, &caller, "sts:AssumeRole");
        out.push(TrustCheck {
            principal_arn: arn.clone(),
            outcome: if e.allowed() { CheckOutcome::Passed } else { CheckOutcome::Failed },
            reason: e.reason,
        });
        if trust.external_id.is_some() {
            let without = Caller { external_id: None, ..caller.clone() };
            let wrong = Caller { external_id: Some("not-the-external-id".into()), ..caller.clone() };
            for (label, c) in [("without the ExternalId", without), ("with a wrong ExternalId", wrong)] {
                let e = evaluate(&policy, &c, "sts:AssumeRole");
                out.push(TrustCheck {
                    principal_arn: format!("{arn} ({label})"),
                    outcome: if e.allowed() { CheckOutcome::Failed } else { CheckOutcome::Passed },
                    reason: if e.allowed() {
                        format!("must be refused but is {}", e.reason)
                    } else {
                        format!("refused: {}", e.reason)
                    },
                });
            }
        }
        if trust.require_mfa {
            let no_mfa = Caller { mfa: None, ..caller };
            let e = evaluate(&policy, &no_mfa, "sts:AssumeRole");
            out.push(TrustCheck {
                principal_arn: format!("{arn} (without MFA)"),
                outcome: if e.allowed() { CheckOutcome::Failed } else { CheckOutcome::Passed },
                reason: if e.allowed() {
                    format!("must be refused but is {}", e.reason)
                } else {
                    format!("refused: {}", e.reason)
                },
            });
        }
    }
    out
}
