//! A real IRC client against the IRC front-end: irssi, driven in tmux on a private socket,
//! joins `#room.lobby` and is shown what was said before (history), chats there with an
//! async-nats client and a raw-TCP IRC client on the other shard, then quits. The
//! scenario is a list of steps (`Scenario`), so more can be added.
//!
//! The irssi driver is `tests/common/irssi.rs` (irssi and tmux are Debian packages that
//! `scripts/test.sh` installs). `SHARDCAST_IRSSI_SCREEN=<file>` makes this test write
//! irssi's screen, with colours, once everyone has spoken (`scripts/irc_screenshot.sh`
//! turns that into `docs/img/irc-irssi.png`).

mod common;

use std::net::SocketAddr;

use futures::StreamExt;

use common::irc::{runtime, shard_of, start, subscribed, Irc};
use common::irssi::Irssi;
use common::{Server, WAIT};

/// irssi's nick, the mask the server gives it, and its real name.
const NICK: &str = "ada";
const MASK: &str = "ada!~ada@127.0.0.1";
const REAL_NAME: &str = "Ada in irssi";

const CHANNEL: &str = "#room.lobby";
const SUBJECT: &str = "room.lobby";
/// Said on the channel before irssi joins: replayed to it from the history.
const EARLIER: &str = "earlier: soup for lunch";

#[test]
fn irssi_chats_with_nats_and_irc_across_shards() {
    let mut s = Scenario::start();
    s.earlier_messages_wait_in_history();
    s.irssi_joins();
    s.irc_client_on_the_other_shard_joins();
    s.nats_speaks_to_irssi();
    s.irssi_speaks_to_nats_and_irc();
    s.irc_client_speaks_to_irssi();
    s.save_screen_if_asked();
    s.irssi_quits();
}

/// A program on the channel's subject: a NATS client and its subscriptions.
struct Nats {
    client: async_nats::Client,
    /// `SUBJECT`, and the channel's presence events.
    room: async_nats::Subscriber,
    presence: async_nats::Subscriber,
}

/// The server, irssi, a NATS client and (from its step on) a raw IRC client, and the
/// steps they go through.
struct Scenario {
    // Dropped in this order: irssi and the raw client first, the server last.
    irssi: Irssi,
    irc: Option<Irc>,
    /// Always there; an `Option` so that `drop` can drop it inside the runtime.
    nats: Option<Nats>,
    rt: tokio::runtime::Runtime,
    irc_addr: SocketAddr,
    /// The shard that took irssi's connection.
    irssi_shard: usize,
    server: Server,
}

impl Scenario {
    /// A server of 2 shards with the IRC listener on, irssi registered on it, and a NATS
    /// client subscribed to the channel's subject and its presence.
    fn start() -> Scenario {
        let (server, irc_addr) = start("");
        let irssi = Irssi::start(NICK, REAL_NAME, Some(irc_addr));
        irssi.wait_registered(NICK);
        // irssi's is the server's first connection (the NATS client connects next).
        let irssi_shard = server
            .wait_for_log("irssi's connection", |l| l.contains("client connected"))
            .split_whitespace()
            .find_map(|w| w.strip_prefix("shard="))
            .and_then(|v| v.parse().ok())
            .expect("shard= in the log line");
        let rt = runtime();
        let nats = rt.block_on(async {
            let client = async_nats::connect(server.addr.to_string())
                .await
                .expect("nats");
            let room = client.subscribe(SUBJECT).await.expect("sub");
            let presence = client
                .subscribe(format!("$SC.PRESENCE.{SUBJECT}"))
                .await
                .expect("sub");
            subscribed(&client).await;
            Nats {
                client,
                room,
                presence,
            }
        });
        Scenario {
            irssi,
            irc: None,
            nats: Some(nats),
            rt,
            irc_addr,
            irssi_shard,
            server,
        }
    }

    /// Someone opens the channel and leaves; a NATS client says something there, which
    /// the channel's history keeps.
    fn earlier_messages_wait_in_history(&mut self) {
        let mut cleo = Irc::register(self.irc_addr, "cleo");
        cleo.send(&format!("JOIN {CHANNEL}"));
        cleo.expect(" 366 cleo ");
        cleo.send(&format!("PART {CHANNEL}"));
        cleo.expect(" PART ");
        let nats = &self.nats.as_ref().expect("nats").client;
        self.rt.block_on(async {
            nats.publish(SUBJECT, EARLIER.into()).await.expect("pub");
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                let answer = nats
                    .request(format!("$SC.HISTORY.{SUBJECT}"), "".into())
                    .await
                    .expect("history answer");
                if String::from_utf8_lossy(&answer.payload).contains(EARLIER) {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "never kept");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
    }

    /// irssi joins: it is shown what was said before, the server answers its
    /// MODE/WHO/MODE b queries (irssi reports the channel synced), and programs see the
    /// join.
    fn irssi_joins(&mut self) {
        self.irssi.type_line(&format!("/join {CHANNEL}"));
        self.irssi.wait_for_line("the join", |l| {
            l.contains(&format!("{NICK} [~ada@127.0.0.1] has joined {CHANNEL}"))
        });
        self.irssi
            .wait_for_line("the replayed history", |l| l.contains(EARLIER));
        self.irssi.wait_for_line("the channel synced", |l| {
            l.contains(&format!("Join to {CHANNEL} was synced"))
        });
        let event = self.presence_event("join", NICK);
        assert_eq!(event["mask"], MASK);
        assert_eq!(event["channel"], CHANNEL);
        assert_eq!(event["realname"], REAL_NAME);
    }

    /// A person with a raw IRC client, on the shard irssi is not on, joins; irssi sees it.
    fn irc_client_on_the_other_shard_joins(&mut self) {
        let mut bob = (0..64)
            .map(|_| Irc::connect(self.irc_addr))
            .find(|c| shard_of(&self.server, c.local_port()) != self.irssi_shard)
            .expect("64 connections all on irssi's shard");
        bob.send("NICK bob");
        bob.send("USER bob 0 * :Bob");
        bob.expect(" 422 bob ");
        bob.send(&format!("JOIN {CHANNEL}"));
        let names = bob.expect(&format!(" 353 bob = {CHANNEL} :"));
        bob.expect(&format!(" 366 bob {CHANNEL} "));
        // irssi is listed unless its join has not reached this shard's copy yet.
        assert!(names.contains("bob"), "{names}");
        self.irssi.wait_for_line("bob's join", |l| {
            l.contains(&format!("bob [~bob@127.0.0.1] has joined {CHANNEL}"))
        });
        self.presence_event("join", "bob");
        self.irc = Some(bob);
    }

    /// A NATS client publishes; irssi and the raw client show it from `nats`.
    fn nats_speaks_to_irssi(&mut self) {
        let nats = &self.nats.as_ref().expect("nats").client;
        self.rt.block_on(async {
            nats.publish(SUBJECT, "hello from nats".into())
                .await
                .expect("pub");
            nats.flush().await.expect("flush");
        });
        self.irssi
            .wait_for_line("the NATS message", |l| l.contains("nats> hello from nats"));
        let bob = self.irc.as_mut().expect("bob");
        assert_eq!(
            bob.expect("hello from nats"),
            format!(":nats!nats@nats.shardcast PRIVMSG {CHANNEL} :hello from nats")
        );
    }

    /// The person types in irssi; NATS gets it with the nick in a header, the raw client
    /// gets the IRC line.
    fn irssi_speaks_to_nats_and_irc(&mut self) {
        self.irssi.type_line("hello from irssi");
        let msg = self.room_message("hello from irssi");
        let headers = msg.headers.expect("headers");
        assert_eq!(
            headers.get("Shardcast-Irc-Nick").map(|v| v.as_str()),
            Some(NICK)
        );
        assert_eq!(
            headers.get("Shardcast-Irc-Mask").map(|v| v.as_str()),
            Some(MASK)
        );
        let bob = self.irc.as_mut().expect("bob");
        assert_eq!(
            bob.expect("hello from irssi"),
            format!(":{MASK} PRIVMSG {CHANNEL} :hello from irssi")
        );
    }

    /// The raw client says something; irssi shows it, NATS gets it too.
    fn irc_client_speaks_to_irssi(&mut self) {
        let bob = self.irc.as_mut().expect("bob");
        bob.send(&format!(
            "PRIVMSG {CHANNEL} :hello from bob on the other shard"
        ));
        self.irssi.wait_for_line("bob's message", |l| {
            l.contains("bob> hello from bob on the other shard")
        });
        let msg = self.room_message("hello from bob on the other shard");
        let nick = msg
            .headers
            .as_ref()
            .and_then(|h| h.get("Shardcast-Irc-Nick"));
        assert_eq!(nick.map(|v| v.as_str()), Some("bob"));
    }

    /// With `SHARDCAST_IRSSI_SCREEN=<file>`, writes irssi's screen there with its colours.
    fn save_screen_if_asked(&self) {
        self.irssi.save_screen_if_asked();
    }

    /// `/quit` in irssi: it exits, the raw client sees the QUIT, programs the presence event.
    fn irssi_quits(&mut self) {
        self.irssi.type_line("/quit leaving now");
        let bob = self.irc.as_mut().expect("bob");
        assert_eq!(
            bob.expect(" QUIT "),
            format!(":{MASK} QUIT :Quit: leaving now")
        );
        let event = self.presence_event("quit", NICK);
        assert_eq!(event["mask"], MASK);
        assert!(
            event["reason"]
                .as_str()
                .is_some_and(|r| r.contains("leaving now")),
            "{event}"
        );
        self.irssi.wait_exited();
    }

    /// The next presence event `event` of `nick` (others are skipped), as JSON.
    fn presence_event(&mut self, event: &str, nick: &str) -> serde_json::Value {
        let (mut skipped, nats) = (Vec::new(), self.nats.as_mut().expect("nats"));
        self.rt.block_on(async {
            loop {
                let msg = tokio::time::timeout(WAIT, nats.presence.next())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("no {event} event of {nick} within {WAIT:?}; got {skipped:?}")
                    })
                    .expect("presence subscription open");
                let json: serde_json::Value =
                    serde_json::from_slice(&msg.payload).expect("presence JSON");
                if json["event"] == event && json["nick"] == nick {
                    return json;
                }
                skipped.push(json);
            }
        })
    }

    /// The next message on `SUBJECT` whose payload is `text` (others are skipped).
    fn room_message(&mut self, text: &str) -> async_nats::Message {
        let (mut skipped, nats) = (Vec::new(), self.nats.as_mut().expect("nats"));
        self.rt.block_on(async {
            loop {
                let msg = tokio::time::timeout(WAIT, nats.room.next())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("no {text:?} on {SUBJECT} within {WAIT:?}; got {skipped:?}")
                    })
                    .expect("subscription open");
                if msg.payload == text.as_bytes() {
                    return msg;
                }
                skipped.push(String::from_utf8_lossy(&msg.payload).into_owned());
            }
        })
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // async-nats unsubscribes a dropped subscription from a tokio task: drop the
        // NATS side inside the runtime.
        let _in_runtime = self.rt.enter();
        self.nats.take();
    }
}
