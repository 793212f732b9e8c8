//! `crossrole console <account> -f spec.yaml` (or `--binding <name>`): console sign-in for any role, ExternalId or
//! not.
//!
//! The console's Switch Role page cannot send an ExternalId, so a role that requires one is out of its reach. This
//! command does what the console cannot: it assumes the role with the user's own AWS credentials (the standard
//! chain, or `--profile`), with the ExternalId the user holds (`CROSSROLE_EXTERNAL_ID` or `--external-id-file`;
//! crossroled never hands it out in clear) and MFA when the role requires it, then asks the partition's federation
//! endpoint for a sign-in token and prints (or opens) the console URL.
//!
//! AWS's session rules, which the errors explain: a sign-in session longer than the default needs credentials
//! assumed with long-term (IAM user) credentials; assuming a role with temporary credentials is role chaining,
//! which AWS caps at one hour, and the federation endpoint then refuses a `SessionDuration` altogether.
//!
//! crossroled is asked only which target account is meant and whether crossrole applied the spec there (given a
//! binding, or an account by name): an account where it did not (the spec never applied, or a role of that name
//! that is not crossrole's) is refused unless `--include-unapplied` says otherwise. Given an account id and a spec
//! file, crossroled is not needed, and nothing is checked. The URL this prints signs whoever opens it in for
//! fifteen minutes; the credentials themselves are never printed. When the session ends, the console sends people
//! to the `Issuer` page: the partition's console sign-in page unless `--issuer` names one's own.

use std::{io::Write, path::PathBuf, time::Duration};

use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError};
use crossrole_client::{Client, proto};
use crossrole_core::{AccessSpec, Partition, links, names};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;

use crate::{Failure, Outcome, access};

/// Console sign-in.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConsoleArgs {
    /// The account: its 12-digit id, or its name in the organization (looked up through crossroled).
    account: String,
    /// The spec whose role to sign in as.
    #[arg(long, short, required_unless_present = "binding", conflicts_with = "binding")]
    file: Option<PathBuf>,
    /// The binding whose role to sign in as (its spec read from crossroled).
    #[arg(long)]
    binding: Option<String>,
    /// The AWS profile whose credentials assume the role [default: the standard chain].
    #[arg(long)]
    profile: Option<String>,
    /// The MFA device's ARN, when the role requires MFA [default: the profile's `mfa_serial`].
    #[arg(long)]
    mfa_serial: Option<String>,
    /// The MFA code; asked for on the terminal when needed and not given.
    #[arg(long)]
    mfa_code: Option<String>,
    /// A file holding the role's ExternalId (or set CROSSROLE_EXTERNAL_ID).
    #[arg(long)]
    external_id_file: Option<PathBuf>,
    /// How long the console session lasts, e.g. 4h [default: the role's maximum; 1h with temporary credentials].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Where the sign-in lands, e.g. https://console.aws.amazon.com/iam/home [default: the console's home].
    #[arg(long)]
    destination: Option<String>,
    /// The federation endpoint [default: the partition's, e.g. https://signin.aws.amazon.com/federation].
    #[arg(long, env = "CROSSROLE_FEDERATION_ENDPOINT")]
    federation_endpoint: Option<String>,
    /// Where the console sends people when the session ends, e.g. your organization's sign-in page [default: the
    /// partition's console sign-in page, e.g. https://signin.aws.amazon.com/console].
    #[arg(long, env = "CROSSROLE_CONSOLE_ISSUER")]
    issuer: Option<String>,
    /// Sign in also where crossrole has not applied the spec (the role there may be someone else's).
    #[arg(long)]
    include_unapplied: bool,
    /// Open the URL in the browser instead of printing it (printed all the same when no browser opens).
    #[arg(long)]
    open: bool,
}

impl ConsoleArgs {
    /// Whether crossroled is not needed: the account given by id and the spec by file.
    pub(crate) fn by_id(&self) -> bool {
        names::is_account_id(&self.account) && self.binding.is_none()
    }
}

pub(crate) async fn run(client: Option<&Client>, args: ConsoleArgs) -> Outcome {
    let wire = match (&args.file, &args.binding, client) {
        (Some(file), _, _) => access::load(file)?,
        (None, Some(name), Some(client)) => {
            client.binding(name).await?.spec.ok_or_else(|| Failure::usage(format!("binding {name} has no spec")))?
        }
        _ => return Err(Failure::usage("give the spec: -f <file> or --binding <name>")),
    };
    let spec = crossrole_wire::spec(Some(&wire)).map_err(|e| Failure::usage(e.to_string()))?;
    let account = match client {
        Some(client) if !args.by_id() => target_account(client, &wire, &args).await?,
        _ => args.account.clone(),
    };
    let external_id = external_id(&spec, &args)?;
    let issuer = issuer(&args)?;

    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(p) = &args.profile {
        loader = loader.profile_name(p);
    }
    let config = loader.load().await;
    let partition = partition_of(config.region().map(|r| r.as_ref()).unwrap_or("us-east-1"));
    let provider = config.credentials_provider().ok_or_else(|| {
        Failure::usage("no AWS credentials: set AWS_PROFILE, use --profile, or sign in (aws sso login)")
    })?;
    let source = provider.provide_credentials().await.map_err(|e| credentials_failure(&e))?;
    let chained = source.session_token().is_some();

    let role = &spec.role;
    let role_max = role.max_session_duration;
    let wanted = args.duration.unwrap_or(if chained { Duration::from_secs(3600).min(role_max) } else { role_max });
    if !(Duration::from_secs(900)..=Duration::from_secs(43_200)).contains(&wanted) {
        return Err(Failure::usage("--duration: a console session lasts from 15 minutes to 12 hours"));
    }
    if wanted > role_max {
        return Err(Failure::usage(format!(
            "--duration {}: the role's maximum session is {} (role.max_session_duration)",
            humantime::format_duration(wanted),
            humantime::format_duration(role_max)
        )));
    }
    if chained && wanted > Duration::from_secs(3600) {
        return Err(Failure::usage(format!(
            "--duration {}: your credentials are temporary (a session token: SSO, an assumed role, or an MFA \
             session), so assuming the role is role chaining, which AWS caps at one hour; use long-term IAM user \
             credentials for a longer console session",
            humantime::format_duration(wanted)
        )));
    }

    let role_arn = names::role_arn(partition, &account, &role.path, &role.name);
    let sts = aws_sdk_sts::Client::new(&config);
    let mut assume = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name(session_name())
        .duration_seconds(wanted.as_secs() as i32);
    if let Some(id) = &external_id {
        assume = assume.external_id(id);
    }
    if let Some((serial, code)) = mfa(&spec, &args).await? {
        assume = assume.serial_number(serial).token_code(code);
    }
    let assumed = assume.send().await.map_err(|e| {
        Failure::accounts(format!("cannot assume {role_arn}: {}", aws_sdk_sts::error::DisplayErrorContext(&e)))
    })?;
    let credentials = assumed.credentials().ok_or_else(|| Failure::accounts("AssumeRole returned no credentials"))?;

    let endpoint = args.federation_endpoint.clone().unwrap_or_else(|| links::federation_endpoint(partition));
    let session = links::federation_session(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        credentials.session_token(),
    );
    // The federation endpoint refuses SessionDuration for a role-chained session: it lasts what AssumeRole gave.
    let duration = (!chained).then_some(wanted.as_secs() as u32);
    let token = signin_token(&links::signin_token_url(&endpoint, &session, duration)).await?;
    let destination = args.destination.clone().unwrap_or_else(|| links::console_home(partition).to_string());
    let url = links::console_login_url(
        &endpoint,
        &token,
        &issuer.unwrap_or_else(|| links::console_signin_page(partition)),
        &destination,
    );
    eprintln!(
        "signed in as {role_arn} for {} (the URL works for 15 minutes; whoever opens it is signed in)",
        humantime::format_duration(wanted)
    );
    let opener = args.open.then_some(if cfg!(target_os = "macos") { "open" } else { "xdg-open" });
    deliver(&url, opener, &mut std::io::stdout(), &mut std::io::stderr());
    Ok(())
}

/// The credentials could not be loaded: none found is said in plain words, with what to do.
fn credentials_failure(e: &CredentialsError) -> Failure {
    if let CredentialsError::CredentialsNotLoaded(_) = e {
        return Failure::usage(
            "no AWS credentials found (not in the environment, the AWS config and credentials files, SSO, nor this \
             machine's role): sign in (aws sso login), give --profile <name>, or set AWS_PROFILE",
        );
    }
    Failure::usage(format!("cannot load your AWS credentials: {}", aws_sdk_sts::error::DisplayErrorContext(e)))
}

/// `--issuer`, when given: a URL, where the console sends people when the session ends.
fn issuer(args: &ConsoleArgs) -> Result<Option<String>, Failure> {
    match &args.issuer {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => Err(Failure::usage(format!(
            "--issuer {url:?}: must be a URL (https://…), the page people land on when the console session ends"
        ))),
        other => Ok(other.clone()),
    }
}

/// The target account meant (by id or by name), refused where crossrole has not applied the spec unless
/// `--include-unapplied`.
async fn target_account(client: &Client, spec: &proto::AccessSpec, args: &ConsoleArgs) -> Result<String, Failure> {
    let request = proto::GetSwitchRoleLinksRequest { spec: Some(spec.clone()), include_unapplied: true };
    let targets = client.links(request).await?.links;
    let given = &args.account;
    let by_id = names::is_account_id(given);
    let found: Vec<&proto::SwitchRoleLink> =
        targets.iter().filter(|a| if by_id { &a.account_id == given } else { &a.account_name == given }).collect();
    let target = match found.as_slice() {
        [one] => *one,
        [] if by_id => return Err(Failure::usage(format!("account {given} is not among the spec's targets"))),
        [] => {
            return Err(Failure::usage(format!(
                "no account named {given:?} among the spec's targets; give its id instead"
            )));
        }
        _ => return Err(Failure::usage(format!("{} accounts are named {given:?}; give the id instead", found.len()))),
    };
    if !target.applied && !args.include_unapplied {
        return Err(Failure::usage(format!(
            "crossrole has not applied spec {} in account {} ({}): it was never applied there, or the role there is \
             not crossrole's; see the plan, or give --include-unapplied to sign in anyway",
            spec.name, target.account_id, target.account_name
        )));
    }
    Ok(target.account_id.clone())
}

/// The ExternalId the user holds, when the role requires one.
fn external_id(spec: &AccessSpec, args: &ConsoleArgs) -> Result<Option<String>, Failure> {
    if spec.role.trust.external_id.is_none() {
        return Ok(None);
    }
    let given = match (&args.external_id_file, std::env::var("CROSSROLE_EXTERNAL_ID")) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| Failure::usage(format!("--external-id-file {}: {e}", path.display())))?,
        (None, Ok(id)) => id.trim().to_string(),
        (None, Err(_)) => {
            return Err(Failure::usage(
                "the role requires an ExternalId: set CROSSROLE_EXTERNAL_ID or give --external-id-file (the one you \
                 were given; crossroled does not hand it out)",
            ));
        }
    };
    names::check_external_id(&given).map_err(|rule| Failure::usage(format!("the ExternalId given {rule}")))?;
    Ok(Some(given))
}

/// The MFA device and code, when the role requires MFA or a device is given.
async fn mfa(spec: &AccessSpec, args: &ConsoleArgs) -> Result<Option<(String, String)>, Failure> {
    let serial = match &args.mfa_serial {
        Some(s) => Some(s.clone()),
        None => profile_mfa_serial(args.profile.as_deref()).await,
    };
    let Some(serial) = serial else {
        if spec.role.trust.require_mfa {
            return Err(Failure::usage(
                "the role requires MFA: give --mfa-serial (your MFA device's ARN) or set mfa_serial in your profile",
            ));
        }
        return Ok(None);
    };
    let code = match &args.mfa_code {
        Some(c) => c.clone(),
        None => {
            eprint!("MFA code for {serial}: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map_err(|e| Failure::usage(format!("reading the MFA code: {e}")))?;
            line.trim().to_string()
        }
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Failure::usage("the MFA code is six digits"));
    }
    Ok(Some((serial, code)))
}

/// `mfa_serial` of the profile in use, from the AWS config files.
async fn profile_mfa_serial(profile: Option<&str>) -> Option<String> {
    let fs = aws_types::os_shim_internal::Fs::real();
    let env = aws_types::os_shim_internal::Env::real();
    let set = aws_config::profile::load(&fs, &env, &Default::default(), None).await.ok()?;
    let name =
        profile.map(String::from).or_else(|| std::env::var("AWS_PROFILE").ok()).unwrap_or_else(|| "default".into());
    set.get_profile(&name)?.get("mfa_serial").map(String::from)
}

/// The partition of a region.
fn partition_of(region: &str) -> Partition {
    if region.starts_with("us-gov-") {
        Partition::AwsUsGov
    } else if region.starts_with("cn-") {
        Partition::AwsCn
    } else {
        Partition::Aws
    }
}

/// The session name AWS records (CloudTrail): who signed in through crossrole.
fn session_name() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let name: String = format!("crossrole-{user}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "=,.@-_".contains(c) { c } else { '-' })
        .take(64)
        .collect();
    name
}

/// Asks the federation endpoint for a sign-in token.
async fn signin_token(url: &str) -> Result<String, Failure> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| Failure::usage(format!("no TLS root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Empty<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
    let uri: hyper::Uri = url.parse().map_err(|e| Failure::usage(format!("the federation endpoint: {e}")))?;
    let endpoint = format!(
        "{}://{}{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map(|a| a.as_str()).unwrap_or(""),
        uri.path()
    );
    let response = tokio::time::timeout(Duration::from_secs(30), client.get(uri))
        .await
        .map_err(|_| Failure::accounts(format!("{endpoint} did not answer within 30s")))?
        .map_err(|e| Failure::accounts(format!("{endpoint}: {e}")))?;
    let status = response.status();
    let body =
        response.into_body().collect().await.map_err(|e| Failure::accounts(format!("{endpoint}: {e}")))?.to_bytes();
    if !status.is_success() {
        return Err(Failure::accounts(format!(
            "{endpoint} refused the sign-in ({status}): {}",
            String::from_utf8_lossy(&body).chars().take(300).collect::<String>()
        )));
    }
    let parsed: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Failure::accounts(format!("{endpoint} answered something other than JSON: {e}")))?;
    parsed["SigninToken"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| Failure::accounts(format!("{endpoint} answered without a SigninToken")))
}

/// Opens `url` with `opener` (the browser), or prints it on `out`: printed too when no browser opens, so the
/// person always has it.
fn deliver(url: &str, opener: Option<&str>, out: &mut dyn Write, err: &mut dyn Write) {
    let Some(opener) = opener else {
        let _ = writeln!(out, "{url}");
        return;
    };
    let why = match std::process::Command::new(opener).arg(url).status() {
        Ok(status) if status.success() => return,
        Ok(status) => format!("{opener} failed ({status})"),
        Err(e) => format!("cannot run {opener} to open a browser: {e}"),
    };
    let _ = writeln!(err, "{why}; open this URL yourself:");
    let _ = writeln!(out, "{url}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_browser_the_url_is_printed() {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        deliver("https://signin.example/x", Some("crossrole-test-no-such-opener"), &mut out, &mut err);
        assert_eq!(String::from_utf8_lossy(&out), "https://signin.example/x\n");
        assert!(String::from_utf8_lossy(&err).contains("open this URL yourself"));
        let mut printed = Vec::new();
        deliver("https://signin.example/y", None, &mut printed, &mut Vec::new());
        assert_eq!(String::from_utf8_lossy(&printed), "https://signin.example/y\n");
    }

    #[test]
    fn no_credentials_found_is_said_in_plain_words() {
        let f = credentials_failure(&CredentialsError::not_loaded("the credential provider was not enabled"));
        assert!(f.message.starts_with("no AWS credentials found"), "{}", f.message);
        assert!(!f.message.contains("was not enabled"), "{}", f.message);
    }

    #[test]
    fn partitions_from_regions() {
        assert_eq!(partition_of("eu-west-1"), Partition::Aws);
        assert_eq!(partition_of("us-gov-west-1"), Partition::AwsUsGov);
        assert_eq!(partition_of("cn-north-1"), Partition::AwsCn);
    }
}
