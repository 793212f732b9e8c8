//! A fault-injecting proxy between crossroled and an emulator, one per AWS service.
//!
//! It forwards each request to the emulator unchanged, or answers it with a fault the way AWS does: throttling
//! (`Throttling` in the query protocol's XML for IAM and STS, `TooManyRequestsException` in JSON for
//! Organizations, HTTP 400), an internal error (500) or unavailability (503) in the same shapes, a connection reset
//! before the emulator saw the request, or a response lost *after* the emulator carried the request out (the
//! connection closes instead of answering). Rules pick requests by action and by fraction, capped in count or
//! limited to a window, or to one account. Every request is counted by action and by account, with the fault it got,
//! and, when asked ([`Proxy::record`]), kept whole: its action, account, form parameters and the status it got, in
//! the order requests arrived (for the IAM judge, and to count the writes a replica sent).
//!
//! A request's account is that of the credentials that signed it: the proxies of a run share a [`Keys`] book, in
//! which the STS proxy writes each access key that `AssumeRole` hands out with the account of its assumed role. A
//! key the book does not know (the caller's own) counts as account `?`. With `CROSSROLE_E2E_PROXY_LOG` set, every
//! request is logged to stderr with its account.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Instant,
};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use tokio::net::TcpListener;

/// How the service speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Form-encoded requests, XML responses (IAM, STS).
    Query,
    /// `X-Amz-Target` and JSON (Organizations).
    Json,
}

/// A fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// AWS's throttling error (HTTP 400).
    Throttle,
    /// An internal error (HTTP 500).
    Internal,
    /// Service unavailable (HTTP 503).
    Unavailable,
    /// The connection closes before the request reaches the emulator.
    Reset,
    /// The emulator carries the request out; its response never arrives.
    Lost,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 5] = [Fault::Throttle, Fault::Internal, Fault::Unavailable, Fault::Reset, Fault::Lost];
}

/// Which requests get which faults.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Only these actions (`CreateRole`, `ListAccountsForParent`, …); all when empty.
    pub actions: Vec<String>,
    /// The share of matching requests that get a fault, 0 to 1.
    pub fraction: f64,
    /// The faults, taken in turn.
    pub faults: Vec<Fault>,
    /// At most this many faults from this rule.
    pub max: Option<u64>,
    /// Only until then.
    pub until: Option<Instant>,
    /// Only requests signed with credentials of these accounts; all when empty.
    pub accounts: Vec<String>,
}

impl Rule {
    /// `fraction` of every request gets one of `faults`.
    pub fn fraction(fraction: f64, faults: &[Fault]) -> Rule {
        Rule { actions: vec![], fraction, faults: faults.to_vec(), max: None, until: None, accounts: vec![] }
    }

    /// Every request made with `account`'s credentials gets one of `faults`.
    pub fn account(account: &str, faults: &[Fault]) -> Rule {
        Rule { accounts: vec![account.to_string()], ..Rule::fraction(1.0, faults) }
    }
}

/// Access keys handed out by `AssumeRole`, and the accounts they act in; shared by the proxies of a run.
#[derive(Debug, Default)]
pub struct Keys(Mutex<HashMap<String, String>>);

impl Keys {
    /// The account of a request signed with `access_key`, `?` when unknown.
    fn account(&self, access_key: &str) -> String {
        self.0.lock().ok().and_then(|k| k.get(access_key).cloned()).unwrap_or_else(|| "?".to_string())
    }

    /// Learns the key and account of an `AssumeRole` response (query-protocol XML).
    fn learn(&self, response: &str) {
        let between = |open: &str, close: &str| {
            let start = response.find(open)? + open.len();
            Some(response[start..].split(close).next()?.to_string())
        };
        let key = between("<AccessKeyId>", "</AccessKeyId>");
        let account = between("<Arn>arn:", "</Arn>").and_then(|arn| arn.split(':').nth(3).map(str::to_string));
        if let (Some(key), Some(account), Ok(mut keys)) = (key, account, self.0.lock()) {
            keys.insert(key, account);
        }
    }
}

/// What the proxy saw for one action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Requests.
    pub requests: u64,
    /// Faults given, by kind.
    pub faults: BTreeMap<Fault, u64>,
}

/// A request the proxy kept (see [`Proxy::record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The action (`CreateRole`).
    pub action: String,
    /// The account of the credentials that signed it (`?`: the caller's own).
    pub account: String,
    /// The request's form parameters, decoded, in order (query protocol); empty for JSON.
    pub params: Vec<(String, String)>,
    /// The HTTP status it got; 0 when it got a fault or no answer reached the caller.
    pub status: u16,
    /// Whether it was sent on to the emulator (it got no fault, or a lost response after the emulator carried it
    /// out): a write that reached AWS.
    pub forwarded: bool,
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The values of a member list (`Tags.member.1.Key`, …) as `(key, value)` pairs of `{prefix}.member.N.{a}` and
    /// `.{b}`, or single values when `b` is empty (`TagKeys.member.N`).
    pub fn members(&self, prefix: &str, a: &str, b: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for n in 1.. {
            let at = |field: &str| {
                let name = if field.is_empty() {
                    format!("{prefix}.member.{n}")
                } else {
                    format!("{prefix}.member.{n}.{field}")
                };
                self.param(&name).map(str::to_string)
            };
            match (at(a), if b.is_empty() { Some(String::new()) } else { at(b) }) {
                (Some(x), Some(y)) => out.push((x, y)),
                _ => break,
            }
        }
        out
    }

    /// Whether the request was answered with success.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

struct Shared {
    upstream: String,
    recording: std::sync::atomic::AtomicBool,
    recorded: Mutex<Vec<Recorded>>,
    protocol: Protocol,
    rules: Mutex<Vec<(Rule, u64)>>,
    seen: Mutex<BTreeMap<String, Seen>>,
    by_account: Mutex<BTreeMap<String, Seen>>,
    keys: Arc<Keys>,
    log: bool,
    /// xorshift state: the faults are reproducible for a seed.
    rng: Mutex<u64>,
    turn: Mutex<usize>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`: where to point the service's endpoint.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The connection closes without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

impl Proxy {
    /// A proxy to `upstream` (`http://127.0.0.1:4566`), answering faults in `protocol`'s shape; `seed` makes the
    /// choice of requests reproducible; `keys` is the run's book of access keys.
    pub async fn start(upstream: String, protocol: Protocol, seed: u64, keys: Arc<Keys>) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("fault proxy: bind")?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            recording: Default::default(),
            recorded: Mutex::new(Vec::new()),
            protocol,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(BTreeMap::new()),
            by_account: Mutex::new(BTreeMap::new()),
            keys,
            log: std::env::var_os("CROSSROLE_E2E_PROXY_LOG").is_some(),
            rng: Mutex::new(seed.max(1)),
            turn: Mutex::new(0),
        });
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (shared, client) = (serving.clone(), client.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), client.clone(), req));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Proxy { url, shared, task })
    }

    /// Replaces the rules (none: every request goes through).
    pub fn set(&self, rules: Vec<Rule>) {
        if let Ok(mut r) = self.shared.rules.lock() {
            *r = rules.into_iter().map(|rule| (rule, 0)).collect();
        }
    }

    /// Keeps every request from now on (or stops keeping them).
    pub fn record(&self, on: bool) {
        self.shared.recording.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The requests kept, in the order they arrived.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// What the proxy saw, by action.
    pub fn seen(&self) -> BTreeMap<String, Seen> {
        self.shared.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// What the proxy saw, by the account of the credentials (`?`: the caller's own).
    pub fn by_account(&self) -> BTreeMap<String, Seen> {
        self.shared.by_account.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Requests and faults in all.
    pub fn totals(&self) -> (u64, BTreeMap<Fault, u64>) {
        let mut faults = BTreeMap::new();
        let mut requests = 0;
        for s in self.seen().values() {
            requests += s.requests;
            for (f, n) in &s.faults {
                *faults.entry(*f).or_default() += n;
            }
        }
        (requests, faults)
    }
}

impl Shared {
    fn random(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Counts the request and picks its fault, if any.
    fn pick(&self, action: &str, account: &str) -> Option<Fault> {
        let fault = {
            let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let mut chosen = None;
            for (rule, given) in rules.iter_mut() {
                let applies = (rule.actions.is_empty() || rule.actions.iter().any(|a| a == action))
                    && (rule.accounts.is_empty() || rule.accounts.iter().any(|a| a == account))
                    && rule.until.is_none_or(|u| now < u)
                    && rule.max.is_none_or(|m| *given < m)
                    && !rule.faults.is_empty();
                if applies && self.random() < rule.fraction {
                    let mut turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
                    *turn += 1;
                    *given += 1;
                    chosen = Some(rule.faults[*turn % rule.faults.len()]);
                    break;
                }
            }
            chosen
        };
        for (book, key) in [(&self.seen, action), (&self.by_account, account)] {
            let mut seen = book.lock().unwrap_or_else(|e| e.into_inner());
            let s = seen.entry(key.to_string()).or_default();
            s.requests += 1;
            if let Some(f) = fault {
                *s.faults.entry(f).or_default() += 1;
            }
        }
        if self.log {
            eprintln!("fault proxy: {action} account={account} fault={fault:?}");
        }
        fault
    }

    /// The account of the credentials that signed a request (SigV4's `Credential=<access key>/…`).
    fn account(&self, headers: &hyper::HeaderMap) -> String {
        let key = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("Credential=").nth(1))
            .and_then(|v| v.split('/').next());
        key.map(|k| self.keys.account(k)).unwrap_or_else(|| "?".to_string())
    }

    /// The action a request asks for.
    fn action(&self, headers: &hyper::HeaderMap, body: &[u8]) -> String {
        match self.protocol {
            Protocol::Json => headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .and_then(|t| t.rsplit('.').next())
                .unwrap_or("?")
                .to_string(),
            Protocol::Query => String::from_utf8_lossy(body)
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .unwrap_or("?")
                .to_string(),
        }
    }

    /// The fault as AWS would send it.
    fn answer(&self, fault: Fault) -> Response<Full<Bytes>> {
        let (status, code, message) = match (self.protocol, fault) {
            (Protocol::Query, Fault::Throttle) => (400, "Throttling", "Rate exceeded"),
            (Protocol::Json, Fault::Throttle) => (
                400,
                "TooManyRequestsException",
                "AWS Organizations can't complete your request because another request is already in progress. Try again later.",
            ),
            (Protocol::Query, Fault::Internal) => (500, "ServiceFailure", "An internal error occurred (fault proxy)"),
            (Protocol::Json, Fault::Internal) => (500, "ServiceException", "An internal error occurred (fault proxy)"),
            (Protocol::Query, _) => (503, "ServiceUnavailable", "Service unavailable (fault proxy)"),
            (Protocol::Json, _) => (503, "ServiceException", "Service unavailable (fault proxy)"),
        };
        let (content_type, body) = match self.protocol {
            Protocol::Query => (
                "text/xml",
                format!(
                    "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                    if status == 400 { "Sender" } else { "Receiver" }
                ),
            ),
            Protocol::Json => {
                ("application/x-amz-json-1.1", serde_json::json!({"__type": code, "Message": message}).to_string())
            }
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        response
    }
}

async fn handle(
    shared: Arc<Shared>,
    client: Client<HttpConnector, Full<Bytes>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let action = shared.action(&parts.headers, &body);
    let account = shared.account(&parts.headers);
    let fault = shared.pick(&action, &account);
    // The request's place in the record, kept before it is forwarded: the order is the order of arrival.
    let slot = shared.recording.load(std::sync::atomic::Ordering::SeqCst).then(|| {
        let params = match shared.protocol {
            Protocol::Query => form_params(&body),
            Protocol::Json => Vec::new(),
        };
        let mut recorded = shared.recorded.lock().unwrap_or_else(|e| e.into_inner());
        recorded.push(Recorded {
            action: action.clone(),
            account: account.clone(),
            params,
            status: 0,
            forwarded: matches!(fault, None | Some(Fault::Lost)),
            at: Instant::now(),
        });
        recorded.len() - 1
    });
    let answered = |status: u16| {
        if let Some(i) = slot
            && let Ok(mut r) = shared.recorded.lock()
            && let Some(r) = r.get_mut(i)
        {
            r.status = status;
        }
    };
    match fault {
        Some(Fault::Reset) => return Err(Dropped),
        Some(f @ (Fault::Throttle | Fault::Internal | Fault::Unavailable)) => return Ok(shared.answer(f)),
        Some(Fault::Lost) | None => {}
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forward = Request::builder().method(parts.method.clone()).uri(format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        forward = forward.header(name, value);
    }
    let forward = forward.body(Full::new(body)).map_err(|_| Dropped)?;
    let response = client.request(forward).await.map_err(|_| Dropped)?;
    let (head, body) = response.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    if action == "AssumeRole" && head.status.is_success() {
        shared.keys.learn(&String::from_utf8_lossy(&body));
    }
    if fault == Some(Fault::Lost) {
        // Carried out by the emulator; the caller never hears. Kept with the status the emulator gave.
        answered(head.status.as_u16());
        return Err(Dropped);
    }
    answered(head.status.as_u16());
    Ok(Response::from_parts(head, Full::new(body)))
}

/// The parameters of a form-encoded body, decoded.
fn form_params(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The three services behind proxies, and crossroled's environment pointing at them.
pub struct Proxied {
    /// IAM's.
    pub iam: Proxy,
    /// STS's.
    pub sts: Proxy,
    /// Organizations'.
    pub organizations: Proxy,
}

impl Proxied {
    /// Proxies to the emulators `cargo xtask e2e` started; `seed` makes the faults reproducible.
    pub async fn start(seed: u64) -> Proxied {
        let upstream =
            |var: &str| std::env::var(var).unwrap_or_else(|_| panic!("{var}: run through `cargo xtask e2e`"));
        let keys = Arc::new(Keys::default());
        let start = |var: &str, protocol, seed| Proxy::start(upstream(var), protocol, seed, keys.clone());
        Proxied {
            iam: start("AWS_ENDPOINT_URL_IAM", Protocol::Query, seed).await.expect("IAM's proxy"),
            sts: start("AWS_ENDPOINT_URL_STS", Protocol::Query, seed + 1).await.expect("STS's proxy"),
            organizations: start("AWS_ENDPOINT_URL_ORGANIZATIONS", Protocol::Json, seed + 2)
                .await
                .expect("Organizations' proxy"),
        }
    }

    /// crossroled's environment: each service's endpoint is its proxy.
    pub fn env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("AWS_ENDPOINT_URL_IAM", self.iam.url.as_str()),
            ("AWS_ENDPOINT_URL_STS", self.sts.url.as_str()),
            ("AWS_ENDPOINT_URL_ORGANIZATIONS", self.organizations.url.as_str()),
        ]
    }

    /// The same rules on every proxy.
    pub fn set(&self, rules: &[Rule]) {
        for p in [&self.iam, &self.sts, &self.organizations] {
            p.set(rules.to_vec());
        }
    }

    /// Keeps every request (or stops), on every proxy.
    pub fn record(&self, on: bool) {
        for p in [&self.iam, &self.sts, &self.organizations] {
            p.record(on);
        }
    }

    /// Requests and faults per service, for the test's output.
    pub fn report(&self) -> String {
        [("IAM", &self.iam), ("STS", &self.sts), ("Organizations", &self.organizations)]
            .iter()
            .map(|(name, p)| {
                let (requests, faults) = p.totals();
                let given: u64 = faults.values().sum();
                format!("{name}: {requests} requests, {given} faults {faults:?}")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
