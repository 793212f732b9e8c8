//! Part B's ceiling: the same AWS calls crossrole makes for a create, issued directly through the AWS SDK (no
//! crossrole in between) at a given concurrency; and the clean-up between runs.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use crossrole_aws::{
    api::{AssumeRoleRequest, AwsConnector},
    sdk::SdkConnector,
};
use crossrole_core::plan::RoleAttributes;
use futures::{StreamExt, TryStreamExt};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
const INLINE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
const MANAGED: [&str; 2] = ["arn:aws:iam::aws:policy/SecurityAudit", "arn:aws:iam::aws:policy/ReadOnlyAccess"];

/// `ceiling <accounts file> <role> <concurrency> [--cleanup]`: prints accounts per second.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let [file, role, concurrency, rest @ ..] = args else {
        bail!("ceiling <accounts file> <role> <concurrency> [--cleanup]")
    };
    let accounts: Vec<String> =
        std::fs::read_to_string(file)?.lines().map(String::from).filter(|l| !l.is_empty()).collect();
    let concurrency: usize = concurrency.parse()?;
    let cleanup = rest.iter().any(|a| a == "--cleanup");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let aws = SdkConnector::from_env(None).await;
        let started = Instant::now();
        futures::stream::iter(accounts.iter())
            .map(|account| {
                let aws = &aws;
                async move {
                    let creds = aws
                        .sts(None)
                        .assume_role(&AssumeRoleRequest {
                            role_arn: format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"),
                            session_name: "bench-ceiling".into(),
                            external_id: None,
                            duration_seconds: 3600,
                        })
                        .await?;
                    let iam = aws.iam(&creds);
                    if cleanup {
                        for arn in MANAGED {
                            let _ = iam.detach_role_policy(role, arn).await;
                        }
                        let _ = iam.delete_role_policy(role, "deny").await;
                        let _ = iam.delete_role(role).await;
                        return Ok::<_, anyhow::Error>(());
                    }
                    iam.create_role(&RoleAttributes {
                        name: role.clone(),
                        path: "/crossrole/".into(),
                        description: String::new(),
                        max_session_duration: 3600,
                        trust_policy: TRUST.into(),
                        permissions_boundary_arn: None,
                        tags: Default::default(),
                    })
                    .await?;
                    for arn in MANAGED {
                        iam.attach_role_policy(role, arn).await?;
                    }
                    iam.put_role_policy(role, "deny", INLINE).await?;
                    Ok(())
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await
            .context("ceiling run")?;
        let secs = started.elapsed().as_secs_f64();
        println!("{}", accounts.len() as f64 / secs);
        Ok(())
    })
}
