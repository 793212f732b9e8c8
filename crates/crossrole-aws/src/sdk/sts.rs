//! STS over the SDK.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sts::Client;
use crossrole_core::names::Arn;

use super::{map_err, provider};
use crate::{
    api::{AssumeRoleRequest, CallerIdentity, Credentials, StsApi},
    error::AwsError,
};

pub(super) struct SdkSts {
    client: Client,
}

impl SdkSts {
    pub(super) fn new(config: &SdkConfig, credentials: Option<&Credentials>) -> Self {
        let mut builder = aws_sdk_sts::config::Builder::from(config);
        if let Some(c) = credentials {
            builder = builder.credentials_provider(provider(c));
        }
        SdkSts { client: Client::from_conf(builder.build()) }
    }
}

#[async_trait]
impl StsApi for SdkSts {
    async fn assume_role(&self, request: &AssumeRoleRequest) -> Result<Credentials, AwsError> {
        let call = "sts:AssumeRole";
        let out = self
            .client
            .assume_role()
            .role_arn(&request.role_arn)
            .role_session_name(&request.session_name)
            .set_external_id(request.external_id.as_ref().map(|e| e.expose().to_string()))
            .duration_seconds(request.duration_seconds as i32)
            .send()
            .await
            .map_err(|e| map_err(call, e))?;
        let c =
            out.credentials().ok_or_else(|| AwsError::from_code(call, None, None, "no credentials in the response"))?;
        let account = Arn::parse(&request.role_arn).map(|a| a.account.to_string()).unwrap_or_default();
        Ok(Credentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().to_string(),
            expiration: std::time::SystemTime::try_from(*c.expiration())
                .unwrap_or_else(|_| std::time::SystemTime::now()),
            account_id: account,
        })
    }

    async fn get_caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let out = self.client.get_caller_identity().send().await.map_err(|e| map_err("sts:GetCallerIdentity", e))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().into(),
            arn: out.arn().unwrap_or_default().into(),
        })
    }
}
