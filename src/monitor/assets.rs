//! The dashboard's files, compiled into the binary (nothing is fetched from elsewhere):
//! the page, its script and style, and uPlot (MIT, vendored from its npm package; its
//! licence is served beside it).

use bytes::Bytes;
use hyper::{Response, StatusCode};

use crate::monitor::format::{respond, Body};

/// (path, content type, contents).
const ASSETS: [(&str, &str, &str); 7] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "/format.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/format.js"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/uPlot.iife.min.js"),
    ),
    (
        "/uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/uPlot.min.css"),
    ),
    (
        "/uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/uPlot.LICENSE"),
    ),
];

/// The asset at `path`, if there is one (`/index.html` is `/`).
pub fn get(path: &str) -> Option<Response<Body>> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, kind, body)| respond(StatusCode::OK, kind, Bytes::from_static(body.as_bytes())))
}
