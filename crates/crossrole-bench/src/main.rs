//! `crossrole-bench`: `model`, `model-inventory` and `model-revoke` (part A) print one JSON outcome per run; the
//! others drive parts B, C, E and F.

mod ceiling;
mod console;
mod flood;
mod journal;

use std::time::Instant;

use anyhow::{Context, Result, bail};
use crossrole_bench::{model, org_wide};
use crossrole_client::{Client, proto};
use crossrole_core::AccessSpec;
use crossrole_wire::ToWire;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("model") => {
            let usage = "model <accounts> [--iam <per account/s>] [--sts <per caller/s>] [--org <per second>] \
                         [--concurrency <n>]";
            let accounts: usize = args.get(1).context(usage)?.parse()?;
            let mut params = model::Params::default_for(accounts);
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                let value: f64 = rest.next().with_context(|| format!("{flag} needs a value; {usage}"))?.parse()?;
                match flag.as_str() {
                    "--org" => params.quotas[0] = value,
                    "--iam" => params.quotas[1] = value,
                    "--sts" => params.quotas[2] = value,
                    "--concurrency" => params.concurrency = Some(value as u32),
                    other => bail!("unknown option {other}; {usage}"),
                }
            }
            let outcome = model::run(&params)?;
            println!("{}", serde_json::to_string(&outcome)?);
            Ok(())
        }
        Some(cmd @ ("model-inventory" | "model-revoke")) => {
            let usage = format!(
                "{cmd} <accounts> [--organization walked|known] [--roles <per account>] [--iam <per account/s>] \
                 [--sts <per caller/s>] [--org <per second>]"
            );
            let accounts: usize = args.get(1).with_context(|| usage.clone())?.parse()?;
            let mut params = model::Params::default_for(accounts);
            let (mut organization, mut roles) = (org_wide::Organization::Walked, 50usize);
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                let value = rest.next().with_context(|| format!("{flag} needs a value; {usage}"))?;
                match flag.as_str() {
                    "--organization" => organization = org_wide::Organization::parse(value)?,
                    "--roles" if cmd == "model-inventory" => roles = value.parse()?,
                    "--org" => params.quotas[0] = value.parse()?,
                    "--iam" => params.quotas[1] = value.parse()?,
                    "--sts" => params.quotas[2] = value.parse()?,
                    other => bail!("unknown option {other}; {usage}"),
                }
            }
            let outcome = match cmd {
                "model-inventory" => org_wide::inventory(&params, roles, organization)?,
                _ => org_wide::revoke(&params, organization)?,
            };
            println!("{}", serde_json::to_string(&outcome)?);
            Ok(())
        }
        Some("ceiling") => ceiling::run(&args[1..]),
        Some("console") => {
            let accounts: usize = args.get(1).context("console <accounts>")?.parse()?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(console::serve(accounts))
        }
        Some("journal") => {
            let usage = "journal <sqlite | postgres://…> <operations> <accounts>";
            let [target, operations, accounts] = &args[1..] else { bail!(usage) };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let out = runtime.block_on(journal::run(target, operations.parse()?, accounts.parse()?))?;
            println!("{out}");
            Ok(())
        }
        Some("flood") => {
            let [endpoint, token] = &args[1..] else { bail!("flood <endpoint> <read token>") };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let out = runtime.block_on(flood::run(endpoint, token))?;
            println!("{out}");
            Ok(())
        }
        Some("flood-budget") => {
            let usage = "flood-budget <endpoint> <read token> <requests at once> <max_request_bytes>";
            let [endpoint, token, n, max_request_bytes] = &args[1..] else { bail!(usage) };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let out = runtime.block_on(flood::budget(endpoint, token, n.parse()?, max_request_bytes.parse()?))?;
            println!("{out}");
            Ok(())
        }
        Some("limits-defaults") => {
            println!("{}", flood::defaults());
            Ok(())
        }
        Some(cmd @ ("apply" | "destroy" | "plan-latency")) => {
            let [endpoint, token, spec_file, rest @ ..] = &args[1..] else {
                bail!("{cmd} <endpoint> <token> <spec file> [n]")
            };
            let spec: proto::AccessSpec = AccessSpec::from_yaml(&std::fs::read_to_string(spec_file)?)?.to_wire();
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = Client::builder().endpoint(endpoint.clone()).token(token.clone()).connect().await?;
                match cmd {
                    "plan-latency" => {
                        let n: usize = rest.first().map(|n| n.parse()).transpose()?.unwrap_or(50);
                        // The first plan after crossroled starts assumes a session in each account; the next
                        // ones use the sessions (kept until near their expiry).
                        let t = Instant::now();
                        client.plan(spec.clone()).await?;
                        let cold_ms = t.elapsed().as_secs_f64() * 1000.0;
                        let mut ms = Vec::with_capacity(n);
                        for _ in 0..n {
                            let t = Instant::now();
                            client.plan(spec.clone()).await?;
                            ms.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        ms.sort_by(f64::total_cmp);
                        let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
                        println!("{}", serde_json::json!({ "cold_ms": cold_ms, "p50_ms": at(0.5), "p99_ms": at(0.99), "n": n }));
                    }
                    _ => {
                        let t = Instant::now();
                        let handle = if cmd == "apply" { client.apply(spec, None).await? } else { client.destroy(spec, None).await? };
                        // Where the time goes: until the targets are resolved (the organization read), then
                        // the accounts.
                        let mut resolved_at = None;
                        {
                            use futures::StreamExt;
                            let events = handle.events();
                            futures::pin_mut!(events);
                            while let Some(e) = events.next().await {
                                if let Some(proto::operation_event::Event::TargetsResolved(_)) = e?.event {
                                    resolved_at.get_or_insert_with(|| t.elapsed().as_secs_f64());
                                }
                            }
                        }
                        let done = handle.get().await?;
                        let secs = t.elapsed().as_secs_f64();
                        let counts = done.counts.unwrap_or_default();
                        if done.state != proto::OperationState::Succeeded as i32 {
                            bail!("{cmd} did not succeed: {}", done.message);
                        }
                        println!("{}", serde_json::json!({ "seconds": secs, "resolved_seconds": resolved_at, "accounts": counts.total - counts.skipped, "changed": counts.changed }));
                    }
                }
                Ok(())
            })
        }
        _ => bail!(
            "usage: crossrole-bench model <accounts> [headroom] | model-inventory|model-revoke <accounts> ... | ceiling ... | apply|destroy|plan-latency <endpoint> <token> <spec> [n] | flood ... | flood-budget ... | limits-defaults"
        ),
    }
}
