//! Owns the INFO operation the server sends on accept: the [`ServerInfo`] fields and their wire encoding.
//!
//! An INFO sent by a client is parsed and ignored by the parser (see [`super::Op::Info`]).

/// The NATS server version announced in INFO: clients gate features on it.
pub const NATS_COMPAT_VERSION: &str = "2.10.0";

/// The fields of the server's INFO, serialized in declaration order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    /// Unique server id.
    pub server_id: String,
    /// Server name (defaults to the id in nats-server).
    pub server_name: String,
    /// A plausible semver; clients compare it for some features.
    pub version: String,
    /// Must be at least 1, or nats.go refuses `echo:false`.
    pub proto: u32,
    /// Go version in nats-server; any string.
    pub go: String,
    /// Listen host.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Send true: clients only use HPUB and no_responders when it is.
    pub headers: bool,
    /// Clients must send credentials in CONNECT.
    #[serde(skip_serializing_if = "is_false")]
    pub auth_required: bool,
    /// Clients must start TLS after this INFO (or before it, with `handshake_first`).
    #[serde(skip_serializing_if = "is_false")]
    pub tls_required: bool,
    /// Clients must present a certificate.
    #[serde(skip_serializing_if = "is_false")]
    pub tls_verify: bool,
    /// Largest accepted payload; clients refuse bigger publishes (0 would refuse all).
    pub max_payload: usize,
    /// Per-connection id.
    pub client_id: u64,
    /// The peer IP, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Other servers clients may connect to (the deployment's other nodes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connect_urls: Vec<String>,
    /// Lame duck mode: this server is going away; clients should move.
    #[serde(skip_serializing_if = "is_false")]
    pub ldm: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Appends `INFO {json} \r\n` (note the space before CRLF, as nats-server does).
pub fn encode_info(out: &mut Vec<u8>, info: &ServerInfo) {
    out.extend_from_slice(b"INFO ");
    let json_start = out.len();
    if serde_json::to_writer(&mut *out, info).is_err() {
        // Unreachable for these field types; keep the frame well-formed anyway.
        out.truncate(json_start);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b" \r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(client_ip: Option<String>) -> ServerInfo {
        ServerInfo {
            server_id: "NB4G".to_string(),
            server_name: "shard \"one\"".to_string(),
            version: "2.10.0".to_string(),
            proto: 1,
            go: "go1.22".to_string(),
            host: "0.0.0.0".to_string(),
            port: 4222,
            headers: true,
            auth_required: false,
            tls_required: false,
            tls_verify: false,
            max_payload: 1_048_576,
            client_id: 7,
            client_ip,
            connect_urls: Vec::new(),
            ldm: false,
        }
    }

    #[test]
    fn info_is_byte_exact_with_trailing_space() {
        let mut out = Vec::new();
        encode_info(&mut out, &sample(Some("127.0.0.1".to_string())));
        let want = concat!(
            "INFO {\"server_id\":\"NB4G\",\"server_name\":\"shard \\\"one\\\"\",",
            "\"version\":\"2.10.0\",\"proto\":1,\"go\":\"go1.22\",\"host\":\"0.0.0.0\",",
            "\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"client_id\":7,",
            "\"client_ip\":\"127.0.0.1\"} \r\n"
        );
        assert_eq!(String::from_utf8_lossy(&out), want);
    }

    #[test]
    fn info_omits_absent_client_ip_and_appends() {
        let mut out = b"x".to_vec();
        encode_info(&mut out, &sample(None));
        let want = concat!(
            "xINFO {\"server_id\":\"NB4G\",\"server_name\":\"shard \\\"one\\\"\",",
            "\"version\":\"2.10.0\",\"proto\":1,\"go\":\"go1.22\",\"host\":\"0.0.0.0\",",
            "\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"client_id\":7} \r\n"
        );
        assert_eq!(String::from_utf8_lossy(&out), want);
    }
}
