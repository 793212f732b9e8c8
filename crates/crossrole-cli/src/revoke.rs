//! `crossrole revoke`: for an incident, every session of a spec's (or a binding's) role issued before now denied,
//! in every account where crossrole applied the spec or in those named — followed live, like an apply.

use std::path::PathBuf;

use crossrole_client::{Client, RevokeTarget};

use crate::{
    Failure, Outcome, Output,
    access::{confirm, load, started},
};

/// Revoke.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Writes IAM's AWSRevokeOlderSessions inline policy (the one the console's \"Revoke active \
    sessions\" writes: Deny * on * to sessions issued before now) on the role in each account where crossrole \
    applied the spec, if the role there is still the spec's (its ownership tags; any other is skipped as not owned): \
    one AssumeRole, one GetRole and one PutRolePolicy per account. Sessions issued after it are not affected. \
    The deny is kept 12 hours, then a later apply or reconcile removes it. It does not end console sessions already \
    signed in through federation, nor sessions of other roles a revoked session assumed (role chaining).")]
pub(crate) struct RevokeArgs {
    /// The spec file whose role's sessions to revoke.
    #[arg(long, short, required_unless_present = "binding", conflicts_with = "binding")]
    file: Option<PathBuf>,
    /// The binding whose role's sessions to revoke.
    #[arg(long, value_name = "NAME")]
    binding: Option<String>,
    /// Only in this account (12 digits); repeat for more. Default: every account where the spec is applied.
    #[arg(long = "account", value_name = "ID")]
    accounts: Vec<String>,
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

pub(crate) async fn revoke(client: &Client, args: RevokeArgs, out: Output) -> Outcome {
    let (target, whose) = match (&args.file, &args.binding) {
        (Some(file), _) => {
            let spec = load(file)?;
            let whose = format!("spec {:?}", spec.name);
            (RevokeTarget::Spec(Box::new(spec)), whose)
        }
        (None, Some(name)) => (RevokeTarget::Binding(name.clone()), format!("binding {name:?}")),
        (None, None) => return Err(Failure::usage("give -f SPEC or --binding NAME")),
    };
    if out == Output::Table {
        let where_ = if args.accounts.is_empty() {
            "every account where it is applied".to_string()
        } else {
            format!("account(s) {}", args.accounts.join(", "))
        };
        println!("Revoke denies every session of the role of {whose} issued before now, in {where_}.");
    }
    if !args.yes && !confirm("Revoke?")? {
        return Err(Failure::usage("not revoked"));
    }
    let handle = client.revoke(target, args.accounts, args.idempotency_key).await?;
    started(handle, args.no_wait, out).await
}
