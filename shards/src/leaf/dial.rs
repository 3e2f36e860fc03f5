//! Dialling one remote: TCP (within a timeout), the hub's INFO in plain text, then TLS
//! when the hub asks for it or `[leafnode.tls]` is set, as a nats-server leaf does.

use std::net::SocketAddr;
use std::time::Duration;

use crate::conn::tls::Tls;
use crate::conn::tls_client::ClientTls;
use crate::conn::{Tcp, Transport};
use crate::front::leaf::Dialled;

/// How long a connection attempt to one remote may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the hub may take to send its INFO.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest INFO line taken.
const INFO_BYTES_MAX: usize = 64 * 1024;

/// A connection to a hub, ready for the session (one per attempt, moved at once into
/// the connection's task: the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub enum Link {
    Plain(Tcp, Dialled),
    Tls(Tls, Dialled),
}

/// Why dialling failed, and so what the link does next.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// Nobody there (refused, no route, timed out): the next remote, now.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Something answered but the link cannot run over it: wait, then again.
    #[error("{0}")]
    Refused(String),
    /// The remote is this server.
    #[error("the remote is this server itself")]
    Loop,
}

/// Dials `remote` (`host:port`).
pub async fn dial(
    remote: &str,
    tls: Option<&ClientTls>,
    write_deadline: Duration,
    server_id: &str,
) -> Result<Link, DialError> {
    let (stream, hub) = connect(remote).await?;
    let tcp = Tcp::new(stream, write_deadline);
    let line = glommio::timer::timeout(INFO_TIMEOUT, async {
        read_line(&tcp)
            .await
            .map_err(glommio::GlommioError::IoError)
    })
    .await
    .map_err(|e| DialError::Refused(format!("no INFO from the hub: {e}")))?;
    let info: serde_json::Value = line
        .strip_prefix(b"INFO ")
        .and_then(|j| serde_json::from_slice(j).ok())
        .ok_or_else(|| {
            let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
            DialError::Refused(format!(
                "the remote did not start with INFO ({shown:?}): is it a nats-server leafnodes port?"
            ))
        })?;
    if info["server_id"].as_str() == Some(server_id) {
        return Err(DialError::Loop);
    }
    let wants_tls = info["tls_required"].as_bool().unwrap_or(false);
    match (wants_tls, tls) {
        (true, None) => Err(DialError::Refused(
            "the hub requires TLS: set [leafnode.tls] ca_file (the CA its certificate chains to)"
                .into(),
        )),
        (_, Some(setup)) => {
            let host = remote.rsplit_once(':').map_or(remote, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let tls = setup
                .connect(tcp, host)
                .await
                .map_err(|e| DialError::Refused(e.to_string()))?;
            Ok(Link::Tls(
                tls,
                Dialled {
                    hub,
                    info,
                    tls: true,
                },
            ))
        }
        (false, None) => Ok(Link::Plain(
            tcp,
            Dialled {
                hub,
                info,
                tls: false,
            },
        )),
    }
}

/// One line (without CRLF), read a byte at a time so nothing after it is taken from the
/// socket (the TLS handshake may follow).
async fn read_line(tcp: &Tcp) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    loop {
        if tcp.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if byte[0] == b'\n' {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if line.len() >= INFO_BYTES_MAX {
            return Err(std::io::Error::other("INFO line too long"));
        }
        line.push(byte[0]);
    }
}

async fn connect(remote: &str) -> Result<(glommio::net::TcpStream, SocketAddr), DialError> {
    let unreachable = |e: &dyn std::fmt::Display| DialError::Unreachable(e.to_string());
    let addr = std::net::ToSocketAddrs::to_socket_addrs(remote)
        .map_err(|e| unreachable(&e))?
        .next()
        .ok_or_else(|| unreachable(&format!("{remote} resolves to no address")))?;
    let attempt = async {
        glommio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| unreachable(&e))
    };
    let timeout = async {
        glommio::timer::sleep(CONNECT_TIMEOUT).await;
        Err(unreachable(&format!("no answer in {CONNECT_TIMEOUT:?}")))
    };
    let stream = futures_lite::future::or(attempt, timeout).await?;
    Ok((stream, addr))
}
