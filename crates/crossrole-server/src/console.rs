//! The web console, served on crossroled's own listener under `/console/`: an organization tree with each account's
//! state per binding, an access matrix, operations followed live, bindings. It is a static page built from `web/`
//! (TypeScript, Vite) into `console/`, checked in and embedded in the binary (so a plain `cargo build` needs no
//! Node, and one binary serves everything); `cargo xtask console` rebuilds it and the test command fails when the
//! checked-in build drifts from `web/`.
//!
//! The page holds no data: it asks the same gRPC API as every client, as gRPC-Web, with the token the user signs in
//! with (kept in the tab's sessionStorage, sent in the Authorization header, never in a URL). So the page's own
//! files need no token, and every datum behind them needs one, checked by the same [`crate::auth::AuthLayer`].
//! Every response carries a Content-Security-Policy that allows only this origin's scripts, styles and calls, and
//! no framing (`frame-ancestors 'none'`), with `nosniff` and `no-referrer`: nothing from elsewhere runs in the page,
//! no other site can frame it, and the page works on an air-gapped network (no CDN, no external font).

use std::{
    future::{Ready, ready},
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::future::Either;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::Full;
use tonic::body::Body;

/// Where the console lives.
pub const PREFIX: &str = "/console/";

/// The built console: path, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("/console/", "text/html; charset=utf-8", include_bytes!("../console/index.html")),
    ("/console/index.html", "text/html; charset=utf-8", include_bytes!("../console/index.html")),
    ("/console/assets/app.js", "text/javascript; charset=utf-8", include_bytes!("../console/assets/app.js")),
    ("/console/assets/index.css", "text/css; charset=utf-8", include_bytes!("../console/assets/index.css")),
    ("/console/favicon.svg", "image/svg+xml", include_bytes!("../console/favicon.svg")),
];

/// The page's security policy: this origin only, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether `path` is the console's (served without a token: its files hold no data).
pub fn is_console(path: &str) -> bool {
    path == "/" || path == "/favicon.ico" || path == "/console" || path.starts_with(PREFIX)
}

/// Serves the console's files in front of the API (outermost), when enabled.
#[derive(Clone, Copy)]
pub struct ConsoleLayer {
    /// Serve the console (`console = true`, the default).
    pub enabled: bool,
}

impl<S> tower::Layer<S> for ConsoleLayer {
    type Service = ConsoleService<S>;

    fn layer(&self, inner: S) -> ConsoleService<S> {
        ConsoleService { inner, enabled: self.enabled }
    }
}

/// The service [`ConsoleLayer`] makes.
#[derive(Clone)]
pub struct ConsoleService<S> {
    inner: S,
    enabled: bool,
}

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for ConsoleService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if !self.enabled || !is_console(path) {
            return Either::Left(self.inner.call(request));
        }
        Either::Right(ready(Ok(answer(request.method(), path))))
    }
}

/// The console's answer to `method` on `path`.
fn answer(method: &Method, path: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", b"GET only\n", method);
    }
    if path == "/favicon.ico" {
        return respond(StatusCode::OK, "image/svg+xml", include_bytes!("../console/favicon.svg"), method);
    }
    if path == "/" || path == "/console" {
        let mut r = respond(StatusCode::PERMANENT_REDIRECT, "text/plain; charset=utf-8", b"", method);
        r.headers_mut().insert(header::LOCATION, HeaderValue::from_static(PREFIX));
        return r;
    }
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, kind, bytes)) => respond(StatusCode::OK, kind, bytes, method),
        None => respond(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", method),
    }
}

fn respond(status: StatusCode, kind: &'static str, bytes: &'static [u8], method: &Method) -> Response<Body> {
    let body = if method == Method::HEAD { Body::empty() } else { Body::new(Full::new(Bytes::from_static(bytes))) };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_its_paths_only_and_every_answer_is_locked_down() {
        assert!(is_console("/") && is_console("/console") && is_console("/console/assets/app.js"));
        assert!(!is_console("/crossrole.v1.OperationService/ListOperations") && !is_console("/consoles"));
        let page = answer(&Method::GET, "/console/");
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors 'none'"));
        assert_eq!(answer(&Method::GET, "/").headers()[header::LOCATION], PREFIX);
        assert_eq!(answer(&Method::GET, "/console/nothing").status(), StatusCode::NOT_FOUND);
        assert_eq!(answer(&Method::POST, "/console/").status(), StatusCode::METHOD_NOT_ALLOWED);
        for (path, _, _) in ASSETS {
            let r = answer(&Method::GET, path);
            assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        }
    }
}
