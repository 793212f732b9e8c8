//! `crossrole-bench flood <endpoint> <read token>`: what an attacker sends before crossroled knows who it is. Eight
//! unauthenticated 60 MB requests at once, then four 27 MB `ValidateSpec` requests with a read token (a valid
//! message: one inline policy of 27 MB). Prints the status codes as JSON; the memory is read by the caller.

use anyhow::Result;
use bytes::Bytes;
use crossrole_client::proto;
use crossrole_proto::codec::Raw;
use prost::Message;
use tonic::{Request, transport::Channel};

async fn call(endpoint: &str, token: Option<&str>, body: Bytes) -> String {
    let channel = match Channel::from_shared(endpoint.to_string()) {
        Ok(c) => match c.connect().await {
            Ok(c) => c,
            Err(e) => return format!("connect: {e}"),
        },
        Err(e) => return format!("endpoint: {e}"),
    };
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    if grpc.ready().await.is_err() {
        return "not ready".into();
    }
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

/// Runs the flood; returns the codes seen, by scenario.
pub(crate) async fn run(endpoint: &str, token: &str) -> Result<serde_json::Value> {
    let huge = Bytes::from(vec![0x0a; 60 * 1024 * 1024]);
    let unauthenticated = futures::future::join_all((0..8).map(|_| call(endpoint, None, huge.clone()))).await;
    let spec = proto::AccessSpec {
        name: "flood".into(),
        role: Some(proto::RoleSpec {
            name: "Flood".into(),
            inline_policies: [("big".to_string(), "x".repeat(27 * 1024 * 1024))].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let body = Bytes::from(proto::ValidateSpecRequest { spec: Some(spec) }.encode_to_vec());
    let authenticated = futures::future::join_all((0..4).map(|_| call(endpoint, Some(token), body.clone()))).await;
    Ok(serde_json::json!({ "unauthenticated": unauthenticated, "authenticated": authenticated }))
}
