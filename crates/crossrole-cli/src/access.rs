//! Spec commands: validate, plan, apply, destroy, verify, links, export.

use std::{io::IsTerminal, path::PathBuf};

use crossrole_client::{Client, proto};
use crossrole_core::AccessSpec;
use crossrole_wire::ToWire;

use crate::{Failure, Outcome, Output, json, progress, views};

/// A spec file.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SpecArgs {
    /// The spec file (YAML, or JSON by its .json extension).
    #[arg(long, short)]
    pub(crate) file: PathBuf,
}

/// Apply and destroy.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ApplyArgs {
    /// The spec file.
    #[arg(long, short)]
    file: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    yes: bool,
    /// Idempotency key: running the same command again with it follows the same operation.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Start the operation, print its id and return without following it.
    #[arg(long)]
    no_wait: bool,
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
    /// The profile with the trusted side's credentials.
    #[arg(long)]
    source_profile: String,
    /// MFA device ARN, for roles that require MFA.
    #[arg(long)]
    mfa_serial: Option<String>,
    /// How profiles are named: `${spec}`, `${account_name}`, `${account_id}` [default: ${spec}-${account_name}].
    #[arg(long)]
    profile_name: Option<String>,
    /// Write to this folder instead of printing (granted: the registry's granted.yml and its profiles).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Loads and validates a spec file locally.
pub(crate) fn load(path: &PathBuf) -> Result<proto::AccessSpec, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        AccessSpec::from_json(&text)
    } else {
        AccessSpec::from_yaml(&text)
    };
    match parsed {
        Ok(spec) => Ok(spec.to_wire()),
        Err(e) => {
            let mut message = format!("{} is not a valid spec:", path.display());
            for v in e.violations() {
                message.push_str(&format!("\n  {v}"));
            }
            Err(Failure::usage(message))
        }
    }
}

fn finding_line(f: &proto::Finding) -> String {
    let severity = proto::FindingSeverity::try_from(f.severity)
        .map(|s| views::short(s.as_str_name(), "FINDING_SEVERITY_"))
        .unwrap_or_default();
    let guardrail = proto::Guardrail::try_from(f.guardrail)
        .map(|g| views::short(g.as_str_name(), "GUARDRAIL_").replace('_', "-"))
        .unwrap_or_default();
    let waived = if f.waiver_reason.is_empty() { String::new() } else { format!(" (waived: {})", f.waiver_reason) };
    format!("{severity} {guardrail} at {}: {}{waived}", f.field, f.message)
}

pub(crate) async fn validate(client: &Client, args: SpecArgs, out: Output) -> Outcome {
    let spec = load(&args.file)?;
    let r = client.validate(spec).await?;
    match out {
        Output::Json => json::print(&json::Validation {
            valid: true,
            findings: r.findings.iter().map(finding_line).collect(),
            trust_policy: &r.trust_policy,
        }),
        Output::Table => {
            println!("{} is valid.", args.file.display());
            for f in &r.findings {
                println!("  {}", finding_line(f));
            }
            println!("trust policy:\n{}", r.trust_policy);
        }
    }
    Ok(())
}

fn print_plan(plan: &proto::AccessPlan) {
    for f in &plan.findings {
        println!("{}", finding_line(f));
    }
    // Accounts that get the same changes are shown together: plans of large organizations stay readable.
    let mut groups: std::collections::BTreeMap<Vec<String>, Vec<&proto::AccountPlan>> =
        std::collections::BTreeMap::new();
    let mut t = views::table(&["ACCOUNTS", "STATUS", "CHANGES"]);
    for a in &plan.accounts {
        if a.status == proto::AccountPlanStatus::Changes as i32 {
            groups.entry(a.changes.iter().map(views::change_line).collect()).or_default().push(a);
        }
    }
    let names = |accounts: &[&proto::AccountPlan]| {
        let mut shown: Vec<String> =
            accounts.iter().take(4).map(|a| format!("{} {}", a.account_id, a.account_name)).collect();
        if accounts.len() > 4 {
            shown.push(format!("… and {} more", accounts.len() - 4));
        }
        format!("{} accounts\n{}", accounts.len(), shown.join("\n"))
    };
    for (changes, accounts) in &groups {
        t.add_row(vec![names(accounts), "changes".to_string(), changes.join("\n")]);
    }
    for a in plan.accounts.iter().filter(|a| {
        a.status != proto::AccountPlanStatus::Changes as i32 && a.status != proto::AccountPlanStatus::InSync as i32
    }) {
        let detail = match &a.error {
            Some(e) => e.message.clone(),
            None => a.findings.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; "),
        };
        t.add_row(vec![format!("{} {}", a.account_id, a.account_name), views::plan_status(a.status), detail]);
    }
    let in_sync: Vec<&proto::AccountPlan> =
        plan.accounts.iter().filter(|a| a.status == proto::AccountPlanStatus::InSync as i32).collect();
    if !in_sync.is_empty() {
        t.add_row(vec![names(&in_sync), "in sync".to_string(), String::new()]);
    }
    println!("{t}");
    if let Some(g) = &plan.grant {
        if let Some(e) = &g.error {
            println!("trusted side ({}): cannot plan: {}", g.account_id, e.message);
        } else if g.changes.is_empty() {
            println!("trusted side ({}): {} is in sync", g.account_id, g.policy_arn);
        } else {
            println!("trusted side ({}):", g.account_id);
            for c in &g.changes {
                println!("  {}", views::change_line(c));
            }
        }
    }
    for s in &plan.skipped {
        println!("skipped {}: {}", s.account.as_ref().map(|a| a.id.as_str()).unwrap_or(""), s.reason);
    }
    let count = |st: proto::AccountPlanStatus| plan.accounts.iter().filter(|a| a.status == st as i32).count();
    println!(
        "Plan: {} changes in {} accounts; {} in sync, {} conflicts, {} could not be read.",
        plan.total_changes,
        plan.accounts_with_changes,
        count(proto::AccountPlanStatus::InSync),
        count(proto::AccountPlanStatus::Conflict),
        count(proto::AccountPlanStatus::Failed)
    );
    if !plan.external_id_note.is_empty() {
        println!("Note: {}.", plan.external_id_note);
    }
}

pub(crate) async fn plan(client: &Client, args: SpecArgs, out: Output) -> Outcome {
    let spec = load(&args.file)?;
    let plan = client.plan(spec).await?;
    match out {
        Output::Json => json::print(&json::Plan::new(&plan, finding_line)),
        Output::Table => print_plan(&plan),
    }
    if plan.accounts.iter().any(|a| a.status == proto::AccountPlanStatus::Failed as i32) {
        return Err(Failure::accounts(""));
    }
    Ok(())
}

fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage("refusing to change anything without --yes in a non-interactive session"));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub(crate) async fn apply(client: &Client, args: ApplyArgs, out: Output, kind: proto::OperationKind) -> Outcome {
    let spec = load(&args.file)?;
    let human = out == Output::Table;
    if kind == proto::OperationKind::Apply {
        let plan = client.plan(spec.clone()).await?;
        if human {
            print_plan(&plan);
        }
        if plan.total_changes == 0 {
            if human {
                println!("Nothing to change.");
            } else {
                json::print(&json::NoChanges { changes: 0 });
            }
            return Ok(());
        }
        if !args.yes
            && !confirm(&format!("Apply {} changes in {} accounts?", plan.total_changes, plan.accounts_with_changes))?
        {
            return Err(Failure::usage("not applied"));
        }
    } else {
        let targets = client
            .list_accounts(proto::ListAccountsRequest {
                selector: spec.targets.clone(),
                page_size: 1,
                ..Default::default()
            })
            .await?
            .total_size;
        let role = spec.role.as_ref().map(|r| r.name.clone()).unwrap_or_default();
        if human {
            println!(
                "Destroy removes role {role} (and the trusted side's policy) from the {targets} selected accounts and every account where spec {:?} was applied before; roles crossrole does not own are left alone.",
                spec.name
            );
        }
        if !args.yes && !confirm("Destroy?")? {
            return Err(Failure::usage("not destroyed"));
        }
    }
    let handle = match kind {
        proto::OperationKind::Destroy => client.destroy(spec, args.idempotency_key.clone()).await?,
        _ => client.apply(spec, args.idempotency_key.clone()).await?,
    };
    if args.no_wait {
        match out {
            Output::Json => json::print(&json::Operation::from(handle.initial())),
            Output::Table => {
                println!("operation {} started; follow it with `crossrole ops watch {}`", handle.id(), handle.id())
            }
        }
        return Ok(());
    }
    progress::follow(&handle, out).await
}

pub(crate) async fn verify(client: &Client, args: SpecArgs, out: Output) -> Outcome {
    let spec = load(&args.file)?;
    let r = client.verify(spec).await?;
    let outcome = |c: Option<&proto::AssumeCheck>| c.map(|c| views::check(c.outcome)).unwrap_or_default();
    let mut bad = 0;
    for a in &r.accounts {
        let live_failed = a.assume.as_ref().is_some_and(|c| c.outcome == proto::CheckOutcome::Failed as i32);
        let static_failed = a.trust_checks.iter().any(|c| c.outcome == proto::CheckOutcome::Failed as i32);
        if a.conformance != proto::RoleConformance::InSync as i32 || live_failed || static_failed {
            bad += 1;
        }
    }
    match out {
        Output::Json => json::print(&json::Verification::from(&r)),
        Output::Table => {
            let mut t = views::table(&["ACCOUNT", "NAME", "ROLE", "LIVE ASSUME", "TRUST POLICY CHECKS"]);
            for a in &r.accounts {
                let live = match &a.assume {
                    Some(c) if c.outcome == proto::CheckOutcome::Passed as i32 => {
                        format!("passed → {} ({} attempts)", c.assumed_account_id, c.attempts)
                    }
                    Some(c) => format!("{}: {}", outcome(Some(c)), c.error),
                    None => String::new(),
                };
                let passed = a.trust_checks.iter().filter(|c| c.outcome == proto::CheckOutcome::Passed as i32).count();
                let mut checks = format!("{passed}/{} passed", a.trust_checks.len());
                for c in a.trust_checks.iter().filter(|c| c.outcome != proto::CheckOutcome::Passed as i32) {
                    checks.push_str(&format!("\n{}: {}", c.principal_arn, c.reason));
                }
                let mut role = views::conformance(a.conformance);
                for d in &a.drift {
                    role.push_str(&format!("\n{}", views::change_line(d)));
                }
                t.add_row(vec![a.account_id.clone(), a.account_name.clone(), role, live, checks]);
            }
            println!("{t}");
            println!("{} of {} accounts verified", r.accounts.len() - bad, r.accounts.len());
            if !r.external_id_note.is_empty() {
                println!("Note: {}.", r.external_id_note);
            }
        }
    }
    if bad > 0 { Err(Failure::accounts(format!("{bad} accounts did not verify"))) } else { Ok(()) }
}

pub(crate) async fn links(client: &Client, args: SpecArgs, out: Output) -> Outcome {
    let spec = load(&args.file)?;
    let links = client.switch_role_links(spec).await?;
    match out {
        Output::Json => json::print(&links.iter().map(json::Link::from).collect::<Vec<_>>()),
        Output::Table => {
            // One reason for every account (e.g. the role requires an ExternalId): say it once.
            let reasons: std::collections::BTreeSet<&str> = links.iter().map(|l| l.unusable_reason.as_str()).collect();
            if let (1, Some(reason)) = (reasons.len(), reasons.iter().next().filter(|r| !r.is_empty())) {
                println!("No console links: {reason}.");
                let mut t = views::table(&["ACCOUNT", "NAME", "ROLE ARN"]);
                for l in &links {
                    t.add_row(vec![l.account_id.clone(), l.account_name.clone(), l.role_arn.clone()]);
                }
                println!("{t}");
            } else {
                let mut t = views::table(&["ACCOUNT", "NAME", "SWITCH ROLE"]);
                for l in &links {
                    t.add_row(vec![
                        l.account_id.clone(),
                        l.account_name.clone(),
                        if l.url.is_empty() {
                            format!("(no console link: {})", l.unusable_reason)
                        } else {
                            l.url.clone()
                        },
                    ]);
                }
                println!("{t}");
            }
        }
    }
    Ok(())
}

pub(crate) async fn export(client: &Client, args: ExportArgs) -> Outcome {
    let spec = load(&args.file)?;
    let spec_name = spec.name.clone();
    let (format, file) = match args.format.as_str() {
        "aesr" => (proto::ExportFormat::Aesr, format!("crossrole-{spec_name}.aesr.ini")),
        "json" => (proto::ExportFormat::Json, format!("crossrole-{spec_name}.json")),
        _ => (proto::ExportFormat::AwsConfig, format!("crossrole-{spec_name}.config")),
    };
    if args.format == "granted" && args.out.is_none() {
        return Err(Failure::usage(
            "--format granted writes a profile registry, a folder (granted.yml and the profiles): give --out <folder>",
        ));
    }
    let r = client
        .export_profiles(proto::ExportProfilesRequest {
            spec: Some(spec),
            source_profile: args.source_profile,
            format: format as i32,
            mfa_serial: args.mfa_serial.unwrap_or_default(),
            profile_name_template: args.profile_name.unwrap_or_default(),
        })
        .await?;
    let Some(out) = args.out else {
        print!("{}", r.content);
        return Ok(());
    };
    // Created 0600, never through a link at the path: an export may hold ExternalIds.
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::create_dir_all(&out)
            .and_then(|()| crate::files::write_private(&path, text))
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        eprintln!("wrote {}", path.display());
        Ok::<(), Failure>(())
    };
    if args.format == "granted" && r.content.contains("external_id") {
        eprintln!(
            "warning: this granted registry holds ExternalIds (your token may read them), and a registry is made to \
             be committed to a repository that others read: keep it private, or export with a token that may not \
             read ExternalIds and let each person add `external_id` to their own profile"
        );
    }
    write(&file, &r.content)?;
    if args.format == "granted" {
        // granted reads AWS config files named in the registry's granted.yml (`granted registry add <repo>`).
        write("granted.yml", &format!("awsConfigPaths:\n  - ./{file}\n"))?;
    }
    eprintln!("{} profiles", r.profile_count);
    Ok(())
}
