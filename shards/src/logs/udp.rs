//! Syslog over UDP (`logs.syslog_udp_port`, `--syslog-udp`): every shard reads the port
//! (SO_REUSEPORT: the kernel spreads senders over the shards), one datagram at a time
//! into a fixed 64 KiB buffer, and routes each message as it comes. A flood is bounded by
//! the socket's receive buffer (`logs.syslog_udp_buffer`), whose overflow the kernel
//! drops and counts per socket; [`kernel_drops`] reads that count into the input's
//! `dropped`. Nothing is queued beyond the kernel's buffer here.
//!
//! After each datagram it waited for, it takes those already there (up to
//! [`BATCH_MAX`], without waiting) and publishes their copies in one turn: one ring batch
//! per other shard instead of a wake-up per copy.

use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::history::rfc3339_millis;
use crate::logs::syslog::parse_syslog;
use crate::logs::{LogInput, LogShard, ParseError, Routed};
use crate::service::Internal;
use crate::shard::ShardCtx;

/// The largest datagram read.
const DATAGRAM_BYTES_MAX: usize = 65_536;
/// The most datagrams routed in one turn.
pub const BATCH_MAX: usize = 64;

/// Reads and routes `socket`'s datagrams until the shard stops.
pub async fn serve(ctx: Rc<ShardCtx>, socket: glommio::net::UdpSocket, logs: Rc<LogShard>) {
    let client = Internal::start(&ctx);
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    if let Some(bytes) = logs.cfg.syslog_udp_buffer_bytes {
        if let Err(e) = set_receive_buffer(socket.as_raw_fd(), bytes) {
            tracing::warn!(shard = ctx.id, error = %e, bytes, "cannot size the syslog udp buffer");
        }
    }
    let fd = socket.as_raw_fd();
    logs.set_udp_socket(fd);
    let mut batch: Vec<Routed> = Vec::with_capacity(BATCH_MAX);
    while !ctx.stopping.get() {
        let n = match socket.recv_from(&mut buf).await {
            Ok((n, peer)) if logs.cfg.allows(peer.ip()) => n,
            Ok((_, peer)) => {
                refused(&ctx, &logs, peer.ip());
                continue;
            }
            Err(e) => {
                tracing::warn!(shard = ctx.id, error = %e, "syslog udp receive failed");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let now = rfc3339_millis(SystemTime::now());
        batch.extend(take(&ctx, &logs, &buf[..n], &now));
        for _ in 1..BATCH_MAX {
            let Some((n, peer)) = try_recv(fd, &mut buf) else {
                break;
            };
            match peer {
                Some(ip) if !logs.cfg.allows(ip) => refused(&ctx, &logs, ip),
                _ => batch.extend(take(&ctx, &logs, &buf[..n], &now)),
            }
        }
        if !batch.is_empty() {
            client
                .turn(|router, conn| {
                    for routed in batch.drain(..) {
                        routed.publish(router, conn);
                    }
                })
                .await;
        }
    }
}

/// Parses and routes one datagram, read at `now` (None if it is empty or malformed:
/// counted).
fn take(ctx: &ShardCtx, logs: &LogShard, datagram: &[u8], now: &str) -> Option<Routed> {
    match parse_syslog(datagram, now, logs.cfg.record_bytes_max) {
        Ok(record) => Some(logs.route(LogInput::SyslogUdp, &record)),
        Err(ParseError::Empty) => None,
        Err(e) => {
            logs.count(LogInput::SyslogUdp, |c| c.malformed += 1);
            tracing::debug!(shard = ctx.id, error = %e, "malformed syslog datagram");
            None
        }
    }
}

/// Counts (and logs, at debug: a flood must not flood the log) a datagram from outside
/// `logs.allow_from`.
fn refused(ctx: &ShardCtx, logs: &LogShard, ip: std::net::IpAddr) {
    logs.count(LogInput::SyslogUdp, |c| c.refused += 1);
    tracing::debug!(shard = ctx.id, peer = %ip, "syslog datagram refused: not in logs.allow_from");
}

/// A datagram already waiting on `fd` and its sender, read without waiting; None if
/// there is none.
fn try_recv(fd: RawFd, buf: &mut [u8]) -> Option<(usize, Option<std::net::IpAddr>)> {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid empty address.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is writable for its length and `from` for `len` bytes; MSG_DONTWAIT
    // makes the call return at once.
    let n = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            std::ptr::addr_of_mut!(from).cast(),
            &mut len,
        )
    };
    let n = usize::try_from(n).ok()?;
    Some((n, sender(&from)))
}

/// The IP address in a `recvfrom` answer.
fn sender(from: &libc::sockaddr_storage) -> Option<std::net::IpAddr> {
    match libc::c_int::from(from.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*std::ptr::from_ref(from).cast() };
            Some(std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*std::ptr::from_ref(from).cast() };
            Some(std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
        }
        _ => None,
    }
}

/// Sets the socket's receive buffer (the kernel doubles it for its bookkeeping and caps
/// it at `net.core.rmem_max`).
fn set_receive_buffer(fd: RawFd, bytes: usize) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is an open socket and the option value is a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `SO_MEMINFO` (asm-generic/socket.h) and the index of the drop count in its answer
/// (`SK_MEMINFO_DROPS` of linux/sock_diag.h, of `SK_MEMINFO_VARS` values).
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_DROPS: usize = 8;
const SK_MEMINFO_VARS: usize = 9;

/// The datagrams the kernel dropped for `fd` because its receive buffer was full (0 if
/// the kernel does not say).
pub fn kernel_drops(fd: RawFd) -> u64 {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is writable for `len` bytes; the kernel writes at most that.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 && len as usize > SK_MEMINFO_DROPS * 4 {
        u64::from(info[SK_MEMINFO_DROPS])
    } else {
        0
    }
}
