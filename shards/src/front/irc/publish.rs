//! What a session publishes into the engine besides channel messages' own bytes:
//! composed messages (presence events, nick events, a person's line with its headers)
//! and the history request a JOIN makes.

use std::rc::Rc;

use crate::conn::Conn;
use crate::front::irc::names::Channel;
use crate::front::irc::presence::{self, Presence};
use crate::front::irc::IrcSession;
use crate::front::publish_composed;
use crate::history::service::replay_subject;
use crate::history::HISTORY_PREFIX;
use crate::route::Router;

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
    publish_composed(router, conn, subject, None, headers, payload);
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
    let reply = replay_subject(
        &s.shard.node,
        s.shard.shard,
        conn.cid,
        s.server_time,
        subject,
    );
    publish_composed(router, conn, &request, Some(&reply), None, b"");
}
