//! STS in the fake: roles must exist and their trust policies must allow the caller.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use crossrole_core::{
    names::Arn,
    policy::{
        PolicyDocument,
        eval::{Caller, evaluate},
    },
};
use rand::{Rng, distr::Alphanumeric};

use super::World;
use crate::{
    api::{AssumeRoleRequest, CallerIdentity, Credentials, StsApi},
    error::{AwsError, Service},
};

pub(crate) fn issue(world: &World, account: &str, principal_arn: &str) -> Credentials {
    let random = |n| rand::rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect::<String>();
    let key = format!("ASIAFAKE{}", random(12).to_uppercase());
    if let Ok(mut keys) = world.keys.lock() {
        keys.insert(key.clone(), (account.to_string(), principal_arn.to_string()));
    }
    Credentials {
        access_key_id: key,
        secret_access_key: random(40),
        session_token: random(64),
        expiration: SystemTime::now() + Duration::from_secs(3600),
        account_id: account.to_string(),
    }
}

pub(crate) fn identity(world: &World, c: &Credentials) -> Result<(String, String), AwsError> {
    world.keys.lock().ok().and_then(|k| k.get(&c.access_key_id).cloned()).ok_or_else(|| {
        AwsError::from_code(
            "sts",
            Some("InvalidClientTokenId"),
            Some(403),
            "The security token included in the request is invalid",
        )
    })
}

pub(crate) struct FakeSts {
    pub(crate) world: Arc<World>,
    pub(crate) identity: Result<(String, String), AwsError>,
}

#[async_trait]
impl StsApi for FakeSts {
    async fn assume_role(&self, request: &AssumeRoleRequest) -> Result<Credentials, AwsError> {
        let call = "sts:AssumeRole";
        let denied = |why: &str| AwsError::from_code(call, Some("AccessDenied"), Some(403), why);
        let target = Arn::parse(&request.role_arn).map(|a| a.account.to_string()).unwrap_or_default();
        let (caller_account, caller_arn) = self.identity.clone()?;
        // STS's quota is the caller's; failures are injected by the account assumed into.
        let ticket = self.world.enter(Service::Sts, "AssumeRole", &target, &caller_account).await?;
        ticket.leave(call, Ok(()))?;
        let role_name = request.role_arn.rsplit('/').next().unwrap_or_default().to_string();
        let trust = {
            let iam = self.world.iam.lock().unwrap_or_else(|e| e.into_inner());
            iam.get(&target)
                .and_then(|a| a.roles.get(&role_name))
                .filter(|r| r.arn == request.role_arn)
                .map(|r| r.trust.clone())
        };
        let Some(trust) = trust else {
            return Err(denied(&format!(
                "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {}",
                request.role_arn
            )));
        };
        let org_id = {
            let tree = self.world.tree.lock().unwrap_or_else(|e| e.into_inner());
            tree.accounts.contains_key(&caller_account).then(|| tree.organization.id.clone())
        };
        let policy = PolicyDocument::parse_observed(&trust).map_err(|_| denied("unparsable trust policy"))?;
        let caller = Caller {
            principal_arn: caller_arn.clone(),
            account_id: caller_account,
            external_id: request.external_id.as_ref().map(|e| e.expose().to_string()),
            mfa: None,
            org_id,
        };
        let decision = evaluate(&policy, &caller, "sts:AssumeRole");
        if !decision.allowed() {
            return Err(denied(&format!(
                "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {} ({})",
                request.role_arn, decision.reason
            )));
        }
        Ok(issue(&self.world, &target, &request.role_arn))
    }

    async fn get_caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let (account, arn) = self.identity.clone()?;
        let ticket = self.world.enter(Service::Sts, "GetCallerIdentity", &account, &account).await?;
        ticket.leave("sts:GetCallerIdentity", Ok(()))?;
        // A role session's identity is its assumed-role ARN.
        let arn = match Arn::parse(&arn) {
            Some(a) if a.resource.starts_with("role/") => {
                format!(
                    "arn:{}:sts::{}:assumed-role/{}/session",
                    a.partition,
                    a.account,
                    a.resource.rsplit('/').next().unwrap_or_default()
                )
            }
            _ => arn,
        };
        Ok(CallerIdentity { account, arn })
    }
}
