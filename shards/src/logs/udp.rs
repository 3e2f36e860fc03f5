//! Syslog over UDP (`logs.syslog_udp_port`, `--syslog-udp`): every shard reads the port
//! (SO_REUSEPORT: the kernel spreads senders over the shards), one datagram at a time
//! into a fixed 64 KiB buffer, and routes each message as it comes. A flood is bounded by
//! the socket's receive buffer (`logs.syslog_udp_buffer`), whose overflow the kernel
//! drops and counts per socket; [`kernel_drops`] reads that count into the input's
//! `dropped`. Nothing is queued beyond the kernel's buffer here.

use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::history::rfc3339_millis;
use crate::logs::syslog::parse_syslog;
use crate::logs::{LogInput, LogShard, ParseError};
use crate::service::Internal;
use crate::shard::ShardCtx;

/// The largest datagram read.
const DATAGRAM_BYTES_MAX: usize = 65_536;

/// Reads and routes `socket`'s datagrams until the shard stops.
pub async fn serve(ctx: Rc<ShardCtx>, socket: glommio::net::UdpSocket, logs: Rc<LogShard>) {
    let client = Internal::start(&ctx);
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    if let Some(bytes) = logs.cfg.syslog_udp_buffer_bytes {
        if let Err(e) = set_receive_buffer(socket.as_raw_fd(), bytes) {
            tracing::warn!(shard = ctx.id, error = %e, bytes, "cannot size the syslog udp buffer");
        }
    }
    logs.set_udp_socket(socket.as_raw_fd());
    while !ctx.stopping.get() {
        let n = match socket.recv_from(&mut buf).await {
            Ok((n, _peer)) => n,
            Err(e) => {
                tracing::warn!(shard = ctx.id, error = %e, "syslog udp receive failed");
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let now = rfc3339_millis(SystemTime::now());
        let record = match parse_syslog(&buf[..n], &now, logs.cfg.record_bytes_max) {
            Ok(r) => r,
            Err(ParseError::Empty) => continue,
            Err(e) => {
                logs.count(LogInput::SyslogUdp, |c| c.malformed += 1);
                tracing::debug!(shard = ctx.id, error = %e, "malformed syslog datagram");
                continue;
            }
        };
        let routed = logs.route(LogInput::SyslogUdp, &record);
        for subject in &routed.subjects {
            client
                .publish(subject, None, Some(routed.headers.as_bytes()), &routed.body)
                .await;
        }
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
