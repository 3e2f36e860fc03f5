//! Which path answers what, the query parameters and their checks, and the shard
//! snapshots the endpoints read (taken off the runtime thread: a snapshot waits for
//! every shard's answer).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use shards::metrics::{ShardSnapshot, SnapshotRequest};
use shards::server::Controller;

use crate::monitor::format::{self, Body};
use crate::monitor::{assets, connz, leafz, prom, shardz, varz, State};

/// The paths served, for the 404 answer.
const PATHS: [&str; 10] = [
    "/",
    "/healthz",
    "/varz",
    "/connz",
    "/subsz",
    "/leafz",
    "/shardz",
    "/channelz",
    "/metrics",
    "/assets",
];

/// Answers one request.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return format::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{} is not allowed: the monitoring endpoints answer GET",
                req.method()
            ),
        );
    }
    let path = req.uri().path().to_string();
    let query = match Query::parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return format::error(StatusCode::BAD_REQUEST, e),
    };
    if let Some(asset) = assets::get(&path) {
        state.count_request("/");
        return Ok(asset);
    }
    match path.as_str() {
        "/healthz" | "/varz" | "/connz" | "/subsz" | "/leafz" | "/shardz" | "/channelz"
        | "/metrics" => state.count_request(&path),
        _ => {
            return format::json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": format!("no such path: {path}"), "paths": PATHS }),
            )
        }
    }
    if path == "/healthz" {
        return healthz(&state);
    }
    let Some(controller) = state.controller.get().cloned() else {
        return format::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is starting".into(),
        );
    };
    let result = match path.as_str() {
        "/varz" => varz::varz(&state, &controller, &query).await,
        "/connz" => connz::connz(&controller, &query).await,
        "/subsz" => connz::subsz(&controller, &query).await,
        "/leafz" => leafz::leafz(&controller).await,
        "/shardz" => shardz::shardz(&controller, &query).await,
        "/channelz" => shardz::channelz(&controller, &query).await,
        _ => prom::metrics(&controller).await,
    };
    match result {
        Ok(response) => Ok(response),
        Err(Failure::BadQuery(e)) => format::error(StatusCode::BAD_REQUEST, e),
        Err(Failure::Unavailable(e)) => format::error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

fn healthz(state: &State) -> Result<Response<Body>, Infallible> {
    let unavailable = |why: &str| {
        format::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "status": "unavailable", "error": why }),
        )
    };
    if state.draining.load(Ordering::Relaxed) {
        return unavailable("draining: the server is stopping");
    }
    if state.controller.get().is_none() {
        return unavailable("starting");
    }
    format::json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// Why an endpoint could not answer.
#[derive(Debug)]
pub enum Failure {
    /// A query parameter is wrong (400); the text names it.
    BadQuery(String),
    /// The shards did not answer (503).
    Unavailable(String),
}

/// Every shard's snapshot, taken on a blocking thread.
pub async fn snapshots(
    controller: &Controller,
    request: SnapshotRequest,
) -> Result<Vec<ShardSnapshot>, Failure> {
    let controller = controller.clone();
    match tokio::task::spawn_blocking(move || controller.snapshot(request)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(Failure::Unavailable(e.to_string())),
        Err(e) => Err(Failure::Unavailable(format!("snapshot task failed: {e}"))),
    }
}

/// Query parameters, percent-decoded.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Result<Query, String> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(k)?, decode(v)?));
        }
        Ok(Query(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A whole number, `default` when absent; more than `max` is refused.
    pub fn number(&self, name: &str, default: usize, max: usize) -> Result<usize, Failure> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: usize = v.parse().map_err(|_| {
            Failure::BadQuery(format!(
                "bad value for {name}: {v:?} (expected a whole number)"
            ))
        })?;
        if n > max {
            return Err(Failure::BadQuery(format!(
                "bad value for {name}: {n} (at most {max})"
            )));
        }
        Ok(n)
    }

    /// A flag: `1`, `true` or an empty value turn it on; `0` or `false` off.
    pub fn flag(&self, name: &str) -> Result<bool, Failure> {
        match self.get(name) {
            None => Ok(false),
            Some("" | "1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(v) => Err(Failure::BadQuery(format!(
                "bad value for {name}: {v:?} (expected 1, true, 0 or false)"
            ))),
        }
    }

    /// One of `choices`, `default` when absent.
    pub fn choice<'c>(
        &self,
        name: &str,
        default: &'c str,
        choices: &[&'c str],
    ) -> Result<&'c str, Failure> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        choices.iter().copied().find(|c| *c == v).ok_or_else(|| {
            Failure::BadQuery(format!(
                "bad value for {name}: {v:?} (one of {})",
                choices.join(", ")
            ))
        })
    }
}

/// Percent-decoding (and `+` for space), as browsers encode query strings.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-encoding in the query: {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("the query is not UTF-8: {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_checked() {
        let q = Query::parse("offset=2&limit=10&sort=msgs_to&subs=1&name=a%20b+c").expect("parse");
        assert_eq!(q.number("offset", 0, 100).ok(), Some(2));
        assert_eq!(q.number("missing", 7, 100).ok(), Some(7));
        assert!(
            matches!(q.number("limit", 0, 5), Err(Failure::BadQuery(e)) if e.contains("at most 5"))
        );
        assert_eq!(q.flag("subs").ok(), Some(true));
        assert_eq!(q.get("name"), Some("a b c"));
        assert_eq!(
            q.choice("sort", "cid", &["cid", "msgs_to"]).ok(),
            Some("msgs_to")
        );
        let bad = Query::parse("offset=x&subs=maybe").expect("parse");
        assert!(
            matches!(bad.number("offset", 0, 9), Err(Failure::BadQuery(e)) if e.contains("offset"))
        );
        assert!(matches!(bad.flag("subs"), Err(Failure::BadQuery(e)) if e.contains("subs")));
        assert!(Query::parse("a=%zz").is_err());
    }
}
