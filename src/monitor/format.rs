//! How monitoring writes values the way nats-server does: times as RFC 3339 with
//! nanoseconds, durations as Go's `time.Duration` strings ("1h2m3.5s", "1.234ms"), and
//! the JSON, text and error responses themselves.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

/// A response body.
pub type Body = Full<Bytes>;

/// `t` as RFC 3339 in UTC with nanoseconds, e.g. `2026-12-02T08:00:05.123456789Z`.
pub fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// `d` as Go prints a `time.Duration`: "0s", "850ns", "1.234µs", "12.5ms", "3.2s",
/// "1m2.5s", "2h0m3s".
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim(nanos as f64 / 1e3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim(nanos as f64 / 1e6));
    }
    let secs = d.as_secs();
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    let s = trim((secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

/// A number with at most 9 decimals and no trailing zeros.
fn trim(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Result<Response<Body>, Infallible> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    Ok(respond(status, "application/json", Bytes::from(body)))
}

/// An error as JSON: `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: String) -> Result<Response<Body>, Infallible> {
    json(status, &serde_json::json!({ "error": message }))
}

/// A response with `content_type` and `body`.
pub fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(go_duration(Duration::from_nanos(1_234)), "1.234µs");
        assert_eq!(go_duration(Duration::from_micros(12_500)), "12.5ms");
        assert_eq!(go_duration(Duration::from_millis(3_200)), "3.2s");
        assert_eq!(go_duration(Duration::from_millis(62_500)), "1m2.5s");
        assert_eq!(go_duration(Duration::from_secs(7203)), "2h0m3s");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_764_662_405, 123_000_000);
        assert_eq!(rfc3339(t), "2025-12-02T08:00:05.123Z");
    }
}
