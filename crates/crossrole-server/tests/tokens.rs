//! The API tokens read again without a restart: a token removed from the tokens file is refused within seconds, a
//! tokens file that does not read keeps the tokens in force, and SIGHUP reloads them without stopping crossroled.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{path::Path, sync::Arc, time::Duration};

use common::*;
use crossrole_client::{Client, Error, proto};
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags},
};

fn tokens_file(path: &Path, names: &[&str]) {
    let text: String = names
        .iter()
        .map(|n| {
            format!(
                "[[tokens]]\nname = \"{n}\"\nsha256 = \"{}\"\nscope = \"read\"\n",
                hash_token(&format!("{n}-token"))
            )
        })
        .collect();
    // Written aside and renamed into place, as a Kubernetes Secret's update lands: never half a file.
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

fn config(dir: &Path, listen: &str) -> Config {
    let text = format!(
        "listen = \"{listen}\"\ndata_dir = \"{}\"\ntokens_file = \"{}\"\n",
        dir.join("data").display(),
        dir.join("tokens.toml").display()
    );
    Config::from_toml(&text, &Flags::default()).unwrap()
}

async fn client(addr: impl std::fmt::Display, token: &str) -> Client {
    Client::builder().endpoint(format!("http://{addr}")).token(token).connect_lazy().unwrap()
}

/// Whether `c`'s token is taken now.
async fn taken(c: &Client) -> bool {
    match c.list_operations(proto::ListOperationsRequest::default()).await {
        Ok(_) => true,
        Err(Error::Unauthenticated(_)) => false,
        Err(e) => panic!("{e}"),
    }
}

/// Waits up to `within` for `c`'s token to be taken (`true`) or refused (`false`).
async fn becomes(c: &Client, want: bool, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if taken(c).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn reloads(c: &Client) -> Vec<proto::AuditEvent> {
    let request = proto::ListAuditEventsRequest { method: "ReloadTokens".into(), ..Default::default() };
    c.list_audit_events(request).await.unwrap().events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_removed_from_the_tokens_file_is_refused_within_seconds_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.toml");
    tokens_file(&file, &["alice", "bob"]);
    let server = crossrole_server::start(&config(dir.path(), "127.0.0.1:0"), Arc::new(fake())).await.unwrap();
    let (alice, bob) = (client(server.addr, "alice-token").await, client(server.addr, "bob-token").await);
    assert!(taken(&alice).await && taken(&bob).await);

    tokens_file(&file, &["alice"]);
    assert!(becomes(&bob, false, Duration::from_secs(6)).await, "bob's token still taken");
    assert!(taken(&alice).await);
    // One that is added works as soon.
    tokens_file(&file, &["alice", "carol"]);
    let carol = client(server.addr, "carol-token").await;
    assert!(becomes(&carol, true, Duration::from_secs(6)).await, "carol's token not taken");

    // A tokens file that does not read keeps the tokens in force, and says why in the audit log.
    std::fs::write(&file, "[[tokens]]\nname = \"mallory\"\nsha256 = \"not a hash\"\nscope = \"read\"\n").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    let refused = loop {
        let found = reloads(&alice).await.into_iter().find(|e| e.outcome.starts_with("not reloaded"));
        if let Some(found) = found {
            break found;
        }
        assert!(tokio::time::Instant::now() < deadline, "the failed reload is not in the audit log");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refused.outcome.contains("tokens[0].sha256"), "{}", refused.outcome);
    assert_eq!(refused.caller, "crossroled");
    assert!(refused.request_json.contains("the tokens file changed"), "{}", refused.request_json);
    assert!(taken(&alice).await && taken(&carol).await && !taken(&bob).await);
    // Asked again (SIGHUP's way), it fails the same and changes nothing.
    assert!(server.tokens().reload("SIGHUP").await.is_err());
    assert!(taken(&alice).await);
    let ok = reloads(&alice).await.into_iter().filter(|e| e.outcome == "ok").count();
    assert_eq!(ok, 2, "one reload for each change of the file");
    server.stop().await.unwrap();
}

fn fake() -> crossrole_aws::fake::FakeAws {
    crossrole_aws::fake::FakeAws::new(tree(1), Default::default())
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_tokens_and_crossroled_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    tokens_file(&dir.path().join("tokens.toml"), &["alice"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let config_file = dir.path().join("crossroled.toml");
    let text = format!(
        "listen = \"{listen}\"\ndata_dir = \"{}\"\ntokens_file = \"{}\"\n",
        dir.path().join("data").display(),
        dir.path().join("tokens.toml").display()
    );
    std::fs::write(&config_file, text).unwrap();
    let mut crossroled = std::process::Command::new(env!("CARGO_BIN_EXE_crossroled"))
        .args(["--config", &config_file.display().to_string()])
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let alice = client(&listen, "alice-token").await;
    let mut up = false;
    for _ in 0..300 {
        if alice.list_operations(proto::ListOperationsRequest::default()).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "crossroled did not serve");

    let hup = std::process::Command::new("kill").args(["-HUP", &crossroled.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !reloads(&alice).await.iter().any(|e| e.request_json.contains("SIGHUP") && e.outcome == "ok") {
        assert!(crossroled.try_wait().unwrap().is_none(), "SIGHUP stopped crossroled");
        assert!(tokio::time::Instant::now() < deadline, "no reload on SIGHUP");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(crossroled.try_wait().unwrap().is_none(), "SIGHUP stopped crossroled");
    assert!(taken(&alice).await);
    let _ = std::process::Command::new("kill").args(["-TERM", &crossroled.id().to_string()]).status();
    let _ = crossroled.wait();
}
