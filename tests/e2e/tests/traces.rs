//! Traces that arrive: crossroled exports its spans over OTLP to a receiver served here (opentelemetry-proto's
//! trace service), and the receiver gets, for an apply, one trace for the operation with a span per account and
//! the account's AWS calls as its children; an RPC sent with a W3C `traceparent` joins the caller's trace.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{Crossroled, Manifest};
use crossrole_wire::ToWire;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};
use tokio_stream::wrappers::TcpListenerStream;

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
        self.0.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

/// crossroled's `/metrics`.
async fn scrape(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_arrives_as_one_trace_with_a_span_per_account_and_its_aws_calls() {
    let m = Manifest::load();
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "200")];
    let metrics = crossrole_e2e::free_port();
    let extra = format!("metrics_listen = \"127.0.0.1:{metrics}\"\n");
    let server = Crossroled::start_with_env(&crossrole_e2e::test_dir("traces"), &extra, &env).await.unwrap();
    let c = server.client().await;
    let spec = AccessSpec::from_yaml(&m.example_variant("traced-audit", "TracedAudit", 10, "0")).unwrap().to_wire();
    let done = c.apply(spec.clone(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let worked = done.counts.unwrap().changed as usize;

    // A scrape after the rollout agrees with the operation's own counts.
    let text = scrape(metrics).await;
    let sample =
        |series: &str| text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<f64>().ok());
    assert_eq!(sample(r#"crossrole_operations_total{kind="apply",state="succeeded"}"#), Some(1.0), "{text}");
    assert_eq!(sample(r#"crossrole_accounts_total{outcome="changed"}"#), Some(worked as f64));
    for (call, n) in done.aws_calls.iter().filter(|(c, _)| c.starts_with("iam:")) {
        let (service, operation) = call.split_once(':').unwrap();
        let series = format!(r#"crossrole_aws_calls_total{{service="{service}",operation="{operation}"}}"#);
        assert_eq!(sample(&series), Some(*n as f64), "{series}");
    }
    assert!(sample("crossrole_journal_write_seconds_count").unwrap_or(0.0) >= 1.0);

    // An RPC from a caller's trace.
    let (trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let mut request = tonic::Request::new(proto::ListOperationsRequest::default());
    request.metadata_mut().insert("traceparent", format!("00-{trace}-{caller_span}-01").parse().unwrap());
    request.metadata_mut().insert("authorization", format!("Bearer {}", crossrole_e2e::TOKEN).parse().unwrap());
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
    proto::operation_service_client::OperationServiceClient::new(channel.clone())
        .list_operations(request)
        .await
        .unwrap();

    // The receiver gets the operation's trace (spans are exported in batches).
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (operation, accounts, calls, rpc) = loop {
        let spans = receiver.0.lock().unwrap().clone();
        let operation = spans.iter().find(|s| s.name == "operation" && attribute(s, "id").as_deref() == Some(&done.id));
        let rpc = spans.iter().find(|s| s.name == "rpc" && hex(&s.trace_id) == trace).cloned();
        if let (Some(op), Some(rpc)) = (operation, rpc) {
            let accounts: Vec<Span> =
                spans.iter().filter(|s| s.name == "account" && s.parent_span_id == op.span_id).cloned().collect();
            let ids: BTreeSet<&Vec<u8>> = accounts.iter().map(|a| &a.span_id).collect();
            let calls: Vec<Span> =
                spans.iter().filter(|s| s.name == "aws" && ids.contains(&s.parent_span_id)).cloned().collect();
            if accounts.len() >= worked && calls.len() >= worked {
                break (op.clone(), accounts, calls, rpc);
            }
        }
        assert!(Instant::now() < deadline, "the trace did not arrive: {} spans", spans.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(operation.parent_span_id.is_empty(), "the operation is its trace's root");
    assert!(accounts.iter().chain(&calls).all(|s| s.trace_id == operation.trace_id), "one trace");
    let per_operation: BTreeMap<String, usize> = calls.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(format!(
            "{}:{}",
            attribute(s, "service").unwrap_or_default(),
            attribute(s, "operation").unwrap_or_default()
        ))
        .or_default() += 1;
        m
    });
    assert!(per_operation.get("iam:CreateRole").copied().unwrap_or(0) >= worked, "{per_operation:?}");
    assert_eq!(hex(&rpc.parent_span_id), caller_span, "the RPC's span is a child of the caller's");
    // Trace ids in the logs: the operation's lines name its trace.
    let log = std::fs::read_to_string(server.data_dir.join("crossroled.log")).unwrap();
    let op_trace = format!("trace_id={}", hex(&operation.trace_id));
    let named = log.lines().filter(|l| l.contains(&op_trace) && l.contains(&done.id)).count();
    assert!(named >= worked, "{named} log lines name the operation's trace ({op_trace})");

    // The destroy, from the caller's trace: the RPC's log lines (its audit entry) name the caller's trace.
    let mut request = tonic::Request::new(proto::DestroyAccessRequest { spec: Some(spec), ..Default::default() });
    request.metadata_mut().insert("traceparent", format!("00-{trace}-{caller_span}-01").parse().unwrap());
    request.metadata_mut().insert("authorization", format!("Bearer {}", crossrole_e2e::TOKEN).parse().unwrap());
    let destroy = proto::access_service_client::AccessServiceClient::new(channel)
        .destroy_access(request)
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let destroyed = c.operation_handle(destroy.id).wait().await.unwrap();
    assert_eq!(destroyed.state, proto::OperationState::Succeeded as i32, "{}", destroyed.message);
    let log = std::fs::read_to_string(server.data_dir.join("crossroled.log")).unwrap();
    let rpc_lines = log.lines().filter(|l| l.contains(&format!("trace_id={trace}"))).count();
    assert!(rpc_lines >= 1, "the RPC's log lines name the caller's trace");
    println!(
        "received trace {}: operation {} with {} account spans and {} AWS call spans ({per_operation:?}); an RPC \
         with traceparent joined trace {trace}; log lines naming the operation's trace: {named}, the RPC's: {rpc_lines}",
        hex(&operation.trace_id),
        done.id,
        accounts.len(),
        calls.len()
    );
}
