//! The queries and TOPIC: NAMES (this shard's copy of every shard's members), WHO, MODE
//! (queries; changes are refused), TOPIC (query, or set and shown to every shard's
//! members), LIST, and about users: WHOIS, USERHOST, ISON.

use std::rc::Rc;

use crate::conn::Conn;
use crate::front::irc::commands::{channel_error, presence_event};
use crate::front::irc::names::{nick_key, Channel};
use crate::front::irc::presence::{self, Event};
use crate::front::irc::publish::publish_presence;
use crate::front::irc::{IrcSession, Member};
use crate::route::Router;
use crate::wire::irc::NATS_NICK;

/// 353 lines (split to fit) and 366 for `channel`: this shard's members, the NATS
/// pseudo-user, and the client itself.
pub(super) fn names(s: &mut IrcSession, channel: &Channel) {
    let cname = channel.name();
    let mut nicks = vec![format!("+{NATS_NICK}")];
    if channel.is_aggregate() {
        nicks.push(s.target());
    } else {
        nicks.extend(
            s.shard
                .members_of(channel.subject())
                .into_iter()
                .map(|m| m.nick),
        );
    }
    let mut line = String::new();
    for nick in nicks {
        if line.len() + nick.len() + 1 > 400 {
            s.numeric("353", &["=", &cname], &line);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&nick);
    }
    s.numeric("353", &["=", &cname], &line);
    s.numeric("366", &[&cname], "End of /NAMES list.");
}

pub(super) fn who(s: &mut IrcSession, target: Option<String>) {
    let target = target.unwrap_or_else(|| "*".into());
    if let Ok(channel) = Channel::parse(target.as_bytes(), s.settings().channel_len_max) {
        let server = s.settings().server_name.clone();
        let cname = channel.name();
        for m in s.shard.members_of(channel.subject()) {
            let flags = "H";
            let real = format!("0 {}", m.realname);
            s.numeric(
                "352",
                &[&cname, &m.user, &m.host, &server, &m.nick, flags],
                &real,
            );
        }
    }
    s.numeric("315", &[&target], "End of /WHO list.");
}

pub(super) fn mode(s: &mut IrcSession, target: Option<String>, change: Option<String>) {
    let Some(target) = target else {
        s.numeric("461", &["MODE"], "Not enough parameters");
        return;
    };
    if target.starts_with('#') {
        let channel = match Channel::parse(target.as_bytes(), s.settings().channel_len_max) {
            Ok(c) => c,
            Err(e) => return channel_error(s, &target, e),
        };
        let cname = channel.name();
        let nick = s.target();
        let settings = s.shard.settings.clone();
        match change.as_deref() {
            None => {
                s.out
                    .numeric_bare(&settings, "324", &nick, &[&cname, "+nt"]);
                let created = s.settings().created_unix.to_string();
                s.out
                    .numeric_bare(&settings, "329", &nick, &[&cname, &created]);
            }
            Some("b") | Some("+b") => s.numeric("368", &[&cname], "End of channel ban list"),
            Some("e") | Some("+e") => s.numeric("349", &[&cname], "End of channel exception list"),
            Some("I") | Some("+I") => s.numeric("347", &[&cname], "End of channel invite list"),
            Some(_) => s.numeric("482", &[&cname], "You're not channel operator"),
        }
        return;
    }
    if nick_key(&target) != nick_key(&s.target()) {
        s.numeric("502", &[], "Can't change mode for other users");
        return;
    }
    match change {
        None => {
            let nick = s.target();
            let settings = s.shard.settings.clone();
            s.out.numeric_bare(&settings, "221", &nick, &["+i"]);
        }
        Some(modes) => {
            let mask = s.mask();
            let nick = s.target();
            s.out.from_user(&mask, "MODE", &[&nick], Some(&modes));
        }
    }
}

/// `TOPIC #c` (the topic, `332` and `333`, or `331`) or `TOPIC #c :text` (set it).
pub(super) fn topic(
    s: &mut IrcSession,
    router: &mut Router,
    conn: &Rc<Conn>,
    name: &str,
    text: Option<&[u8]>,
) {
    let channel = match Channel::parse(name.as_bytes(), s.settings().channel_len_max) {
        Ok(c) => c,
        Err(e) => return channel_error(s, name, e),
    };
    let cname = channel.name();
    let Some(text) = text else {
        match s.shard.topic_of(channel.subject()) {
            Some(t) => show_topic(s, &channel, &t),
            None => s.numeric("331", &[&cname], "No topic is set"),
        }
        return;
    };
    if !s.joined.contains(&channel) {
        s.numeric("442", &[&cname], "You're not on that channel");
        return;
    }
    if channel.is_aggregate() {
        s.numeric("482", &[&cname], "You're not channel operator");
        return;
    }
    let text = presence::clean_topic(&String::from_utf8_lossy(text), s.settings().topic_len_max);
    let set_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    s.shard.set_topic(
        channel.subject(),
        crate::front::irc::Topic {
            text: text.clone(),
            setter: s.target(),
            set_at,
        },
    );
    let mut event = presence_event(s, Event::Topic, &channel, None);
    event.topic = Some(text.clone());
    publish_presence(router, conn, &channel, &event);
    let mask = s.mask();
    s.out.from_user(&mask, "TOPIC", &[&cname], Some(&text));
}

pub(super) fn show_topic(s: &mut IrcSession, channel: &Channel, t: &crate::front::irc::Topic) {
    let cname = channel.name();
    s.numeric("332", &[&cname], &t.text);
    let settings = s.shard.settings.clone();
    let nick = s.target();
    let when = t.set_at.to_string();
    s.out
        .numeric_bare(&settings, "333", &nick, &[&cname, &t.setter, &when]);
}

pub(super) fn list(s: &mut IrcSession) {
    s.numeric("321", &["Channel"], "Users  Name");
    for (subject, count) in s.shard.channels() {
        let name = format!("#{subject}");
        let topic = s
            .shard
            .topic_of(&subject)
            .map(|t| t.text)
            .unwrap_or_default();
        s.numeric("322", &[&name, &count.to_string()], &topic);
    }
    s.numeric("323", &[], "End of /LIST");
}

/// What is known of `nick`: the member entry and channels (the client's own from its
/// session), or None if nobody has the nick.
fn lookup(s: &IrcSession, nick: &str) -> Option<(Member, Vec<String>)> {
    let key = nick_key(nick);
    if key == nick_key(&s.target()) && s.registered {
        let channels = s.joined.iter().map(Channel::name).collect();
        return Some((s.member(), channels));
    }
    let (member, channels) = s.shard.whois(&key)?;
    let member = member.unwrap_or_else(|| Member {
        nick: nick.to_string(),
        user: format!("~{nick}"),
        host: "*".into(),
        realname: String::new(),
    });
    Some((member, channels))
}

/// `WHOIS [server] nick`: 311, 319 (channels), 312, 318; or 401 and 318.
pub(super) fn whois(s: &mut IrcSession, first: Option<String>, second: Option<String>) {
    let Some(target) = second.or(first) else {
        s.numeric("431", &[], "No nickname given");
        return;
    };
    let nick = target.split(',').next().unwrap_or("").to_string();
    match lookup(s, &nick) {
        Some((m, channels)) => {
            s.numeric("311", &[&m.nick, &m.user, &m.host, "*"], &m.realname);
            if !channels.is_empty() {
                s.numeric("319", &[&m.nick], &channels.join(" "));
            }
            let settings = s.shard.settings.clone();
            s.numeric("312", &[&m.nick, &settings.server_name], &settings.network);
        }
        None => s.numeric("401", &[&nick], "No such nick/channel"),
    }
    s.numeric("318", &[&nick], "End of /WHOIS list.");
}

/// `USERHOST nick…` (up to 5): 302 with `nick=+user@host` for each one present.
pub(super) fn userhost(s: &mut IrcSession, nicks: &[String]) {
    if nicks.is_empty() {
        s.numeric("461", &["USERHOST"], "Not enough parameters");
        return;
    }
    let found: Vec<String> = nicks
        .iter()
        .take(5)
        .filter_map(|n| lookup(s, n))
        .map(|(m, _)| format!("{}=+{}@{}", m.nick, m.user, m.host))
        .collect();
    s.numeric("302", &[], &found.join(" "));
}

/// `ISON nick…`: 303 with the nicks that are in use.
pub(super) fn ison(s: &mut IrcSession, nicks: &[String]) {
    if nicks.is_empty() {
        s.numeric("461", &["ISON"], "Not enough parameters");
        return;
    }
    let online: Vec<&str> = nicks
        .iter()
        .take(64)
        .filter(|n| lookup(s, n).is_some())
        .map(String::as_str)
        .collect();
    let line = online.join(" ");
    s.numeric("303", &[], &line);
}
