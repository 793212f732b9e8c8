//! Following an operation live: a progress display per account on a terminal, one line per finished account
//! otherwise, NDJSON events with `--output json`.

use std::{collections::BTreeMap, io::IsTerminal, time::Duration};

use crossrole_client::{OperationHandle, proto};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{Failure, Outcome, Output, json, views};

pub(crate) async fn follow(handle: &OperationHandle, out: Output) -> Outcome {
    follow_ending(handle, out, None).await
}

/// [`follow`], for an apply when `apply_end` is given: its JSON says the end of the access it applies.
pub(crate) async fn follow_ending(
    handle: &OperationHandle,
    out: Output,
    apply_end: Option<&Option<prost_types::Timestamp>>,
) -> Outcome {
    let tty = out == Output::Table && std::io::stderr().is_terminal();
    let multi =
        MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let main = multi.add(ProgressBar::new(0));
    main.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} accounts  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    main.enable_steady_tick(Duration::from_millis(120));
    let line_style = ProgressStyle::with_template("    {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut in_flight: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    let mut finished = 0u64;
    let mut total = 0u64;
    let mut resolved = false;

    if out == Output::Table && !tty {
        println!("operation {}", handle.id());
    }
    let events = handle.events();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let event = event?;
        if out == Output::Json {
            println!("{}", serde_json::to_string(&json::Event::from(&event)).unwrap_or_default());
            continue;
        }
        use proto::operation_event::Event;
        match &event.event {
            Some(Event::TargetsResolved(t)) => {
                total = u64::from(t.target_count);
                resolved = true;
                main.set_length(total);
                let line = format!(
                    "{} accounts to work on, {} skipped, {} to clean up",
                    t.target_count, t.skipped_count, t.cleanup_count
                );
                if tty {
                    multi.println(line).ok();
                } else {
                    println!("{line}");
                }
            }
            Some(Event::PhaseStarted(p)) if tty => {
                let bar = in_flight.entry(event.account_id.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner());
                    b.set_style(line_style.clone());
                    b
                });
                bar.set_message(format!("{} {}", event.account_id, views::phase(p.phase)));
            }
            Some(Event::AccountFinished(f)) => {
                let Some(r) = &f.result else { continue };
                finished += 1;
                main.set_position(finished.min(total.max(finished)));
                let o = views::outcome(r.outcome);
                *tally.entry(o.clone()).or_default() += 1;
                main.set_message(tally.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", "));
                if let Some(bar) = in_flight.remove(&r.account_id) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let detail = match &r.error {
                    Some(e) => format!(": {}", e.message),
                    None if !r.changes.is_empty() => format!(" ({} changes)", r.changes.len()),
                    None => String::new(),
                };
                // Accounts start as they are found: the total is known once all are.
                let of = if resolved { total.to_string() } else { "…".to_string() };
                let line = format!("[{finished}/{of}] {} {}: {o}{detail}", r.account_id, r.account_name);
                if tty {
                    if r.outcome == proto::AccountOutcome::Failed as i32 {
                        multi.println(format!("FAILED {line}")).ok();
                    }
                } else {
                    println!("{line}");
                }
            }
            Some(Event::ChangeApplied(applied)) => {
                // Target-side changes are summed up in each account's line; the trusted side has no line of its own.
                // A cut from the grant revokes sessions (or says they stay) for the operation, in no account.
                let cut = |c: &&proto::Change| event.account_id.is_empty() && views::is_sessions_change(c.kind);
                let Some(c) = applied.change.as_ref().filter(|c| is_grant_change(c.kind) || cut(c)) else { continue };
                let line = if cut(&c) {
                    format!("trusted side: {}: {}", views::change_line(c), c.after)
                } else {
                    format!("trusted side {}: {}", event.account_id, views::change_line(c))
                };
                if tty {
                    multi.println(line).ok();
                } else {
                    println!("{line}");
                }
            }
            _ => {}
        }
    }
    main.finish_and_clear();
    let op = handle.get().await?;
    match out {
        Output::Json => match apply_end {
            Some(end) => json::print(&json::Applied::new(&op, end)),
            None => json::print(&json::Operation::from(&op)),
        },
        Output::Table => {
            println!("{}: {}", views::state(op.state), views::counts_line(&op.counts));
            if !op.message.is_empty() {
                println!("{}", op.message);
            }
            let failed: Vec<proto::AccountResult> = handle
                .results()
                .await?
                .into_iter()
                .filter(|r| r.outcome == proto::AccountOutcome::Failed as i32)
                .collect();
            if !failed.is_empty() {
                let mut t = views::table(&["ACCOUNT", "NAME", "PHASE", "ERROR"]);
                for r in failed {
                    let e = r.error.unwrap_or_default();
                    t.add_row(vec![r.account_id, r.account_name, views::phase(e.phase), e.message]);
                }
                println!("{t}");
            }
        }
    }
    match proto::OperationState::try_from(op.state) {
        Ok(proto::OperationState::Succeeded) => Ok(()),
        Ok(proto::OperationState::Cancelled) => Err(Failure::accounts("the operation was cancelled")),
        _ => {
            Err(Failure::accounts(if op.message.is_empty() { "the operation failed".to_string() } else { op.message }))
        }
    }
}

/// Whether a change is made on the trusted side (the grant policy), not in a target account.
fn is_grant_change(kind: i32) -> bool {
    use proto::ChangeKind as K;
    [K::CreateGrantPolicy, K::UpdateGrantPolicy, K::AttachGrantPolicy, K::DetachGrantPolicy, K::DeleteGrantPolicy]
        .into_iter()
        .any(|k| k as i32 == kind)
}
