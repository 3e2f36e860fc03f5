//! Owns the CONNECT operation: extracting its JSON from the control line and decoding it into [`ConnectOptions`].
//!
//! Absent fields take the nats-server defaults (`verbose`, `pedantic` and `echo` are true),
//! unknown fields are ignored, and a JSON `null` counts as absent (as Go's decoder does).

use serde::{Deserialize, Deserializer};

use super::errors::ProtoError;
use super::lex::trim_ws;

/// The options a client sends in CONNECT.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConnectOptions {
    /// Ack every well-formed CONNECT/PUB/HPUB/SUB/UNSUB with `+OK`.
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub verbose: bool,
    /// Strict subject checks on publish.
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub pedantic: bool,
    /// Deliver this connection's own publishes to its own subscriptions.
    #[serde(default = "yes", deserialize_with = "null_as_true")]
    pub echo: bool,
    /// The client understands HPUB/HMSG.
    #[serde(default, deserialize_with = "null_as_default")]
    pub headers: bool,
    /// The client wants a 503 status message when a request reaches nobody.
    #[serde(default, deserialize_with = "null_as_default")]
    pub no_responders: bool,
    /// 0 = original protocol, 1 = accepts async INFO. Anything else is refused.
    #[serde(default, deserialize_with = "null_as_default")]
    pub protocol: i64,
    /// Client name, shown in monitoring.
    #[serde(default)]
    pub name: Option<String>,
    /// Client library language.
    #[serde(default)]
    pub lang: Option<String>,
    /// Client library version.
    #[serde(default)]
    pub version: Option<String>,
    /// User for user/password auth.
    #[serde(default)]
    pub user: Option<String>,
    /// Password for user/password auth.
    #[serde(default)]
    pub pass: Option<String>,
    /// Token for token auth.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// The client wants TLS.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tls_required: bool,
}

fn yes() -> bool {
    true
}

fn null_as_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Default for ConnectOptions {
    /// What applies when a client never sends CONNECT (a telnet user): the same as an empty
    /// CONNECT, as in nats-server: `+OK` acks, pedantic checks, echo on, no headers.
    fn default() -> ConnectOptions {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: None,
            lang: None,
            version: None,
            user: None,
            pass: None,
            auth_token: None,
            tls_required: false,
        }
    }
}

/// Parses CONNECT JSON; bad JSON -> BadConnect("..."); protocol not 0/1 -> InvalidClientProtocol; no_responders && !headers -> NoRespondersRequiresHeaders.
pub fn parse_connect(json: &[u8]) -> Result<ConnectOptions, ProtoError> {
    // serde would also map a JSON array onto the struct by position; Go refuses it.
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ProtoError::BadConnect("not a JSON object"));
    }
    let opts: ConnectOptions = serde_json::from_slice(json).map_err(|e| {
        ProtoError::BadConnect(match e.classify() {
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "a field has the wrong type",
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Io => "I/O error while reading JSON",
        })
    })?;
    if opts.protocol != 0 && opts.protocol != 1 {
        return Err(ProtoError::InvalidClientProtocol);
    }
    if opts.no_responders && !opts.headers {
        return Err(ProtoError::NoRespondersRequiresHeaders);
    }
    Ok(opts)
}

/// Extracts the JSON text from the arguments after `CONNECT` (surrounding spaces and tabs trimmed).
pub(super) fn connect_json(args: &[u8]) -> Result<&[u8], ProtoError> {
    match trim_ws(args) {
        [] => Err(ProtoError::BadArguments("CONNECT: missing JSON")),
        json => Ok(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_take_nats_defaults() {
        let o = parse_connect(b"{}");
        let o = match o {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert!(o.verbose);
        assert!(o.pedantic);
        assert!(o.echo);
        assert!(!o.headers);
        assert!(!o.no_responders);
        assert!(!o.tls_required);
        assert_eq!(o.protocol, 0);
        assert_eq!(o.name, None);
        assert_eq!(o.user, None);
    }

    #[test]
    fn official_go_client_form() {
        let json = br#"{"verbose":false,"pedantic":false,"tls_required":false,"name":"svc","lang":"go","version":"1.37.0","protocol":1,"echo":true,"headers":true,"no_responders":true}"#;
        let o = match parse_connect(json) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert!(!o.verbose);
        assert!(!o.pedantic);
        assert!(o.echo);
        assert!(o.headers);
        assert!(o.no_responders);
        assert_eq!(o.protocol, 1);
        assert_eq!(o.name.as_deref(), Some("svc"));
        assert_eq!(o.lang.as_deref(), Some("go"));
        assert_eq!(o.version.as_deref(), Some("1.37.0"));
    }

    #[test]
    fn async_nats_form_with_nulls_and_unknown_fields() {
        let json = br#"{"verbose":false,"pedantic":false,"jwt":null,"nkey":null,"signature":null,"name":null,"echo":false,"lang":"rust","version":"0.38.0","protocol":1,"tls_required":false,"user":"u","pass":"p","auth_token":null,"headers":true,"no_responders":true}"#;
        let o = match parse_connect(json) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert!(!o.echo);
        assert_eq!(o.name, None);
        assert_eq!(o.user.as_deref(), Some("u"));
        assert_eq!(o.pass.as_deref(), Some("p"));
        assert_eq!(o.auth_token, None);
    }

    #[test]
    fn null_booleans_count_as_absent() {
        let o = match parse_connect(
            br#"{"verbose":null,"echo":null,"headers":null,"protocol":null}"#,
        ) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert!(o.verbose);
        assert!(o.echo);
        assert!(!o.headers);
        assert_eq!(o.protocol, 0);
    }

    #[test]
    fn bad_json_is_bad_connect() {
        assert!(matches!(
            parse_connect(b"{\"verbose\":"),
            Err(ProtoError::BadConnect("truncated JSON"))
        ));
        assert!(matches!(
            parse_connect(b"{verbose:true}"),
            Err(ProtoError::BadConnect("malformed JSON"))
        ));
        assert!(matches!(
            parse_connect(br#"{"verbose":"yes"}"#),
            Err(ProtoError::BadConnect("a field has the wrong type"))
        ));
        assert!(matches!(
            parse_connect(b"[]"),
            Err(ProtoError::BadConnect("not a JSON object"))
        ));
        assert!(matches!(
            parse_connect(b"[true,true,true]"),
            Err(ProtoError::BadConnect("not a JSON object"))
        ));
        assert!(matches!(
            parse_connect(b""),
            Err(ProtoError::BadConnect("not a JSON object"))
        ));
        assert!(matches!(
            parse_connect(b"{} x"),
            Err(ProtoError::BadConnect(_))
        ));
        assert_eq!(ProtoError::BadConnect("malformed JSON").err_text(), None);
    }

    #[test]
    fn protocol_must_be_0_or_1() {
        assert!(parse_connect(br#"{"protocol":0}"#).is_ok());
        assert!(parse_connect(br#"{"protocol":1}"#).is_ok());
        assert!(matches!(
            parse_connect(br#"{"protocol":2}"#),
            Err(ProtoError::InvalidClientProtocol)
        ));
        assert!(matches!(
            parse_connect(br#"{"protocol":-1}"#),
            Err(ProtoError::InvalidClientProtocol)
        ));
    }

    #[test]
    fn no_responders_requires_headers() {
        assert!(matches!(
            parse_connect(br#"{"no_responders":true}"#),
            Err(ProtoError::NoRespondersRequiresHeaders)
        ));
        assert!(matches!(
            parse_connect(br#"{"no_responders":true,"headers":false}"#),
            Err(ProtoError::NoRespondersRequiresHeaders)
        ));
        assert!(parse_connect(br#"{"no_responders":true,"headers":true}"#).is_ok());
    }

    #[test]
    fn default_is_the_no_connect_profile() {
        let o = ConnectOptions::default();
        assert!(o.verbose);
        assert!(o.pedantic);
        assert!(o.echo);
        assert!(!o.headers);
        assert!(!o.no_responders);
        assert_eq!(o.protocol, 0);
    }

    #[test]
    fn connect_json_trims_and_requires_text() {
        assert_eq!(connect_json(b" \t{\"a\":1} \t"), Ok(&b"{\"a\":1}"[..]));
        assert_eq!(
            connect_json(b" \t "),
            Err(ProtoError::BadArguments("CONNECT: missing JSON"))
        );
    }
}
