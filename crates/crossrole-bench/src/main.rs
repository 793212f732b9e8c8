//! `crossrole-bench`: `model` (part A) prints one JSON outcome per run; `e2e-ceiling` is part B's SDK baseline.

mod ceiling;

use anyhow::{Context, Result, bail};
use crossrole_bench::model;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("model") => {
            let accounts: usize = args.get(1).context("model <accounts> [headroom]")?.parse()?;
            let mut params = model::Params::default_for(accounts);
            if let Some(h) = args.get(2) {
                params.headroom = h.parse()?;
            }
            let outcome = model::run(&params)?;
            println!("{}", serde_json::to_string(&outcome)?);
            Ok(())
        }
        Some("ceiling") => ceiling::run(&args[1..]),
        _ => bail!("usage: crossrole-bench model <accounts> | ceiling <manifest> <role-name> <concurrency>"),
    }
}
