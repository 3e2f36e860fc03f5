//! Each IRC command a session understands, applied: registration (CAP, PASS, NICK, USER),
//! keepalive (PING, PONG), channels (JOIN, PART, NAMES, WHO, MODE, LIST), messages
//! (PRIVMSG, NOTICE, to channels and to nicks), AWAY and QUIT. Anything else gets `421`;
//! anything but registration and keepalive before registering gets `451`.
//!
//! Channel traffic goes through the router: a channel is a subscription tagged with the
//! channel's name, a message to it a publish (the author's nick and mask in headers), a
//! message to a nick a publish to that user's inbox subject, presence a JSON publish on
//! `$SC.PRESENCE.<subject>`.

use std::rc::Rc;

use crate::close::CloseReason;
use crate::conn::Conn;
use crate::front::irc::line::Line;
use crate::front::irc::names::{check_nick, nick_key, Channel, ChannelError, NickError};
use crate::front::irc::presence::{self, Event, Presence};
use crate::front::irc::publish::{publish_owned, publish_presence, request_history};
use crate::front::irc::queries::{
    ison, list, mode, names, show_topic, topic, userhost, who, whois,
};
use crate::front::irc::service::{NickEvent, NICK_SUBJECT};
use crate::front::irc::IrcSession;
use crate::metrics::{Counter, ShardMetrics};
use crate::route::{Op, Outcome, Router};
use crate::wire::irc::{MASK_HEADER, NATS_NICK, NICK_HEADER};
use crate::wire::Refusal;

/// The subject a user's direct messages are published to.
pub fn inbox_subject(nick: &str) -> String {
    format!("$SC.IRC.USER.{}", nick_key(nick))
}

/// The sid of a channel's presence subscription (the channel subscription's sid is the
/// channel's name).
fn presence_sid(channel: &Channel) -> String {
    format!("presence {}", channel.name())
}

/// Whether `line` counts against the flood limit: everything but keepalive, the
/// queries clients send on their own after joining, and leaving.
pub fn costs(line: &Line<'_>) -> bool {
    const FREE: [&str; 12] = [
        "PING", "PONG", "MODE", "WHO", "NAMES", "LIST", "CAP", "USERHOST", "ISON", "WHOIS", "AWAY",
        "QUIT",
    ];
    !FREE.iter().any(|c| line.is(c))
}

/// Applies one line from the client.
pub fn apply(
    s: &mut IrcSession,
    router: &mut Router,
    metrics: &ShardMetrics,
    conn: &Rc<Conn>,
    line: &Line<'_>,
) {
    let p = |i: usize| {
        line.param(i)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let command = String::from_utf8_lossy(line.command).to_ascii_uppercase();
    match command.as_str() {
        "CAP" => super::cap::cap(s, router, conn, p(0), p(1)),
        "PASS" => {
            if s.registered {
                s.numeric("462", &[], "You may not reregister");
            } else {
                s.login.pass = p(0);
            }
        }
        "AUTHENTICATE" => crate::front::irc::login::authenticate(s, p(0)),
        "NICK" => nick(s, router, conn, p(0)),
        "USER" => user(s, router, conn, line),
        "PING" => match p(0) {
            Some(token) => {
                let server = s.settings().server_name.clone();
                s.out
                    .line(&[&format!(":{server}"), "PONG", &server], Some(&token));
            }
            None => s.numeric("409", &[], "No origin specified"),
        },
        "PONG" => conn.pong_received(std::time::Instant::now()),
        "QUIT" => {
            let reason = match p(0).filter(|r| !r.is_empty()) {
                Some(r) => format!("Quit: {r}"),
                None => "Client Quit".to_string(),
            };
            leave_all(s, router, conn, &reason);
            let text = format!("Closing Link: {} ({reason})", s.host);
            s.out.line(&["ERROR"], Some(&text));
            s.flush_out(conn);
            conn.close(CloseReason::ClientClosed);
        }
        _ if !s.registered => s.numeric("451", &[], "You have not registered"),
        "JOIN" => match p(0) {
            Some(list) if list == "0" => leave_all(s, router, conn, "Left all channels"),
            Some(list) => {
                for name in list.split(',') {
                    join(s, router, metrics, conn, name);
                }
            }
            None => s.numeric("461", &["JOIN"], "Not enough parameters"),
        },
        "PART" => match p(0) {
            Some(list) => {
                let reason = p(1).unwrap_or_default();
                for name in list.split(',') {
                    part(s, router, conn, name, &reason);
                }
            }
            None => s.numeric("461", &["PART"], "Not enough parameters"),
        },
        "PRIVMSG" | "NOTICE" => {
            let notice = command == "NOTICE";
            message(s, router, metrics, conn, notice, p(0), line.param(1));
        }
        "NAMES" => match p(0) {
            Some(list) => {
                for name in list.split(',') {
                    if let Ok(c) = Channel::parse(name.as_bytes(), s.settings().channel_len_max) {
                        names(s, &c);
                    }
                }
            }
            None => s.numeric("366", &["*"], "End of /NAMES list."),
        },
        "WHO" => who(s, p(0)),
        "MODE" => mode(s, p(0), p(1)),
        "LIST" => list(s),
        "WHOIS" => whois(s, p(0), p(1)),
        "USERHOST" | "ISON" => {
            // ISON's nicks may come in one trailing parameter.
            let nicks: Vec<String> = line
                .params()
                .iter()
                .flat_map(|p| p.split(|&b| b == b' '))
                .filter(|n| !n.is_empty())
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            if command == "ISON" {
                ison(s, &nicks);
            } else {
                userhost(s, &nicks);
            }
        }
        "TOPIC" => match p(0) {
            Some(name) => topic(s, router, conn, &name, line.param(1)),
            None => s.numeric("461", &["TOPIC"], "Not enough parameters"),
        },
        "AWAY" => {
            s.away = line.param(0).is_some_and(|t| !t.is_empty());
            if s.away {
                s.numeric("306", &[], "You have been marked as being away");
            } else {
                s.numeric("305", &[], "You are no longer marked as being away");
            }
        }
        other => {
            let other = other.chars().take(32).collect::<String>();
            s.numeric("421", &[&other], "Unknown command");
        }
    }
}

fn nick(s: &mut IrcSession, router: &mut Router, conn: &Rc<Conn>, wanted: Option<String>) {
    let Some(wanted) = wanted.filter(|n| !n.is_empty()) else {
        s.numeric("431", &[], "No nickname given");
        return;
    };
    let len_max = s.settings().nick_len_max;
    let shown: String = wanted.chars().take(len_max + 1).collect();
    let nick = match check_nick(wanted.as_bytes(), len_max) {
        Ok(n) => n.to_string(),
        Err(e) => {
            let why = match e {
                NickError::Empty | NickError::BadByte => "Erroneous nickname",
                NickError::TooLong => "Erroneous nickname (too long)",
            };
            s.numeric("432", &[&shown], why);
            return;
        }
    };
    let key = nick_key(&nick);
    let old = s.nick.clone();
    if old.as_deref() == Some(nick.as_str()) {
        return;
    }
    let same_key = old.as_deref().map(nick_key).as_deref() == Some(key.as_str());
    if key == NATS_NICK || (!same_key && !s.shard.claim_nick(&key, conn.cid)) {
        s.numeric("433", &[&nick], "Nickname is already in use");
        return;
    }
    if !same_key {
        announce_nick(s, router, conn, &key, true);
    }
    let Some(old) = old else {
        s.nick = Some(nick);
        s.try_register(conn, router);
        return;
    };
    if !s.registered {
        if !same_key {
            release_nick(s, router, conn, &old);
        }
        s.nick = Some(nick);
        return;
    }
    // A registered user's new nick: everyone who shares a channel sees it, and the
    // inbox follows it.
    let old_mask = s.mask();
    for channel in s.joined.clone() {
        if !channel.is_aggregate() {
            s.shard.remove_member(channel.subject(), &old);
        }
    }
    s.nick = Some(nick.clone());
    for channel in s.joined.clone() {
        if !channel.is_aggregate() {
            s.shard.add_member(channel.subject(), s.member());
            let mut event = presence_event(s, Event::Nick, &channel, None);
            event.nick = old.clone();
            event.mask = old_mask.clone();
            event.new = Some(nick.clone());
            publish_presence(router, conn, &channel, &event);
        }
    }
    if !same_key {
        release_nick(s, router, conn, &old);
    }
    router.apply(
        conn,
        Op::Unsubscribe {
            sid: old.as_bytes(),
            max_msgs: None,
        },
    );
    subscribe_inbox(router, conn, &nick);
    s.out.from_user(&old_mask, "NICK", &[], Some(&nick));
}

fn user(s: &mut IrcSession, router: &mut Router, conn: &Rc<Conn>, line: &Line<'_>) {
    if s.registered || s.user.is_some() {
        s.numeric("462", &[], "You may not reregister");
        return;
    }
    let (Some(name), Some(realname)) = (line.param(0), line.param(3)) else {
        s.numeric("461", &["USER"], "Not enough parameters");
        return;
    };
    // The user name as an ident-less server shows it: `~` and up to 10 safe characters.
    let name: String = String::from_utf8_lossy(name)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c))
        .take(10)
        .collect();
    let name = if name.is_empty() { "user".into() } else { name };
    s.user = Some(format!("~{name}"));
    s.realname = String::from_utf8_lossy(realname).chars().take(64).collect();
    s.try_register(conn, router);
}

/// Subscribes the user's inbox: direct messages to `nick` arrive tagged with it.
pub fn subscribe_inbox(router: &mut Router, conn: &Rc<Conn>, nick: &str) {
    let subject = inbox_subject(nick);
    router.apply(
        conn,
        Op::Subscribe {
            sid: nick.as_bytes(),
            subject: subject.as_bytes(),
            queue: None,
        },
    );
}

pub(super) fn channel_error(s: &mut IrcSession, name: &str, e: ChannelError) {
    let shown: String = name.chars().take(64).collect();
    s.numeric("403", &[&shown], e.text());
}

fn join(
    s: &mut IrcSession,
    router: &mut Router,
    metrics: &ShardMetrics,
    conn: &Rc<Conn>,
    name: &str,
) {
    let channel = match Channel::parse(name.as_bytes(), s.settings().channel_len_max) {
        Ok(c) => c,
        Err(e) => return channel_error(s, name, e),
    };
    if s.joined.contains(&channel) {
        return;
    }
    let cname = channel.name();
    if s.joined.len() >= s.settings().channels_per_user_max {
        s.numeric("405", &[&cname], "You have joined too many channels");
        return;
    }
    if !s.login.may_subscribe(channel.subject()) {
        metrics.add(Counter::PermissionViolations, 1);
        s.numeric("474", &[&cname], "Cannot join channel (permission denied)");
        return;
    }
    if !channel.is_aggregate()
        && s.shard.member_count(channel.subject()) >= s.settings().members_per_channel_max
    {
        s.numeric("471", &[&cname], "Cannot join channel (+l)");
        return;
    }
    let applied = router.apply(
        conn,
        Op::Subscribe {
            sid: cname.as_bytes(),
            subject: channel.subject().as_bytes(),
            queue: None,
        },
    );
    if let Outcome::Refused(why) = applied.outcome {
        let text = match why {
            Refusal::TooManySubscriptions => "You have joined too many channels",
            _ => "Cannot join channel",
        };
        s.numeric("405", &[&cname], text);
        return;
    }
    s.joined.insert(channel.clone());
    let mask = s.mask();
    s.out.from_user(&mask, "JOIN", &[&cname], None);
    if let Some(t) = s.shard.topic_of(channel.subject()) {
        show_topic(s, &channel, &t);
    }
    if !channel.is_aggregate() {
        let psid = presence_sid(&channel);
        let psubject = presence::subject_for(channel.subject());
        router.apply(
            conn,
            Op::Subscribe {
                sid: psid.as_bytes(),
                subject: psubject.as_bytes(),
                queue: None,
            },
        );
        s.shard.add_member(channel.subject(), s.member());
        let event = presence_event(s, Event::Join, &channel, None);
        publish_presence(router, conn, &channel, &event);
    }
    names(s, &channel);
    if s.shard.history && !channel.is_aggregate() {
        request_history(s, router, conn, &channel);
    }
}

fn part(s: &mut IrcSession, router: &mut Router, conn: &Rc<Conn>, name: &str, reason: &str) {
    let channel = match Channel::parse(name.as_bytes(), s.settings().channel_len_max) {
        Ok(c) => c,
        Err(e) => return channel_error(s, name, e),
    };
    if !s.joined.contains(&channel) {
        s.numeric("442", &[&channel.name()], "You're not on that channel");
        return;
    }
    let mask = s.mask();
    leave(s, router, conn, &channel, Event::Part, reason);
    let reason = (!reason.is_empty()).then_some(reason);
    s.out.from_user(&mask, "PART", &[&channel.name()], reason);
}

/// Leaves every channel (QUIT, `JOIN 0`, or a closed connection); the others see
/// `event`.
pub fn leave_all(s: &mut IrcSession, router: &mut Router, conn: &Rc<Conn>, reason: &str) {
    for channel in s.joined.clone() {
        leave(s, router, conn, &channel, Event::Quit, reason);
    }
    if let Some(nick) = s.nick.clone() {
        if conn.is_closing() || reason.starts_with("Quit") {
            release_nick(s, router, conn, &nick);
        }
    }
}

/// Gives `nick` up, telling the other shards (if this connection still held it).
fn release_nick(s: &IrcSession, router: &mut Router, conn: &Rc<Conn>, nick: &str) {
    let key = nick_key(nick);
    if s.shard.release_nick(&key, conn.cid) {
        announce_nick(s, router, conn, &key, false);
    }
}

/// Publishes this connection's claim (or release) of `key` to every shard's copy.
fn announce_nick(s: &IrcSession, router: &mut Router, conn: &Rc<Conn>, key: &str, claim: bool) {
    let (key, shard, cid) = (key.to_string(), s.shard.shard, conn.cid);
    let event = if claim {
        NickEvent::Claim { key, shard, cid }
    } else {
        NickEvent::Release { key, shard, cid }
    };
    publish_owned(router, conn, NICK_SUBJECT, None, &event.to_json());
}

fn leave(
    s: &mut IrcSession,
    router: &mut Router,
    conn: &Rc<Conn>,
    channel: &Channel,
    event: Event,
    reason: &str,
) {
    s.joined.remove(channel);
    let cname = channel.name();
    router.apply(
        conn,
        Op::Unsubscribe {
            sid: cname.as_bytes(),
            max_msgs: None,
        },
    );
    if channel.is_aggregate() {
        return;
    }
    let psid = presence_sid(channel);
    router.apply(
        conn,
        Op::Unsubscribe {
            sid: psid.as_bytes(),
            max_msgs: None,
        },
    );
    s.shard.remove_member(channel.subject(), &s.target());
    let e = presence_event(s, event, channel, Some(reason.to_string()));
    publish_presence(router, conn, channel, &e);
}

pub(super) fn presence_event(
    s: &IrcSession,
    event: Event,
    channel: &Channel,
    reason: Option<String>,
) -> Presence {
    Presence {
        event,
        nick: s.target(),
        mask: s.mask(),
        channel: channel.name(),
        ts: presence::now_rfc3339(),
        reason,
        new: None,
        realname: (event == Event::Join).then(|| s.realname.clone()),
        topic: None,
        node: Some(s.shard.node.clone()),
    }
}

fn message(
    s: &mut IrcSession,
    router: &mut Router,
    metrics: &ShardMetrics,
    conn: &Rc<Conn>,
    notice: bool,
    targets: Option<String>,
    text: Option<&[u8]>,
) {
    let command = if notice { "NOTICE" } else { "PRIVMSG" };
    let Some(targets) = targets else {
        if !notice {
            s.numeric("411", &[], &format!("No recipient given ({command})"));
        }
        return;
    };
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        if !notice {
            s.numeric("412", &[], "No text to send");
        }
        return;
    };
    // CTCP other than ACTION (VERSION, PING…) is for clients, not for subjects.
    if text.first() == Some(&1) && !text.starts_with(b"\x01ACTION") {
        return;
    }
    let headers = format!(
        "NATS/1.0\r\n{NICK_HEADER}: {}\r\n{MASK_HEADER}: {}\r\n\r\n",
        s.target(),
        s.mask()
    );
    for target in targets.split(',').filter(|t| !t.is_empty()) {
        let subject = if target.starts_with('#') {
            match Channel::parse(target.as_bytes(), s.settings().channel_len_max) {
                Err(e) if !notice => {
                    channel_error(s, target, e);
                    continue;
                }
                Err(_) => continue,
                Ok(c) if c.is_aggregate() || !s.joined.contains(&c) => {
                    if !notice {
                        let why = if c.is_aggregate() {
                            "Cannot send to channel (aggregate channels are read-only)"
                        } else {
                            "Cannot send to channel (join it first)"
                        };
                        s.numeric("404", &[&c.name()], why);
                    }
                    continue;
                }
                Ok(c) => c.subject().to_string(),
            }
        } else if nick_key(target) == nick_key(&s.target()) {
            // To oneself: straight back (the engine gives no one their own messages).
            let mask = s.mask();
            let me = s.target();
            let shown = String::from_utf8_lossy(text).into_owned();
            s.out.from_user(&mask, command, &[&me], Some(&shown));
            continue;
        } else {
            let known = check_nick(target.as_bytes(), s.settings().nick_len_max).is_ok()
                && router.has_interest(inbox_subject(target).as_bytes());
            if !known {
                if !notice {
                    let shown: String = target.chars().take(64).collect();
                    s.numeric("401", &[&shown], "No such nick/channel");
                }
                continue;
            }
            inbox_subject(target)
        };
        if !s.login.may_publish(conn, &subject) {
            metrics.add(Counter::PermissionViolations, 1);
            if !notice {
                let shown: String = target.chars().take(64).collect();
                s.numeric(
                    "404",
                    &[&shown],
                    "Cannot send to channel (permission denied)",
                );
            }
            continue;
        }
        metrics.add(Counter::MsgsIn, 1);
        metrics.add(Counter::BytesIn, text.len() as u64);
        publish_owned(router, conn, &subject, Some(headers.as_bytes()), text);
    }
}
