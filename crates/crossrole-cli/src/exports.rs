//! `crossrole links` and `crossrole export`: what people copy to use a spec's role. Only the accounts where
//! crossrole applied the spec are given (the role there is crossrole's) unless `--include-unapplied` asks for the
//! rest; the accounts left out are named on stderr, with why, so stdout stays what a tool reads.

use std::path::PathBuf;

use crossrole_client::{Client, proto};

use crate::{Failure, Outcome, Output, access, json, views};

/// Links.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LinksArgs {
    #[command(flatten)]
    spec: access::SpecArgs,
    /// Also give links for target accounts where crossrole has not applied the spec: the role there may be someone
    /// else's, or missing.
    #[arg(long)]
    include_unapplied: bool,
}

/// Export.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ExportArgs {
    /// The spec file.
    #[arg(long, short)]
    file: PathBuf,
    /// Format: `aws-config` (~/.aws/config profiles), `aesr` (AWS Extend Switch Roles), `granted` (a granted profile
    /// registry: needs --out), `json`.
    #[arg(long, default_value = "aws-config", value_parser = ["aws-config", "aws-cli", "aesr", "granted", "json"])]
    format: String,
    /// The profile with the trusted side's credentials (`source_profile`): needed for aws-config and granted.
    #[arg(long)]
    source_profile: Option<String>,
    /// MFA device ARN, for roles that require MFA.
    #[arg(long)]
    mfa_serial: Option<String>,
    /// How profiles are named: `${spec}`, `${account_name}`, `${account_id}` [default: ${spec}-${account_name}].
    #[arg(long)]
    profile_name: Option<String>,
    /// Each profile's session, e.g. 4h, or `max` for the role's maximum [default: 1h, the most AWS allows when the
    /// source profile is itself a role or an SSO session; longer needs long-term IAM user credentials].
    #[arg(long)]
    duration: Option<String>,
    /// Also export target accounts where crossrole has not applied the spec: the role there may be someone else's,
    /// or missing.
    #[arg(long)]
    include_unapplied: bool,
    /// Write to this folder instead of printing (granted: the registry's granted.yml and its profiles).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Says on stderr which accounts were left out and why, accounts with the same reason together.
fn say_left_out(left_out: &[proto::LeftOutAccount]) {
    let mut by_reason: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for l in left_out {
        let name = if l.account_name.is_empty() { String::new() } else { format!(" ({})", l.account_name) };
        by_reason.entry(l.reason.as_str()).or_default().push(format!("{}{name}", l.account_id));
    }
    for (reason, accounts) in by_reason {
        let mut shown: Vec<String> = accounts.iter().take(10).cloned().collect();
        if accounts.len() > 10 {
            shown.push(format!("and {} more", accounts.len() - 10));
        }
        eprintln!("left out {}: {}: {reason}", views::count(accounts.len(), "account"), shown.join(", "));
    }
}

pub(crate) async fn links(client: &Client, args: LinksArgs, out: Output) -> Outcome {
    let spec = access::load(&args.spec.file)?;
    let request = proto::GetSwitchRoleLinksRequest { spec: Some(spec), include_unapplied: args.include_unapplied };
    let response = client.links(request).await?;
    let links = response.links;
    match out {
        Output::Json => json::print(&links.iter().map(json::Link::from).collect::<Vec<_>>()),
        Output::Table if links.is_empty() => println!("No links: crossrole has applied the spec in no target account."),
        Output::Table => print_links(&links),
    }
    say_left_out(&response.left_out);
    Ok(())
}

fn print_links(links: &[proto::SwitchRoleLink]) {
    let name = |l: &proto::SwitchRoleLink| {
        if l.applied { l.account_name.clone() } else { format!("{} (not applied by crossrole)", l.account_name) }
    };
    // One reason for every account (e.g. the role requires an ExternalId): say it once.
    let reasons: std::collections::BTreeSet<&str> = links.iter().map(|l| l.unusable_reason.as_str()).collect();
    if let (1, Some(reason)) = (reasons.len(), reasons.iter().next().filter(|r| !r.is_empty())) {
        println!("No console links: {reason}.");
        let mut t = views::table(&["ACCOUNT", "NAME", "ROLE ARN"]);
        for l in links {
            t.add_row(vec![l.account_id.clone(), name(l), l.role_arn.clone()]);
        }
        println!("{t}");
        return;
    }
    let mut t = views::table(&["ACCOUNT", "NAME", "SWITCH ROLE"]);
    for l in links {
        let link = if l.url.is_empty() { format!("(no console link: {})", l.unusable_reason) } else { l.url.clone() };
        t.add_row(vec![l.account_id.clone(), name(l), link]);
    }
    println!("{t}");
}

/// `--duration` in seconds: a duration, or `max` for the role's maximum session.
fn duration_seconds(given: Option<&str>, spec: &proto::AccessSpec) -> Result<u32, Failure> {
    let Some(given) = given else { return Ok(0) };
    let seconds = if given == "max" {
        let max = spec.role.as_ref().and_then(|r| r.max_session_duration).map(|d| d.seconds).unwrap_or(3600);
        max.max(0) as u64
    } else {
        let d = humantime::parse_duration(given).map_err(|e| {
            Failure::usage(format!("--duration {given:?}: not a duration like 1h or 90m, nor max: {e}"))
        })?;
        d.as_secs()
    };
    u32::try_from(seconds).map_err(|_| Failure::usage(format!("--duration {given:?}: longer than any session")))
}

/// The request, each flag checked here first so that its error names the flag.
fn request(
    args: &ExportArgs,
    spec: proto::AccessSpec,
    format: proto::ExportFormat,
) -> Result<proto::ExportProfilesRequest, Failure> {
    let source_profile = match (&args.source_profile, format) {
        (Some(p), _) => p.clone(),
        (None, proto::ExportFormat::AwsConfig) => {
            return Err(Failure::usage(format!(
                "--format {} writes AWS config profiles, which need --source-profile <profile>: the profile that \
                 holds the trusted side's credentials",
                args.format
            )));
        }
        (None, _) => String::new(),
    };
    if let Some(template) = &args.profile_name {
        crossrole_core::export::check_name_template(template)
            .map_err(|rule| Failure::usage(format!("--profile-name {template:?} {rule}")))?;
    }
    Ok(proto::ExportProfilesRequest {
        duration_seconds: duration_seconds(args.duration.as_deref(), &spec)?,
        spec: Some(spec),
        source_profile,
        format: format as i32,
        mfa_serial: args.mfa_serial.clone().unwrap_or_default(),
        profile_name_template: args.profile_name.clone().unwrap_or_default(),
        include_unapplied: args.include_unapplied,
    })
}

pub(crate) async fn export(client: &Client, args: ExportArgs) -> Outcome {
    let spec = access::load(&args.file)?;
    let spec_name = spec.name.clone();
    let (format, file) = match args.format.as_str() {
        "aesr" => (proto::ExportFormat::Aesr, format!("crossrole-{spec_name}.aesr.ini")),
        "json" => (proto::ExportFormat::Json, format!("crossrole-{spec_name}.json")),
        _ => (proto::ExportFormat::AwsConfig, format!("crossrole-{spec_name}.config")),
    };
    let granted = args.format == "granted";
    if granted && args.out.is_none() {
        return Err(Failure::usage(
            "--format granted writes a profile registry, a folder (granted.yml and the profiles): give --out <folder>",
        ));
    }
    let r = client.export_profiles(request(&args, spec, format)?).await?;
    say_left_out(&r.left_out);
    let Some(out) = &args.out else {
        print!("{}", r.content);
        eprintln!("{}", views::count(r.profile_count as usize, "profile"));
        return Ok(());
    };
    if granted && r.content.contains("external_id") {
        eprintln!(
            "warning: this granted registry holds ExternalIds (your token may read them), and a registry is made to \
             be committed to a repository that others read: keep it private, or export with a token that may not \
             read ExternalIds and let each person add `external_id` to their own profile"
        );
    }
    write(out, &file, &r.content)?;
    if granted {
        write(out, "granted.yml", &crossrole_core::export::granted_registry(&file))?;
    }
    eprintln!("{}", views::count(r.profile_count as usize, "profile"));
    Ok(())
}

/// Writes `text` to `name` in `folder`: created 0600, never through a link at the path (an export may hold
/// ExternalIds).
fn write(folder: &std::path::Path, name: &str, text: &str) -> Outcome {
    let path = folder.join(name);
    std::fs::create_dir_all(folder)
        .and_then(|()| crate::files::write_private(&path, text))
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
