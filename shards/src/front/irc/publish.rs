//! What a session publishes into the engine besides channel messages' own bytes:
//! composed messages (presence events, nick events, a person's line with its headers)
//! and the history request a JOIN makes.

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::conn::Conn;
use crate::front::irc::names::Channel;
use crate::front::irc::presence::{self, Presence};
use crate::front::irc::IrcSession;
use crate::history::service::replay_subject;
use crate::history::HISTORY_PREFIX;
use crate::route::{Op, Router};
use crate::wire::MsgView;

pub(super) fn publish_presence(
    router: &mut Router,
    conn: &Rc<Conn>,
    channel: &Channel,
    event: &Presence,
) {
    let subject = presence::subject_for(channel.subject());
    publish_owned(router, conn, &subject, None, &event.to_json());
}

/// Publishes `payload` to `subject`, with `headers` (a whole NATS header block) if any,
/// from a block of its own.
pub(super) fn publish_owned(
    router: &mut Router,
    conn: &Rc<Conn>,
    subject: &str,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    publish_full(router, conn, subject, None, headers, payload);
}

/// [`publish_owned`] with a reply subject.
fn publish_full(
    router: &mut Router,
    conn: &Rc<Conn>,
    subject: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let header_len = headers.map_or(0, <[u8]>::len);
    let reply_len = reply.map_or(0, str::len);
    let mut block = BytesMut::with_capacity(subject.len() + reply_len + header_len + payload.len());
    block.put_slice(subject.as_bytes());
    if let Some(r) = reply {
        block.put_slice(r.as_bytes());
    }
    if let Some(h) = headers {
        block.put_slice(h);
    }
    block.put_slice(payload);
    let owner: Bytes = block.freeze();
    let s = subject.len();
    let msg = MsgView {
        subject: &owner[..s],
        reply: reply.map(|_| &owner[s..s + reply_len]),
        header_len: headers.map(<[u8]>::len),
        body: &owner[s + reply_len..],
    };
    conn.published(1, payload.len() as u64);
    router.apply(conn, Op::PublishOwned { msg, owner: &owner });
}

/// Asks the history of `channel`'s subject for the joiner: the owner's answer comes to
/// this shard's history service, which replays it to the connection after 366.
pub(super) fn request_history(
    s: &IrcSession,
    router: &mut Router,
    conn: &Rc<Conn>,
    channel: &Channel,
) {
    let subject = channel.subject();
    let request = format!("{HISTORY_PREFIX}{subject}");
    let reply = replay_subject(s.shard.shard, conn.cid, s.server_time, subject);
    publish_full(router, conn, &request, Some(&reply), None, b"");
}
