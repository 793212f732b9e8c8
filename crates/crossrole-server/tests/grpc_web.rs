//! A browser's gRPC-Web calls reach the same services on the same listener, behind the same tokens and scopes:
//! spoken here as a browser would, over plain HTTP/1.1 with `application/grpc-web+proto` frames, with nothing
//! of tonic's client.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::net::SocketAddr;

use common::*;
use crossrole_client::proto;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a gRPC-Web call answered: the HTTP status and headers, the messages, and the status (from the trailer
/// frame, or from the headers for an answer without a body).
struct Answer {
    http_status: u16,
    headers: Vec<(String, String)>,
    messages: Vec<Vec<u8>>,
    grpc_status: Option<String>,
}

/// Calls `path` with `request` as a browser's fetch would, over HTTP/1.1.
async fn call(addr: SocketAddr, path: &str, token: Option<&str>, request: &impl Message) -> Answer {
    let payload = request.encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    body.extend_from_slice(&payload);
    let auth = token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/grpc-web+proto\r\naccept: application/grpc-web+proto\r\nx-grpc-web: 1\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();

    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let http_status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    let mut messages = Vec::new();
    let mut grpc_status = headers.iter().find(|(k, _)| k == "grpc-status").map(|(_, v)| v.clone());
    let mut at = 0;
    while at + 5 <= body.len() {
        let flag = body[at];
        let len = u32::from_be_bytes(body[at + 1..at + 5].try_into().unwrap()) as usize;
        let frame = &body[at + 5..at + 5 + len];
        if flag & 0x80 == 0 {
            messages.push(frame.to_vec());
        } else {
            let trailers = String::from_utf8(frame.to_vec()).unwrap();
            grpc_status = trailers
                .split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("grpc-status"))
                .map(|(_, v)| v.trim().to_string());
        }
        at += 5 + len;
    }
    Answer { http_status, headers, messages, grpc_status }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[end + 2 + size + 2..];
    }
}

#[tokio::test]
async fn a_browser_calls_the_same_api_behind_the_same_tokens() {
    let h = start(3, 0).await;
    let client = h.client("apply-token").await;
    let op = client.apply(spec(), None).await.unwrap().wait().await.unwrap();
    let addr = h.server.addr;
    let list = "/crossrole.v1.OperationService/ListOperations";

    // A read token: the operations, as the gRPC clients see them.
    let answer = call(addr, list, Some("read-token"), &proto::ListOperationsRequest::default()).await;
    assert_eq!(answer.http_status, 200);
    assert!(
        answer.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("application/grpc-web")),
        "{:?}",
        answer.headers
    );
    assert_eq!(answer.grpc_status.as_deref(), Some("0"));
    assert_eq!(answer.messages.len(), 1);
    let listed = proto::ListOperationsResponse::decode(answer.messages[0].as_slice()).unwrap();
    assert_eq!(listed.operations.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [op.id.as_str()]);

    // No token, a wrong one: refused before any service, with no message.
    for token in [None, Some("not-a-token")] {
        let answer = call(addr, list, token, &proto::ListOperationsRequest::default()).await;
        assert_eq!(answer.grpc_status.as_deref(), Some("16"), "{token:?}: {:?}", answer.headers);
        assert!(answer.messages.is_empty());
    }

    // A huge call without a token is refused on its headers: the answer comes before the body has been sent.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {list} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/grpc-web+proto\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        64 << 20
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[0u8; 64 << 10]).await.unwrap();
    let mut raw = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&raw[..n]).to_ascii_lowercase();
    assert!(text.contains("grpc-status: 16"), "{text}");

    // A read token cannot cancel: the same scopes.
    let cancel = "/crossrole.v1.OperationService/CancelOperation";
    let request = proto::CancelOperationRequest { operation_id: op.id.clone() };
    let answer = call(addr, cancel, Some("read-token"), &request).await;
    assert_eq!(answer.grpc_status.as_deref(), Some("7"), "{:?}", answer.headers);

    // No cross-origin calls: a preflight gets no permission to call from another origin.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let preflight = format!(
        "OPTIONS {list} HTTP/1.1\r\nhost: {addr}\r\norigin: https://elsewhere.example\r\naccess-control-request-method: POST\r\naccess-control-request-headers: authorization,content-type,x-grpc-web\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(preflight.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(!text.contains("access-control-allow-origin"), "{text}");
}
