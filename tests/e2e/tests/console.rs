//! `crossrole console`: the CLI assumes the role on the emulator's STS with the user's credentials and the
//! ExternalId they hold, and asks a stand-in of the federation endpoint (served here, on loopback) for the sign-in
//! token; the stand-in checks the session it receives the way AWS's endpoint reads it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use crossrole_e2e::{Crossroled, Manifest};
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// What the stand-in received: each getSigninToken's query.
type Seen = Arc<Mutex<Vec<BTreeMap<String, String>>>>;

/// A stand-in of the federation endpoint: `getSigninToken` with a well-formed session gets a token.
async fn federation() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/federation", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let record = record.clone();
                    async move {
                        let query: BTreeMap<String, String> = req
                            .uri()
                            .query()
                            .unwrap_or_default()
                            .split('&')
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned(),
                                )
                            })
                            .collect();
                        let session: Option<serde_json::Value> =
                            query.get("Session").and_then(|s| serde_json::from_str(s).ok());
                        let well_formed = query.get("Action").map(String::as_str) == Some("getSigninToken")
                            && session.as_ref().is_some_and(|s| {
                                ["sessionId", "sessionKey", "sessionToken"]
                                    .iter()
                                    .all(|k| s[k].as_str().is_some_and(|v| !v.is_empty()))
                            })
                            && query
                                .get("SessionDuration")
                                .is_none_or(|d| d.parse::<u32>().is_ok_and(|d| (900..=43_200).contains(&d)));
                        record.lock().unwrap().push(query);
                        let (status, body) = if well_formed {
                            (200, r#"{"SigninToken":"stand-in/token+1"}"#)
                        } else {
                            (400, "bad request")
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (url, seen)
}

fn text(o: &std::process::Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_with_the_external_id_and_sessions_as_aws_allows_them() {
    let m = Manifest::load();
    let (endpoint, seen) = federation().await;
    let server = Crossroled::start(&crossrole_e2e::test_dir("console")).await.unwrap();
    let dir = crossrole_e2e::test_dir("console-spec");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("security-audit.yaml");
    std::fs::write(&spec, m.example_spec().replace("max_session_duration: 1h", "max_session_duration: 4h")).unwrap();
    let spec = spec.to_str().unwrap();
    let prod = m.accounts.iter().find(|a| a.ou_path == "/Root/Workloads/Prod" && a.name.starts_with("prod-")).unwrap();
    let external_id = "8f3kQ2mZ7xV1pL9wR4tY6uB0nC5hJ2dS";
    let env = [("CROSSROLE_FEDERATION_ENDPOINT", endpoint.as_str()), ("CROSSROLE_EXTERNAL_ID", external_id)];

    // By name, crossroled finds the account among the spec's targets, and refuses it: this crossroled's journal has
    // never applied the spec there, so the role there may not be crossrole's.
    let unapplied = server.cli_with_env(&["console", &prod.name, "-f", spec, "--duration", "2h"], &env);
    let (_, stderr) = text(&unapplied);
    assert_eq!(unapplied.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("crossrole has not applied spec security-audit in account"), "{stderr}");
    // Asked for all the same: long-term credentials, two hours; when the session ends, the console sends people
    // to the Issuer, the console's sign-in page.
    let named = ["console", &prod.name, "-f", spec, "--duration", "2h", "--include-unapplied"];
    let out = server.cli_with_env(&named, &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            "{endpoint}?Action=login&Issuer=https%3A%2F%2Fsignin.aws.amazon.com%2Fconsole&Destination=https%3A%2F%2Fconsole.aws.amazon.com%2F&SigninToken=stand-in%2Ftoken%2B1"
        )
    );
    assert!(stderr.contains(&format!("signed in as arn:aws:iam::{}:role/crossrole/SecurityAudit for 2h", prod.id)));
    let asked = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(asked.get("SessionDuration").map(String::as_str), Some("7200"));
    let session: serde_json::Value = serde_json::from_str(&asked["Session"]).unwrap();
    let secret = session["sessionKey"].as_str().unwrap();
    assert!(!stdout.contains(secret) && !stderr.contains(secret), "the session's secret is never printed");

    // Temporary credentials: role chaining, capped at an hour by AWS; the federation endpoint gets no duration.
    let chained = [env[0], env[1], ("AWS_SESSION_TOKEN", "a-session-token")];
    let refused = server.cli_with_env(&["console", &prod.id, "-f", spec, "--duration", "2h"], &chained);
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("role chaining, which AWS caps at one hour"), "{stderr}");
    let hour = server.cli_with_env(&["console", &prod.id, "-f", spec], &chained);
    assert!(hour.status.success(), "{}", text(&hour).1);
    assert!(!seen.lock().unwrap().last().unwrap().contains_key("SessionDuration"));

    // Without the ExternalId the role requires, nothing is asked of AWS.
    let asked_before = seen.lock().unwrap().len();
    let missing = server.cli_with_env(&["console", &prod.id, "-f", spec], &env[..1]);
    let (_, stderr) = text(&missing);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the role requires an ExternalId: set CROSSROLE_EXTERNAL_ID"), "{stderr}");
    assert_eq!(seen.lock().unwrap().len(), asked_before);
    println!("console sign-in URL from the stand-in: {}", text(&out).0.trim());
}
