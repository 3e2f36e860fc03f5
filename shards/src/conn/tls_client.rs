//! TLS as a client: the leaf link to a hub whose leafnode port wants TLS. The hub's
//! certificate must chain to `ca_file` and name the host dialled (an IP address or a DNS
//! name; `server_name` overrides it); a client certificate is presented when the hub
//! verifies leaf nodes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore};

use super::tls::{establish, HandshakeError, Tls, TlsError};
use super::transport::Tcp;

/// `[leafnode.tls]` as the engine takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// The CAs the hub's certificate must chain to (PEM).
    pub ca_file: PathBuf,
    /// A certificate and key to present, when the hub verifies leaf nodes.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name the hub's certificate must carry, when not the host dialled.
    pub server_name: Option<String>,
    /// How long the handshake may take.
    pub timeout: Duration,
}

/// TLS ready to dial with.
#[derive(Debug, Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    pub files: ClientTlsFiles,
}

fn file_error(key: &'static str, path: &Path, reason: String) -> TlsError {
    TlsError::File {
        key,
        path: path.display().to_string(),
        reason,
    }
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| file_error(key, path, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate in it".into()));
    }
    Ok(certs)
}

impl ClientTls {
    /// Loads the CAs (and the client certificate) and builds the rustls configuration.
    pub fn load(files: &ClientTlsFiles) -> Result<ClientTls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for c in certs("ca_file", &files.ca_file)? {
            roots
                .add(c)
                .map_err(|e| file_error("ca_file", &files.ca_file, e.to_string()))?;
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&files.cert_file, &files.key_file) {
            (Some(cert), Some(key)) => {
                let chain = certs("cert_file", cert)?;
                let key_der = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| file_error("key_file", key, e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| file_error("key_file", key, e.to_string()))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Arc::new(config),
            files: files.clone(),
        })
    }

    /// Starts TLS on `tcp` to `host` (the host part of the remote dialled).
    pub async fn connect(&self, tcp: Tcp, host: &str) -> Result<Tls, HandshakeError> {
        let name = self.files.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_string()).map_err(|e| {
            HandshakeError::Failed(std::io::Error::other(format!(
                "\"{name}\" is not a host name or IP address: {e}"
            )))
        })?;
        let session = ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| HandshakeError::Failed(std::io::Error::other(e)))?;
        establish(
            Connection::Client(session),
            tcp,
            Vec::new(),
            self.files.timeout,
        )
        .await
    }
}
