//! `console <accounts>`: crossroled, in this process, over an in-memory AWS whose organization has `accounts`
//! accounts (a security account, the rest in OUs of at most 500), with a read token, for the console's render
//! benchmark (part F). It reads the organization once (as a crossroled that has run keeps it in its journal),
//! prints one JSON line with its endpoint and token, and serves until its standard input closes.

use std::sync::Arc;

use anyhow::Result;
use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_client::{Client, proto};
use crossrole_core::org::fixture;
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags},
};

const TOKEN: &str = "bench-console-read-token";

pub(crate) async fn serve(accounts: usize) -> Result<()> {
    let fake = FakeAws::new(fixture::wide(accounts), FakeConfig::default());
    let dir = tempfile::tempdir()?;
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[aws]\norganizations_rate = 10000\n[[tokens]]\nname = \"viewer\"\n\
         sha256 = \"{}\"\nscope = \"read\"\n",
        dir.path().display(),
        hash_token(TOKEN)
    );
    let flags = Flags { journal_key: Some("ab".repeat(32)), ..Flags::default() };
    let config = Config::from_toml(&text, &flags)?;
    let server = crossrole_server::start(&config, Arc::new(fake)).await?;
    let endpoint = format!("http://{}", server.addr);
    let client = Client::builder().endpoint(endpoint.clone()).token(TOKEN).connect().await?;
    let root = client.describe_organization(false).await?.root.map(|r| r.id).unwrap_or_default();
    let selector = proto::TargetSelector { organizational_unit_ids: vec![root], ..Default::default() };
    client
        .list_accounts(proto::ListAccountsRequest { selector: Some(selector), page_size: 1000, ..Default::default() })
        .await?;
    println!("{}", serde_json::json!({ "endpoint": endpoint, "token": TOKEN, "accounts": accounts }));
    tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())).await??;
    server.stop().await
}
