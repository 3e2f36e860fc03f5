//! TLS: a rustls server session around a [`Tcp`] transport. The writer's plaintext is
//! encrypted into a ciphertext buffer that goes out through the TCP transport (so the
//! write deadline works as for plain TCP); the reader's ciphertext is decrypted into its
//! buffer. Bytes handed to [`Sink::try_send`] count as sent only once their ciphertext is
//! on the socket, so nothing is left behind in the buffer when the writer believes it is
//! done.
//!
//! The start of a NATS TLS connection (`shard::runtime` runs it): INFO in plain text
//! first (unless `handshake_first`), [`first_record`] tells a plain-text client (refused
//! with `-ERR 'Secure Connection - TLS Required'`) from one starting TLS, then
//! [`handshake`] within `tls.timeout`.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::poll_fn;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{Connection, RootCertStore, ServerConfig, ServerConnection};

use super::transport::{Tcp, Transport};
use crate::writer::Sink;

/// Plaintext rustls buffers before `try_send` reports the transport full.
const PLAINTEXT_BUFFER_BYTES: usize = 256 * 1024;
/// Ciphertext read from the socket at once.
const CIPHERTEXT_READ_BYTES: usize = 64 * 1024;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// TLS as configured: files and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The CAs client certificates must chain to (with `verify`).
    pub ca_file: Option<PathBuf>,
    /// Clients must present a certificate signed by `ca_file`.
    pub verify: bool,
    /// The client certificate's names (email, DNS names, common name, subject) pick the
    /// user: a CONNECT without credentials logs in as the user so named.
    pub verify_and_map: bool,
    /// How long the handshake may take.
    pub timeout: Duration,
    /// The client starts TLS at once; INFO comes over TLS.
    pub handshake_first: bool,
}

/// Why TLS could not be set up, naming the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls.{key} {path}: {reason}")]
    File {
        key: &'static str,
        path: String,
        reason: String,
    },
    #[error("tls.verify and tls.verify_and_map need tls.ca_file: the CAs client certificates must chain to")]
    NoCa,
    #[error("TLS setup: {0}")]
    Rustls(String),
}

/// TLS ready to serve: the rustls configuration and the options.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    pub config: Arc<ServerConfig>,
    pub files: TlsFiles,
}

impl TlsSetup {
    /// Loads the certificate, key and CAs and builds the rustls configuration.
    pub fn load(files: &TlsFiles) -> Result<TlsSetup, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let file_error = |key: &'static str, path: &PathBuf, reason: String| TlsError::File {
            key,
            path: path.display().to_string(),
            reason,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert_file)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| file_error("cert_file", &files.cert_file, e.to_string()))?;
        if certs.is_empty() {
            return Err(file_error(
                "cert_file",
                &files.cert_file,
                "no PEM certificate in it".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&files.key_file)
            .map_err(|e| file_error("key_file", &files.key_file, e.to_string()))?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let builder = if files.verify || files.verify_and_map {
            let ca = files.ca_file.as_ref().ok_or(TlsError::NoCa)?;
            let mut roots = RootCertStore::empty();
            let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| file_error("ca_file", ca, e.to_string()))?;
            for c in cas {
                roots
                    .add(c)
                    .map_err(|e| file_error("ca_file", ca, e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(file_error("ca_file", ca, "no PEM certificate in it".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| file_error("key_file", &files.key_file, e.to_string()))?;
        Ok(TlsSetup {
            config: Arc::new(config),
            files: files.clone(),
        })
    }
}

/// A TLS connection over TCP.
pub struct Tls {
    tcp: Tcp,
    /// A server session (clients of our ports) or a client one (the leaf link to a hub).
    session: RefCell<Connection>,
    /// Ciphertext not yet on the socket, from `sent` on.
    cipher: RefCell<Vec<u8>>,
    sent: Cell<usize>,
    /// Plaintext taken by rustls whose ciphertext is not all on the socket yet: reported
    /// as sent once it is.
    unreported: Cell<usize>,
    /// Ciphertext read and not yet given to rustls.
    inbound: RefCell<Vec<u8>>,
    /// The client certificate's names (see [`TlsFiles::verify_and_map`]).
    names: Vec<String>,
}

impl Tls {
    /// The names the client certificate carries: email addresses and DNS names, the
    /// common name, the whole subject (`CN=alice,O=Example`).
    pub fn peer_names(&self) -> &[String] {
        &self.names
    }

    /// Moves what rustls has to send into the ciphertext buffer.
    fn encrypt_pending(&self) -> io::Result<()> {
        let mut session = self.session.borrow_mut();
        let mut cipher = self.cipher.borrow_mut();
        while session.wants_write() {
            session.write_tls(&mut *cipher)?;
        }
        Ok(())
    }

    /// Sends buffered ciphertext without waiting; whether all of it is out.
    fn push_cipher(&self) -> io::Result<bool> {
        let mut cipher = self.cipher.borrow_mut();
        while self.sent.get() < cipher.len() {
            let from = self.sent.get();
            match self.tcp.try_send(&[IoSlice::new(&cipher[from..])]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent.set(from + n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        cipher.clear();
        self.sent.set(0);
        Ok(true)
    }

    /// Waits until the buffered ciphertext is out (within the write deadline).
    fn poll_cipher(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let (from, len) = (self.sent.get(), self.cipher.borrow().len());
            if from >= len {
                self.cipher.borrow_mut().clear();
                self.sent.set(0);
                return Poll::Ready(Ok(()));
            }
            let polled = {
                let cipher = self.cipher.borrow();
                self.tcp.poll_send(cx, &cipher[from..])
            };
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.sent.set(from + n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Gives rustls plaintext from `bufs`, encrypts it and sends what the socket takes.
    /// Returns the plaintext taken and whether its ciphertext is all out.
    fn take_plaintext(&self, bufs: &[IoSlice<'_>]) -> io::Result<(usize, bool)> {
        let n = self.session.borrow_mut().writer().write_vectored(bufs)?;
        self.encrypt_pending()?;
        Ok((n, self.push_cipher()?))
    }
}

impl Sink for Tls {
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.push_cipher()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let held = self.unreported.take();
        if held > 0 {
            return Ok(held);
        }
        match self.take_plaintext(bufs)? {
            (0, _) => Err(io::ErrorKind::WouldBlock.into()),
            (n, true) => Ok(n),
            (n, false) => {
                // Taken, but not all on the socket: reported once it is (`poll_send`).
                self.unreported.set(n);
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, front: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            match self.poll_cipher(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            let held = self.unreported.take();
            if held > 0 {
                return Poll::Ready(Ok(held));
            }
            match self.take_plaintext(&[IoSlice::new(front)]) {
                Err(e) => return Poll::Ready(Err(e)),
                Ok((0, _)) => return Poll::Ready(Err(io::ErrorKind::WouldBlock.into())),
                Ok((n, true)) => return Poll::Ready(Ok(n)),
                Ok((n, false)) => self.unreported.set(n),
            }
        }
    }
}

impl Transport for Tls {
    async fn read(&self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.borrow_mut().reader().read(dst) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.inbound.borrow().is_empty() {
                let mut buf = vec![0u8; CIPHERTEXT_READ_BYTES];
                let n = self.tcp.read(&mut buf).await?;
                if n == 0 {
                    return Ok(0);
                }
                buf.truncate(n);
                *self.inbound.borrow_mut() = buf;
            }
            self.feed()?;
        }
    }

    fn shutdown(&self) {
        // A close_notify if the socket takes it at once; then both ways down.
        self.session.borrow_mut().send_close_notify();
        if self.encrypt_pending().is_ok() {
            let _ = self.push_cipher();
        }
        self.tcp.shutdown();
    }

    fn peer(&self) -> Option<SocketAddr> {
        self.tcp.peer()
    }

    fn tls_info(&self) -> Option<(String, String)> {
        let session = self.session.borrow();
        let version = match session.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "1.2".to_string(),
            other => format!("{other:?}"),
        };
        let suite = session.negotiated_cipher_suite()?.suite();
        Some((version, format!("{suite:?}")))
    }
}

impl Tls {
    /// Gives rustls the ciphertext read so far (as much as it takes) and processes it;
    /// what it has to answer (alerts, key updates) goes out if the socket takes it.
    fn feed(&self) -> io::Result<()> {
        {
            let mut inbound = self.inbound.borrow_mut();
            let mut session = self.session.borrow_mut();
            let mut slice: &[u8] = &inbound;
            let taken = session.read_tls(&mut slice)?;
            inbound.drain(..taken);
            if let Err(e) = session.process_new_packets() {
                drop(session);
                let _ = self.encrypt_pending().and_then(|()| self.push_cipher());
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        self.encrypt_pending()?;
        self.push_cipher()?;
        Ok(())
    }
}

/// Why a connection did not become a TLS connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client spoke plain text to a server that requires TLS.
    #[error("the client did not start TLS")]
    Plaintext,
    #[error("TLS handshake timed out")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Failed(io::Error),
}

/// Writes all of `bytes` to `tcp`.
pub async fn write_all(tcp: &Tcp, bytes: &[u8]) -> io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let n = poll_fn(|cx| tcp.poll_send(cx, &bytes[at..])).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        at += n;
    }
    Ok(())
}

/// Takes `tcp` through the TLS handshake within `setup`'s timeout. `first` are bytes
/// already read from the client (its first record).
pub async fn handshake(setup: &TlsSetup, tcp: Tcp, first: Vec<u8>) -> Result<Tls, HandshakeError> {
    let session = ServerConnection::new(Arc::clone(&setup.config))
        .map_err(|e| HandshakeError::Failed(io::Error::other(e)))?;
    let tls = establish(Connection::Server(session), tcp, first, setup.files.timeout).await?;
    let names = tls
        .session
        .borrow()
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| cert_names(c.as_ref()))
        .unwrap_or_default();
    Ok(Tls { names, ..tls })
}

/// Runs `session`'s handshake over `tcp` within `timeout` (`first`: ciphertext already
/// read); either side's.
pub(super) async fn establish(
    session: Connection,
    tcp: Tcp,
    first: Vec<u8>,
    timeout: Duration,
) -> Result<Tls, HandshakeError> {
    let tls = Tls {
        tcp,
        session: RefCell::new(session),
        cipher: RefCell::new(Vec::new()),
        sent: Cell::new(0),
        unreported: Cell::new(0),
        inbound: RefCell::new(first),
        names: Vec::new(),
    };
    tls.session
        .borrow_mut()
        .set_buffer_limit(Some(PLAINTEXT_BUFFER_BYTES));
    let done = glommio::timer::timeout(timeout, async {
        drive(&tls).await.map_err(glommio::GlommioError::IoError)
    })
    .await;
    match done {
        Ok(()) => Ok(tls),
        Err(glommio::GlommioError::IoError(e)) => Err(HandshakeError::Failed(e)),
        Err(_) => Err(HandshakeError::Timeout),
    }
}

/// Runs the handshake to its end, everything it wrote on the socket.
async fn drive(tls: &Tls) -> io::Result<()> {
    loop {
        tls.encrypt_pending()?;
        let out = std::mem::take(&mut *tls.cipher.borrow_mut());
        tls.sent.set(0);
        write_all(&tls.tcp, &out).await?;
        if !tls.session.borrow().is_handshaking() {
            return Ok(());
        }
        if tls.inbound.borrow().is_empty() {
            let mut buf = vec![0u8; CIPHERTEXT_READ_BYTES];
            let n = tls.tcp.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.truncate(n);
            *tls.inbound.borrow_mut() = buf;
        }
        let result = {
            let mut inbound = tls.inbound.borrow_mut();
            let mut session = tls.session.borrow_mut();
            let mut slice: &[u8] = &inbound;
            let taken = session.read_tls(&mut slice)?;
            inbound.drain(..taken);
            session.process_new_packets().map(|_| ())
        };
        if let Err(e) = result {
            // Tell the client why (an alert), then give up.
            tls.encrypt_pending()?;
            let out = std::mem::take(&mut *tls.cipher.borrow_mut());
            let _ = write_all(&tls.tcp, &out).await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

/// Reads the client's first bytes (within `timeout`): a TLS handshake record, or else
/// the client speaks plain text.
pub async fn first_record(tcp: &Tcp, timeout: Duration) -> Result<Vec<u8>, HandshakeError> {
    let read = glommio::timer::timeout(timeout, async {
        let mut buf = vec![0u8; CIPHERTEXT_READ_BYTES];
        let n = tcp.read(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    })
    .await;
    match read {
        Ok(buf) if buf.first() == Some(&TLS_HANDSHAKE_RECORD) => Ok(buf),
        Ok(buf) if buf.is_empty() => {
            Err(HandshakeError::Failed(io::ErrorKind::UnexpectedEof.into()))
        }
        Ok(_) => Err(HandshakeError::Plaintext),
        Err(glommio::GlommioError::IoError(e)) => Err(HandshakeError::Failed(e)),
        Err(_) => Err(HandshakeError::Timeout),
    }
}

/// The names in a client certificate `verify_and_map` matches users against.
fn cert_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::RFC822Name(s) | GeneralName::DNSName(s) => names.push(s.to_string()),
                _ => {}
            }
        }
    }
    let subject = cert.subject();
    for cn in subject.iter_common_name() {
        if let Ok(s) = cn.as_str() {
            names.push(s.to_string());
        }
    }
    names.push(subject.to_string());
    names
}
