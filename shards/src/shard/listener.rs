//! One shard's listening socket on the shared port.
//!
//! Every shard binds the same address with SO_REUSEPORT (the kernel spreads new
//! connections over the shards) and SO_REUSEADDR (a restart binds over the connections the
//! previous server left closing), with a backlog of [`LISTEN_BACKLOG`].
//!
//! A stopping shard shuts its listener down itself ([`Listener::stop`]) instead of leaving
//! that to the close of its descriptor: io_uring holds a reference to a socket with a
//! request in flight (the pending accept), and a process that exits has its rings torn
//! down later by the kernel, so the socket went on listening, and completing handshakes,
//! for a moment after the process was gone. A client connecting in that moment, as a
//! restart's first client does, was reset, and the new server found the port in use.
//! `shutdown(2)` on a listening socket takes it out of the listening table at once.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};

use glommio::net::{TcpListener, TcpStream};

use crate::limits::LISTEN_BACKLOG;

/// A shard's listening socket.
pub struct Listener {
    inner: TcpListener,
    fd: RawFd,
}

impl Listener {
    /// Binds and listens on `addr` (see the module doc for the options).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        let fd = socket.into_raw_fd();
        // SAFETY: the descriptor is a bound, listening TCP socket we own and hand over.
        let inner = unsafe { TcpListener::from_raw_fd(fd) };
        Ok(Listener { inner, fd })
    }

    /// The next connection.
    pub async fn accept(&self) -> glommio::Result<TcpStream, ()> {
        self.inner.accept().await
    }

    /// Stops listening now: no more handshakes complete on this socket, whatever io_uring
    /// still holds. Connections that completed their handshake but were not accepted yet
    /// are reset (the shard is stopping).
    pub fn stop(&self) {
        // SAFETY: `fd` is the listening socket `inner` owns, open until `inner` drops.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}
