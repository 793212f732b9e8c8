//! `crossrole-bench flood <endpoint> <read token>`: what an attacker sends before crossroled knows who it is. Eight
//! unauthenticated 60 MB requests at once, then four 27 MB `ValidateSpec` requests with a read token (a valid
//! message: one inline policy of 27 MB). Prints the status codes as JSON; the memory is read by the caller.
//!
//! `crossrole-bench flood-budget <endpoint> <read token> <n> <max_request_bytes>`: what a read token can make
//! crossroled hold at once. `n` `ValidateSpec` requests, each just under `max_request_bytes`, each on its own
//! connection, all connected first and then sent together. Prints how many were served (and with which codes) and
//! how many were answered RESOURCE_EXHAUSTED (the request bytes' budget full) as JSON.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use bytes::Bytes;
use crossrole_client::proto;
use crossrole_proto::codec::Raw;
use prost::Message;
use tonic::{Code, Request, transport::Channel};

/// How far under `max_request_bytes` a budget flood's requests are: close enough that a request of the limit
/// would differ from them by no more than its varints.
const UNDER_THE_LIMIT: usize = 64;

type Grpc = tonic::client::Grpc<Channel>;

/// A client on a connection of its own.
async fn connect(endpoint: &str) -> Result<Grpc, String> {
    let channel = match Channel::from_shared(endpoint.to_string()) {
        Ok(c) => match c.connect().await {
            Ok(c) => c,
            Err(e) => return Err(format!("connect: {e}")),
        },
        Err(e) => return Err(format!("endpoint: {e}")),
    };
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    if grpc.ready().await.is_err() {
        return Err("not ready".into());
    }
    Ok(grpc)
}

/// `ValidateSpec` with `body` as its message, as it is; the code it was answered with.
async fn send(mut grpc: Grpc, token: Option<&str>, body: Bytes) -> String {
    let mut request = Request::new(body);
    if let Some(t) = token
        && let Ok(v) = format!("Bearer {t}").parse()
    {
        request.metadata_mut().insert("authorization", v);
    }
    let path = http::uri::PathAndQuery::from_static("/crossrole.v1.AccessService/ValidateSpec");
    match grpc.unary(request, path, Raw).await {
        Ok(_) => "Ok".into(),
        Err(s) => format!("{:?}", s.code()),
    }
}

async fn call(endpoint: &str, token: Option<&str>, body: Bytes) -> String {
    match connect(endpoint).await {
        Ok(grpc) => send(grpc, token, body).await,
        Err(e) => e,
    }
}

/// A `ValidateSpec` request of one inline policy of `policy_bytes`.
fn validate_spec(policy_bytes: usize) -> Bytes {
    let spec = proto::AccessSpec {
        name: "flood".into(),
        role: Some(proto::RoleSpec {
            name: "Flood".into(),
            inline_policies: [("big".to_string(), "x".repeat(policy_bytes))].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Bytes::from(proto::ValidateSpecRequest { spec: Some(spec) }.encode_to_vec())
}

/// Runs the flood; returns the codes seen, by scenario.
pub(crate) async fn run(endpoint: &str, token: &str) -> Result<serde_json::Value> {
    let huge = Bytes::from(vec![0x0a; 60 * 1024 * 1024]);
    let unauthenticated = futures::future::join_all((0..8).map(|_| call(endpoint, None, huge.clone()))).await;
    let body = validate_spec(27 * 1024 * 1024);
    let authenticated = futures::future::join_all((0..4).map(|_| call(endpoint, Some(token), body.clone()))).await;
    Ok(serde_json::json!({ "unauthenticated": unauthenticated, "authenticated": authenticated }))
}

/// Runs the budget flood: `n` requests of just under `max_request_bytes` at once, with a read token.
pub(crate) async fn budget(
    endpoint: &str,
    token: &str,
    n: usize,
    max_request_bytes: usize,
) -> Result<serde_json::Value> {
    let want = max_request_bytes.checked_sub(UNDER_THE_LIMIT).context("max_request_bytes is too small")?;
    // The policy's length, less the message's other bytes (a few tags and varints, which do not change size as
    // the policy's length moves by a few bytes).
    let overhead = validate_spec(want).len() - want;
    let body = validate_spec(want.saturating_sub(overhead));
    let connected = futures::future::join_all((0..n).map(|_| connect(endpoint))).await;
    let codes = futures::future::join_all(connected.into_iter().map(|grpc| {
        let body = body.clone();
        async move {
            match grpc {
                Ok(grpc) => send(grpc, Some(token), body).await,
                Err(e) => e,
            }
        }
    }))
    .await;
    // Served: ValidateSpec read, decoded and answered it (its one policy is past IAM's quota: INVALID_ARGUMENT).
    let served = [format!("{:?}", Code::Ok), format!("{:?}", Code::InvalidArgument)];
    let exhausted = format!("{:?}", Code::ResourceExhausted);
    let mut other: BTreeMap<String, usize> = BTreeMap::new();
    let mut served_as: BTreeMap<String, usize> = BTreeMap::new();
    let (mut n_served, mut n_exhausted) = (0, 0);
    for code in codes {
        if served.contains(&code) {
            n_served += 1;
            *served_as.entry(code).or_default() += 1;
        } else if code == exhausted {
            n_exhausted += 1;
        } else {
            *other.entry(code).or_default() += 1;
        }
    }
    Ok(serde_json::json!({
        "request_bytes": body.len(),
        "served": n_served,
        "served_as": served_as,
        "resource_exhausted": n_exhausted,
        "other": other,
    }))
}

/// The defaults of crossroled's request limits, as the crossroled built with this bench has them.
pub(crate) fn defaults() -> serde_json::Value {
    use crossrole_server::config::{DEFAULT_MAX_REQUEST_BYTES, DEFAULT_REQUEST_BUDGET_BYTES};
    serde_json::json!({
        "max_request_bytes": DEFAULT_MAX_REQUEST_BYTES,
        "request_budget_bytes": DEFAULT_REQUEST_BUDGET_BYTES,
    })
}
