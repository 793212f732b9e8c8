//! Logs, traces and metrics.
//!
//! Logs go to stderr, for people (`text`) or one JSON object per line (`json`), filtered by `RUST_LOG`
//! (default `info`). When the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans (per RPC, per operation, per
//! account) and metrics (operations by state, accounts by outcome, AWS calls and throttles by service) are also
//! exported over OTLP/gRPC, and the log lines of an RPC or an operation carry its span's `trace_id`. Nothing that
//! is logged or exported carries credentials or tokens.

use std::sync::Arc;

use opentelemetry::{KeyValue, metrics::MeterProvider, trace::TracerProvider};
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogFormat;

/// Exporters to flush at exit.
#[derive(Default)]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    metrics: Option<SdkMeterProvider>,
}

/// Libraries whose debug and trace logs carry request and response bodies (the AWS SDK's: trust policies,
/// ExternalIds, credentials; HTTP/2's and hyper's: gRPC frames with specs in them; PostgreSQL's: statements and
/// their parameters). They never log below `info`, whatever `RUST_LOG` asks ([`cap`]).
const CHATTY: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_http",
    "aws_smithy_query",
    "aws_smithy_json",
    "aws_smithy_xml",
    "aws_sigv4",
    "aws_runtime",
    "aws_config",
    "aws_sdk_iam",
    "aws_sdk_sts",
    "aws_sdk_organizations",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sqs",
    "aws_credential_types",
    "aws_types",
    "hyper",
    "hyper_util",
    "h2",
    "tonic",
    "tower",
    "rustls",
    "tokio_postgres",
    "postgres_protocol",
    "deadpool_postgres",
    "tonic_web",
    "opentelemetry_otlp",
];

/// The log filter: `RUST_LOG` (default `info`). It can ask anything; [`cap`] decides what the [`CHATTY`]
/// libraries may write.
pub fn filter(rust_log: Option<&str>) -> EnvFilter {
    match rust_log {
        Some(text) => EnvFilter::try_new(text).unwrap_or_else(|_| EnvFilter::new("info")),
        None => EnvFilter::new("info"),
    }
}

/// Whether `target` is one of the [`CHATTY`] libraries or a module of one.
fn chatty(target: &str) -> bool {
    CHATTY.iter().any(|c| target.strip_prefix(c).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

/// The cap every log line and span passes on its way out, whatever `RUST_LOG` says: the [`CHATTY`] libraries, and
/// their modules, never below `info`. It sits in the subscriber itself — where the logs are written — rather than
/// among `RUST_LOG`'s directives, where a more specific one (`aws_smithy_runtime::client=trace`) would win.
pub fn cap() -> tracing_subscriber::filter::FilterFn<fn(&tracing::Metadata<'_>) -> bool> {
    fn allowed(meta: &tracing::Metadata<'_>) -> bool {
        !(chatty(meta.target()) && *meta.level() > tracing::Level::INFO)
    }
    tracing_subscriber::filter::filter_fn(allowed as fn(&tracing::Metadata<'_>) -> bool)
}

/// Sets up logging and, when configured, OTLP export.
pub fn init(format: LogFormat) -> anyhow::Result<Telemetry> {
    use std::io::IsTerminal;
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    // Colours only for a person at a terminal: log files and collectors get plain text.
    let ansi = std::io::stderr().is_terminal();
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).boxed(),
    };
    let mut telemetry = Telemetry::default();
    let otel = if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        let resource = Resource::builder().with_service_name("crossroled").build();
        let spans = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        let traces = SdkTracerProvider::builder().with_batch_exporter(spans).with_resource(resource.clone()).build();
        let metrics_exporter = opentelemetry_otlp::MetricExporter::builder().with_tonic().build()?;
        let metrics =
            SdkMeterProvider::builder().with_periodic_exporter(metrics_exporter).with_resource(resource).build();
        let layer = tracing_opentelemetry::layer().with_tracer(traces.tracer("crossroled"));
        telemetry.traces = Some(traces);
        telemetry.metrics = Some(metrics);
        Some(layer)
    } else {
        None
    };
    tracing_subscriber::registry().with(cap()).with(filter).with(fmt).with(otel).try_init()?;
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    Ok(telemetry)
}

/// The span of one RPC; a W3C `traceparent` header in the request makes it a child of the caller's span. Its
/// `trace_id` field names the trace, so that the RPC's log lines do.
pub fn rpc_span(request: &http::Request<()>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let span = tracing::info_span!("rpc", method = %request.uri().path(), trace_id = tracing::field::Empty);
    if request.headers().contains_key("traceparent") {
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(request.headers())));
        let _ = span.set_parent(parent);
    }
    if let Some(id) = trace_id(&span) {
        span.record("trace_id", tracing::field::display(id));
    }
    span
}

/// The id of the trace `span` is in, in W3C's hex; `None` when traces are not exported.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Request headers, for the propagator.
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

impl Telemetry {
    /// Registers crossroled's metrics, read from the engine when exported.
    pub fn register(&self, engine: &crossrole_engine::Engine) {
        let Some(provider) = &self.metrics else { return };
        let meter = provider.meter("crossroled");
        let e = engine.clone();
        let _ = meter
            .u64_observable_counter("crossrole.operations")
            .with_description("Finished operations, by kind and final state")
            .with_callback(move |o| {
                for ((kind, state), n) in e.metrics().operations {
                    o.observe(n, &[KeyValue::new("kind", kind), KeyValue::new("state", state)]);
                }
            })
            .build();
        let e = engine.clone();
        let _ = meter
            .u64_observable_counter("crossrole.accounts")
            .with_description("Finished accounts, by outcome")
            .with_callback(move |o| {
                for (outcome, n) in e.metrics().accounts {
                    o.observe(n, &[KeyValue::new("outcome", outcome)]);
                }
            })
            .build();
        let stats = Arc::clone(engine.calls().global_stats());
        let _ = meter
            .u64_observable_counter("crossrole.aws.calls")
            .with_description("AWS calls, by service and operation, retries included")
            .with_callback(move |o| {
                for (call, n) in stats.snapshot() {
                    let (service, operation) = call.split_once(':').unwrap_or((call.as_str(), ""));
                    o.observe(
                        n,
                        &[
                            KeyValue::new("service", service.to_string()),
                            KeyValue::new("operation", operation.to_string()),
                        ],
                    );
                }
            })
            .build();
        let stats = Arc::clone(engine.calls().global_stats());
        let _ = meter
            .u64_observable_counter("crossrole.aws.throttled")
            .with_description("AWS calls throttled and retried")
            .with_callback(move |o| o.observe(stats.throttled(), &[]))
            .build();
    }

    /// Flushes and stops the exporters.
    pub fn shutdown(self) {
        if let Some(t) = self.traces {
            let _ = t.shutdown();
        }
        if let Some(m) = self.metrics {
            let _ = m.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_cap_holds_the_chatty_libraries_at_info_whatever_rust_log_asks() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let fmt = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone());
        // What the reporter set: everything, and the SDK's client module by name.
        let subscriber = tracing_subscriber::registry()
            .with(cap())
            .with(filter(Some("trace,aws_smithy_runtime::client=trace,tokio_postgres=trace")))
            .with(fmt);
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "response body: sts:ExternalId SECRET-1");
            tracing::debug!(target: "aws_smithy_runtime", "SECRET-2");
            tracing::debug!(target: "tokio_postgres::query", "executing with parameters SECRET-3");
            tracing::info!(target: "aws_smithy_runtime::client", "kept: info is allowed");
            tracing::trace!(target: "crossrole_engine::rollout", "kept: crossrole's own trace");
            tracing::trace!(target: "hyperlocal", "kept: a prefix of a name is not the library");
        });
        let logs = String::from_utf8(buffer.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default();
        assert!(!logs.contains("SECRET"), "{logs}");
        assert_eq!(logs.matches("kept:").count(), 3, "{logs}");
    }
}
