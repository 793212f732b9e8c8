//! `crossrole org` and `crossrole accounts`.

use crossrole_client::{Client, proto};
use futures::StreamExt;

use crate::{Failure, Outcome, Output, SelectorArgs, json, views};

fn unit_lines(u: &proto::OrganizationalUnit, depth: usize, out: &mut Vec<String>) {
    out.push(format!("{}{} ({}) — {}", "  ".repeat(depth), u.name, u.id, views::count(u.account_ids.len(), "account")));
    for c in &u.children {
        unit_lines(c, depth + 1, out);
    }
}

pub(crate) async fn tree(client: &Client, refresh: bool, out: Output) -> Outcome {
    let org = client.describe_organization(refresh).await?;
    match out {
        Output::Json => json::print(&json::Organization::from(&org)),
        Output::Table => {
            println!(
                "organization {} (management account {}, {})",
                org.id,
                org.management_account_id,
                views::count(org.account_count as usize, "account")
            );
            let mut lines = Vec::new();
            if let Some(root) = &org.root {
                unit_lines(root, 0, &mut lines);
            }
            for l in lines {
                println!("{l}");
            }
        }
    }
    Ok(())
}

pub(crate) fn selector(args: &SelectorArgs) -> Result<proto::TargetSelector, Failure> {
    let mut tags = Vec::new();
    for t in &args.tags {
        let (key, value) = match t.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (t.clone(), None),
        };
        if key.is_empty() {
            return Err(Failure::usage(format!("--tag {t:?}: expected key=value or key")));
        }
        tags.push(proto::TagCondition { key, value });
    }
    let states = args
        .states
        .iter()
        .filter_map(|s| proto::AccountState::from_str_name(&format!("ACCOUNT_STATE_{s}")).map(|s| s as i32))
        .collect();
    Ok(proto::TargetSelector {
        organizational_unit_ids: args.ous.clone(),
        organizational_unit_paths: args.ou_paths.clone(),
        exclude_descendants: args.direct_only,
        account_ids: args.accounts.clone(),
        tags,
        exclude_account_ids: args.exclude_accounts.clone(),
        exclude_organizational_unit_ids: args.exclude_ous.clone(),
        include_management_account: args.include_management_account,
        states,
        exclude_organizational_unit_paths: vec![],
    })
}

pub(crate) async fn accounts(client: &Client, args: SelectorArgs, out: Output) -> Outcome {
    let sel = match &args.file {
        // A spec's targets, as plan and apply select them.
        Some(file) => crate::access::load(file)?.targets.unwrap_or_default(),
        None => selector(&args)?,
    };
    if args.refresh {
        client.describe_organization(true).await?;
    }
    let first = client
        .list_accounts(proto::ListAccountsRequest {
            selector: Some(sel.clone()),
            page_size: 1,
            page_token: String::new(),
            refresh: false,
        })
        .await?;
    let accounts: Vec<proto::Account> =
        client.accounts(sel).collect::<Vec<_>>().await.into_iter().collect::<Result<_, _>>()?;
    match out {
        Output::Json => json::print(&json::Accounts::new(&accounts, &first.skipped)),
        Output::Table => {
            let mut t = views::table(&["ACCOUNT", "NAME", "OU PATH", "TAGS"]);
            for a in &accounts {
                let tags: Vec<String> = a.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                t.add_row(vec![a.id.clone(), a.name.clone(), a.parent_path.clone(), tags.join(" ")]);
            }
            println!("{t}");
            println!("{} selected", views::count(accounts.len(), "account"));
            for s in &first.skipped {
                println!(
                    "skipped {} ({}): {}",
                    s.account.as_ref().map(|a| a.id.as_str()).unwrap_or(""),
                    s.account.as_ref().map(|a| a.name.as_str()).unwrap_or(""),
                    s.reason
                );
            }
        }
    }
    Ok(())
}
