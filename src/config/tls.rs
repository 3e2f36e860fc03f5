//! The `[tls]` section: TLS on the NATS port, as nats-server's `tls {}` block. On when
//! `cert_file` and `key_file` are set; then every client must use TLS.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use shards::conn::tls::TlsFiles;

use super::Dur;

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// The server's certificate chain (PEM).
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// The CAs client certificates must chain to (PEM), with `verify`.
    pub ca_file: Option<PathBuf>,
    /// Clients must present a certificate signed by `ca_file`.
    pub verify: bool,
    /// As `verify`, and the certificate's names pick the user (no password).
    pub verify_and_map: bool,
    /// How long the handshake may take.
    pub timeout: Dur,
    /// Clients start TLS at once (INFO comes over TLS): for clients set to `tls_first`.
    pub handshake_first: bool,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert_file: None,
            key_file: None,
            ca_file: None,
            verify: false,
            verify_and_map: false,
            timeout: Dur(Duration::from_secs(2)),
            handshake_first: false,
        }
    }
}

impl TlsSection {
    /// The engine's view: None when TLS is off.
    pub fn engine(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert_file: self.cert_file.clone()?,
            key_file: self.key_file.clone()?,
            ca_file: self.ca_file.clone(),
            verify: self.verify,
            verify_and_map: self.verify_and_map,
            timeout: self.timeout.0,
            handshake_first: self.handshake_first,
        })
    }

    /// Checks that the options make sense together (the files are read at start).
    pub fn validate(&self) -> Result<(), String> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => return Err("tls.cert_file is set but tls.key_file is not".into()),
            (None, Some(_)) => return Err("tls.key_file is set but tls.cert_file is not".into()),
            (None, None) if self.verify || self.verify_and_map || self.ca_file.is_some() => {
                return Err(
                    "tls.verify, verify_and_map and ca_file need tls.cert_file and tls.key_file"
                        .into(),
                )
            }
            _ => {}
        }
        if (self.verify || self.verify_and_map) && self.ca_file.is_none() {
            return Err("tls.verify and tls.verify_and_map need tls.ca_file (the CAs client certificates must chain to)".into());
        }
        if self.timeout.0.is_zero() {
            return Err("tls.timeout must be more than 0s".into());
        }
        Ok(())
    }
}
