//! Internal clients: a shard's own code as a NATS client of the engine. A front-end that
//! needs state shared by all shards (the IRC nick registry, channel members) keeps it in
//! a service on each shard, and the services talk over ordinary subjects (`$SC.…`):
//! their subscriptions and publishes go through the router, the rings and the outboxes
//! exactly like a client's, so there is no second routing path and flow control applies.
//!
//! An [`Internal`] is a connection without a socket. Deliveries to it are encoded on the
//! NATS wire into its outbox as usual; its writer flushes them into a [`Loopback`] sink
//! instead of a socket, and [`Internal::next`] parses the `MSG`/`HMSG` frames back out.

pub mod frames;

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::future::poll_fn;

use crate::conn::writer_task::{self, WriterParams};
use crate::conn::{Conn, ConnFlags, Transport};
use crate::front::publish_composed;
use crate::route::Op;
use crate::shard::{run_loop, ShardCtx};
use crate::wire::Wire;
use crate::writer::{Outbox, Sink};
use frames::{next_frame, Frame};

/// The most bytes flushed into a loopback and not yet parsed: the writer then waits, so
/// the outbox holds the rest (bounded by `max_pending`, like any client's).
const LOOPBACK_BYTES_MAX: usize = 1 << 20;

/// The socket of an internal client: what its writer sends is kept for its reader.
#[derive(Default)]
pub struct Loopback {
    /// Written and not yet parsed. Parsed frames are taken off the front in O(1)
    /// (`advance`), not by moving the rest: with up to a MiB waiting, a `Vec::drain` per
    /// frame made a busy internal client cost microseconds per message.
    bytes: RefCell<BytesMut>,
    reader: Cell<Option<Waker>>,
    writer: Cell<Option<Waker>>,
    shut: Cell<bool>,
}

impl Loopback {
    fn room(&self) -> usize {
        LOOPBACK_BYTES_MAX.saturating_sub(self.bytes.borrow().len())
    }

    fn wake_reader(&self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

impl Sink for Loopback {
    fn try_send(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.shut.get() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut room = self.room();
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut sent = 0;
        {
            let mut bytes = self.bytes.borrow_mut();
            for buf in bufs {
                let n = buf.len().min(room);
                bytes.extend_from_slice(&buf[..n]);
                sent += n;
                room -= n;
                if room == 0 {
                    break;
                }
            }
        }
        self.wake_reader();
        Ok(sent)
    }

    fn poll_send(&self, cx: &mut Context<'_>, front: &[u8]) -> Poll<io::Result<usize>> {
        if self.room() == 0 && !self.shut.get() {
            self.writer.set(Some(cx.waker().clone()));
            return Poll::Pending;
        }
        Poll::Ready(self.try_send(&[IoSlice::new(front)]))
    }
}

impl Transport for Loopback {
    async fn read(&self, _dst: &mut [u8]) -> io::Result<usize> {
        // Nothing is ever read from an internal client: it acts through its methods.
        poll_fn(|cx| {
            if self.shut.get() {
                Poll::Ready(Ok(0))
            } else {
                self.writer.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }

    fn shutdown(&self) {
        self.shut.set(true);
        self.wake_reader();
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    fn peer(&self) -> Option<SocketAddr> {
        None
    }
}

/// The shard that owns `key` (a nick, a subject's history): a stable hash of it.
pub fn owner_of(key: &str, shards: usize) -> usize {
    (fnv1a(key.bytes()) % shards.max(1) as u64) as usize
}

/// FNV-1a of `bytes`: stable across processes, shards and nodes.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A message delivered to an internal client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub subject: String,
    pub sid: String,
    pub reply: Option<String>,
    /// The header block (`NATS/1.0\r\n…\r\n\r\n`), if any.
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// An in-process client on one shard.
pub struct Internal {
    ctx: Rc<ShardCtx>,
    pub conn: Rc<Conn>,
    loopback: Rc<Loopback>,
}

impl Internal {
    /// A new internal client on `ctx`'s shard, its writer running.
    pub fn start(ctx: &Rc<ShardCtx>) -> Internal {
        let cid = ctx
            .global
            .next_cid
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let limits = ctx.limits();
        let outbox = Rc::new(Outbox::new(cid, Rc::clone(&ctx.outbox_env), &limits));
        let params = WriterParams {
            write_bytes_max: limits.write_bytes_max,
            flush_delay: std::time::Duration::ZERO,
            shutdown_grace: limits.shutdown_grace,
        };
        drop(limits);
        let flags = ConnFlags::QUIET;
        let wire = Wire::Nats { headers: true };
        let conn = Rc::new(Conn::new(cid, None, Rc::clone(&outbox), wire, flags));
        let loopback = Rc::new(Loopback::default());
        glommio::spawn_local(writer_task::run(outbox, Rc::clone(&loopback), params)).detach();
        Internal {
            ctx: Rc::clone(ctx),
            conn,
            loopback,
        }
    }

    /// Subscribes `subject` (in `queue`, if given) under `sid`.
    pub async fn subscribe(&self, sid: &str, subject: &str, queue: Option<&str>) {
        self.turn(|router, conn| {
            router.apply(
                conn,
                Op::Subscribe {
                    sid: sid.as_bytes(),
                    subject: subject.as_bytes(),
                    queue: queue.map(str::as_bytes),
                },
            );
        })
        .await;
    }

    /// Removes the subscription `sid`.
    pub async fn unsubscribe(&self, sid: &str) {
        self.turn(|router, conn| {
            router.apply(
                conn,
                Op::Unsubscribe {
                    sid: sid.as_bytes(),
                    max_msgs: None,
                },
            );
        })
        .await;
    }

    /// Publishes `payload` to `subject`, with a reply subject and a header block if given.
    pub async fn publish(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        self.turn(|router, conn| {
            publish_composed(router, conn, subject, reply, headers, payload);
        })
        .await;
    }

    /// One turn of this client: `apply` through the router, then its ring batches out.
    /// Publishing many messages in one turn sends them to the other shards in one batch
    /// each, where a turn per message would wake every shard once per message.
    /// Like a client's read loop, it first applies the interest changes other shards
    /// have already sent, so what it publishes reaches a subscription another shard has
    /// already taken (a watcher that subscribed, then had its PONG, gets the next log).
    pub async fn turn(&self, apply: impl FnOnce(&mut crate::route::Router, &Rc<Conn>)) {
        if let Some(links) = &self.ctx.links {
            links.wait_for_room().await;
        }
        run_loop::apply_waiting_batches(&self.ctx).await;
        let mut router = self.ctx.router.borrow_mut();
        apply(&mut router, &self.conn);
        run_loop::end_turn(&self.ctx, &mut router, None);
    }

    /// The next message delivered to this client; None once it is closed.
    pub async fn next(&self) -> Option<Received> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next message already delivered, if there is one (without waiting).
    pub fn try_next(&self) -> Option<Received> {
        let mut bytes = self.loopback.bytes.borrow_mut();
        loop {
            let (received, used) =
                next_frame(&bytes).map(|(f, used)| (f.map(Frame::into_received), used))?;
            bytes.advance(used);
            if let Some(w) = self.loopback.writer.take() {
                w.wake();
            }
            if received.is_some() {
                return received;
            }
        }
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Received>> {
        let mut bytes = self.loopback.bytes.borrow_mut();
        match next_frame(&bytes) {
            Some((frame, used)) => {
                let received = frame.map(Frame::into_received);
                bytes.advance(used);
                drop(bytes);
                if let Some(w) = self.loopback.writer.take() {
                    w.wake();
                }
                match received {
                    Some(r) => Poll::Ready(Some(r)),
                    None => {
                        // PING, +OK and the like: nothing for the service; look again.
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                }
            }
            None if self.loopback.shut.get() => Poll::Ready(None),
            None => {
                self.loopback.reader.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_spread_and_are_stable() {
        assert_eq!(owner_of("alice", 1), 0);
        let owners: std::collections::HashSet<usize> =
            (0..64).map(|i| owner_of(&format!("nick{i}"), 4)).collect();
        assert_eq!(owners.len(), 4);
        assert_eq!(owner_of("bob", 4), owner_of("bob", 4));
    }
}
