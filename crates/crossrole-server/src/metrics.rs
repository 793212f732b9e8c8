//! Prometheus metrics on a listener of their own (`metrics_listen`): `GET /metrics`, the text exposition format.
//!
//! Names follow Prometheus' conventions (a `crossrole_` prefix, base units, `_total` for counters) and labels stay
//! few (kind, state, outcome, service, operation): no account ids, no spec names, nothing secret. Counters count
//! since this crossroled started. Like gRPC health, the listener takes no token: bind it where only the scraper
//! reaches it.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `crossrole_build_info` | gauge | `version` |
//! | `crossrole_operations_total` | counter | `kind`, `state` (final) |
//! | `crossrole_operations_running` | gauge | |
//! | `crossrole_operation_duration_seconds` | histogram | `kind` |
//! | `crossrole_accounts_total` | counter | `outcome` |
//! | `crossrole_aws_calls_total` | counter | `service`, `operation` (each attempt) |
//! | `crossrole_aws_throttled_total` | counter | |
//! | `crossrole_aws_retries_total` | counter | |
//! | `crossrole_aws_rate_share` | gauge | replicas alive sharing the AWS rates (1 alone): each uses its share |
//! | `crossrole_aws_rate_limit` | gauge | `service`: each bucket's configured calls per second |
//! | `crossrole_aws_rate_buckets` | gauge | `service`: buckets in use (IAM: one per account, STS: per caller) |
//! | `crossrole_aws_rate_buckets_backed_off` | gauge | `service`: buckets adapted below their rate after throttling |
//! | `crossrole_aws_rate_lowest` | gauge | `service`: the lowest adapted rate among them |
//! | `crossrole_watchers` | gauge | WatchOperation streams open |
//! | `crossrole_journal_write_seconds` | histogram | a batch of events and account results written |
//! | `crossrole_bindings` | gauge | |
//! | `crossrole_binding_accounts` | gauge | `state` (`in_sync`, `drifted`, `failed`, `pending`), over all bindings |
//! | `crossrole_binding_reconcile_lag_seconds` | gauge | the most overdue binding's wait past its due time |
//! | `crossrole_organization_events_total` | counter | `kind` (`joined`, `moved`, `left`, `tagged`, `units`, `ignored`, `malformed`) |
//! | `crossrole_organization_events_receive_errors_total` | counter | |

use std::{convert::Infallible, fmt::Write, net::SocketAddr, sync::Arc};

use anyhow::Context;
use http_body_util::Full;
use hyper::{Request, Response, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinHandle};

use crossrole_aws::calls::BucketSummary;

use crate::state::State;

/// Scrapers connected at once, at most.
const MAX_CONNECTIONS: usize = 32;

/// Serves `/metrics` for `state` on `at`; returns where it listens and the task (aborted with the server).
pub(crate) async fn serve(at: SocketAddr, state: State) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(at).await.with_context(|| format!("metrics_listen: cannot bind {at}"))?;
    let bound = listener.local_addr()?;
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // A bounded number of scrapers at once: one more is closed at once.
            let Ok(permit) = connections.clone().try_acquire_owned() else { continue };
            let state = state.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(answer(&state, req.uri().path()).await) }
                });
                // A scraper sends its request at once: a connection that dribbles its headers is closed.
                let _ = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    tracing::info!(addr = %bound, "metrics (Prometheus, /metrics) listening");
    Ok((bound, task))
}

async fn answer(state: &State, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match path {
        "/metrics" => (200, "text/plain; version=0.0.4; charset=utf-8", exposition(state).await),
        _ => (404, "text/plain; charset=utf-8", "not found: metrics are at /metrics\n".to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::NOT_FOUND);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

/// One metric's header.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value, escaped as the text format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The text exposition of `state`'s metrics.
pub(crate) async fn exposition(state: &State) -> String {
    let mut out = String::new();
    let engine = &state.engine;
    let metrics = engine.metrics();

    family(&mut out, "crossrole_build_info", "gauge", "crossroled's version.");
    let _ = writeln!(out, "crossrole_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));

    family(&mut out, "crossrole_operations_total", "counter", "Operations finished, by kind and final state.");
    for ((kind, state), n) in &metrics.operations {
        let _ = writeln!(out, "crossrole_operations_total{{kind=\"{kind}\",state=\"{state}\"}} {n}");
    }
    family(&mut out, "crossrole_operations_running", "gauge", "Operations running in this crossroled.");
    let _ = writeln!(out, "crossrole_operations_running {}", engine.running_count());
    family(
        &mut out,
        "crossrole_aws_rate_share",
        "gauge",
        "Replicas sharing every AWS rate: this one uses the configured rates divided by it (1 alone).",
    );
    let _ = writeln!(out, "crossrole_aws_rate_share {}", engine.calls().share());

    let name = "crossrole_operation_duration_seconds";
    family(&mut out, name, "histogram", "How long finished operations ran in this crossroled, by kind.");
    for (kind, h) in &metrics.durations {
        for (bound, n) in h.bounds.iter().zip(&h.cumulative) {
            let _ = writeln!(out, "{name}_bucket{{kind=\"{kind}\",le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum{{kind=\"{kind}\"}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{kind=\"{kind}\"}} {}", h.count);
    }

    family(&mut out, "crossrole_accounts_total", "counter", "Accounts finished, by outcome.");
    for (outcome, n) in &metrics.accounts {
        let _ = writeln!(out, "crossrole_accounts_total{{outcome=\"{outcome}\"}} {n}");
    }

    let stats = engine.calls().global_stats();
    family(&mut out, "crossrole_aws_calls_total", "counter", "AWS requests, each attempt, by service and operation.");
    for (call, n) in stats.snapshot() {
        let (service, operation) = call.split_once(':').unwrap_or(("unknown", call.as_str()));
        let _ = writeln!(
            out,
            "crossrole_aws_calls_total{{service=\"{}\",operation=\"{}\"}} {n}",
            label(service),
            label(operation)
        );
    }
    family(&mut out, "crossrole_aws_throttled_total", "counter", "AWS requests that AWS throttled.");
    let _ = writeln!(out, "crossrole_aws_throttled_total {}", stats.throttled());
    family(&mut out, "crossrole_aws_retries_total", "counter", "AWS requests retried.");
    let _ = writeln!(out, "crossrole_aws_retries_total {}", stats.retries());

    let summaries = engine.calls().bucket_summaries();
    type Gauge = (&'static str, &'static str, fn(&BucketSummary) -> f64);
    let gauges: [Gauge; 4] = [
        ("crossrole_aws_rate_limit", "Each rate bucket's configured calls per second (0: unlimited).", |s| {
            s.configured
        }),
        ("crossrole_aws_rate_buckets", "Rate buckets in use: IAM one per account, STS per calling account.", |s| {
            s.buckets as f64
        }),
        ("crossrole_aws_rate_buckets_backed_off", "Rate buckets adapted below their rate after AWS throttled.", |s| {
            s.backed_off as f64
        }),
        ("crossrole_aws_rate_lowest", "The lowest adapted rate among a service's buckets, calls per second.", |s| {
            s.lowest
        }),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        for (service, s) in &summaries {
            let _ = writeln!(out, "{name}{{service=\"{}\"}} {}", service.as_str(), value(s));
        }
    }
    family(&mut out, "crossrole_watchers", "gauge", "WatchOperation streams open.");
    let _ = writeln!(out, "crossrole_watchers {}", state.watchers.open());
    if let Some(h) = &metrics.journal_writes {
        let name = "crossrole_journal_write_seconds";
        family(
            &mut out,
            name,
            "histogram",
            "How long the journal took to write a batch of events and account results.",
        );
        for (bound, n) in h.bounds.iter().zip(&h.cumulative) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "{name}_sum {}", h.sum);
        let _ = writeln!(out, "{name}_count {}", h.count);
    }

    bindings(&mut out, state).await;

    family(
        &mut out,
        "crossrole_organization_events_total",
        "counter",
        "Messages read from the Organizations events queue, by kind.",
    );
    for (kind, n) in state.org_events.by_kind() {
        let _ = writeln!(out, "crossrole_organization_events_total{{kind=\"{kind}\"}} {n}");
    }
    family(
        &mut out,
        "crossrole_organization_events_receive_errors_total",
        "counter",
        "Receives from the Organizations events queue that failed.",
    );
    let _ = writeln!(out, "crossrole_organization_events_receive_errors_total {}", state.org_events.receive_errors());
    out
}

async fn bindings(out: &mut String, state: &State) {
    let (mut count, mut in_sync, mut drifted, mut failed, mut pending, mut lag) = (0u64, 0u64, 0u64, 0u64, 0u64, 0i64);
    let now = crate::state::now_ms();
    let mut token = String::new();
    loop {
        let Ok((page, next)) = state.bindings.list(500, &token).await else { break };
        for b in &page {
            count += 1;
            // One that cannot be read counts as a binding, with no accounts.
            let Some(b) = b.as_read() else { continue };
            let c = &b.status.counts;
            in_sync += u64::from(c.in_sync);
            drifted += u64::from(c.drifted);
            failed += u64::from(c.failed);
            pending += u64::from(c.pending);
            if let Some(due) = b.status.next_reconcile_time {
                lag = lag.max(now - due);
            }
        }
        if next.is_empty() {
            break;
        }
        token = next;
    }
    family(out, "crossrole_bindings", "gauge", "Bindings.");
    let _ = writeln!(out, "crossrole_bindings {count}");
    family(out, "crossrole_binding_accounts", "gauge", "Accounts of all bindings, by state at their last reconcile.");
    for (s, n) in [("in_sync", in_sync), ("drifted", drifted), ("failed", failed), ("pending", pending)] {
        let _ = writeln!(out, "crossrole_binding_accounts{{state=\"{s}\"}} {n}");
    }
    family(
        out,
        "crossrole_binding_reconcile_lag_seconds",
        "gauge",
        "How long the most overdue binding has waited past its due time.",
    );
    let _ = writeln!(out, "crossrole_binding_reconcile_lag_seconds {}", lag.max(0) as f64 / 1000.0);
}
