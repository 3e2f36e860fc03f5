//! A real IRC client against the IRC front-end: irssi, driven in tmux on a private socket,
//! joins `#room.lobby` and is shown what was said before (history), chats there with an
//! async-nats client and a raw-TCP IRC client on the other shard, then quits. The
//! scenario is a list of steps (`Scenario`), so more can be added.
//!
//! irssi and tmux come from Debian packages that `scripts/test.sh` installs (its NEEDS
//! list); without them this test fails and says so. `SHARDCAST_IRSSI_SCREEN=<file>` makes
//! it write irssi's screen, with colours, once everyone has spoken
//! (`scripts/irc_screenshot.sh` turns that into `docs/img/irc-irssi.png`).

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;

use common::irc::{runtime, shard_of, start, subscribed, Irc};
use common::{Server, TempDir, WAIT};

/// How long to wait for something to show on irssi's screen: generous, because irssi
/// starts, registers and runs its join queries at its own pace on a loaded machine.
const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// irssi's configuration: its command queue at 50 ms instead of 2.2 s between commands,
/// and a fixed user name so its mask does not depend on who runs the test.
const IRSSI_CONFIG: &str = r#"settings = {
  core = { user_name = "ada"; real_name = "Ada in irssi"; };
  "irc/core" = { cmd_queue_speed = "50msec"; };
};
"#;

/// irssi's nick, and the mask the server gives it.
const NICK: &str = "ada";
const MASK: &str = "ada!~ada@127.0.0.1";

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

/// irssi in a tmux session of its own (a private socket and `--home` in a temp dir).
/// Dropping it kills that tmux server, and irssi with it.
struct Irssi {
    dir: TempDir,
    /// irssi's process id (the pane runs it directly), killed if still there on drop.
    pid: Option<u32>,
}

impl Irssi {
    /// Starts irssi as `nick`, connecting to `addr`.
    fn start(addr: SocketAddr, nick: &str) -> Irssi {
        for (program, version) in [("tmux", "-V"), ("irssi", "--version")] {
            require(program, version);
        }
        let dir = TempDir::new("irssi");
        std::fs::create_dir_all(dir.0.join("home")).expect("irssi home");
        std::fs::write(dir.0.join("home/config"), IRSSI_CONFIG).expect("irssi config");
        let mut irssi = Irssi { dir, pid: None };
        let home = format!("--home={}", irssi.dir.0.join("home").display());
        let port = addr.port().to_string();
        // 100×18: the channel's lines fit, and the picture made from it stays small.
        #[rustfmt::skip]
        let started = irssi.tmux(&[
            "-f", "/dev/null", "new-session", "-d", "-s", "irssi", "-x", "100", "-y", "18",
            "env", "TERM=screen-256color", "irssi", &home, "-n", nick, "-c", "127.0.0.1", "-p", &port,
        ]);
        assert!(started.status.success(), "tmux new-session: {started:?}");
        let pid = irssi.tmux(&["display-message", "-p", "-t", "irssi", "#{pane_pid}"]);
        irssi.pid = String::from_utf8_lossy(&pid.stdout).trim().parse().ok();
        irssi
    }

    /// Runs `tmux -S <our socket> args…`.
    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(self.dir.0.join("tmux.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// Types `text` and Enter, as a person would.
    fn type_line(&self, text: &str) {
        let typed = self.tmux(&["send-keys", "-t", "irssi", "-l", text]);
        assert!(typed.status.success(), "send-keys {text:?}: {typed:?}");
        let enter = self.tmux(&["send-keys", "-t", "irssi", "Enter"]);
        assert!(enter.status.success(), "send-keys Enter: {enter:?}");
    }

    /// What the screen shows; with `colours`, with its ANSI escapes.
    fn screen(&self, colours: bool) -> String {
        let args: &[&str] = if colours {
            &["capture-pane", "-p", "-e", "-N", "-t", "irssi"]
        } else {
            &["capture-pane", "-p", "-t", "irssi"]
        };
        String::from_utf8_lossy(&self.tmux(args).stdout).into_owned()
    }

    /// Polls the screen until a line satisfies `pred`; returns that line.
    fn wait_for_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let screen = self.screen(false);
            if let Some(line) = screen.lines().find(|l| pred(l)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "irssi's screen never showed {what} within {SCREEN_WAIT:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until irssi has exited (its tmux session ends with it).
    fn wait_exited(&self) {
        let deadline = Instant::now() + SCREEN_WAIT;
        while self.tmux(&["has-session", "-t", "irssi"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "irssi still running {SCREEN_WAIT:?} after /quit; its screen:\n{}",
                self.screen(false)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Irssi {
    fn drop(&mut self) {
        // Ends the tmux server on our socket: irssi gets SIGHUP. If it is somehow still
        // there (and still irssi: the pid was not reused), kill it.
        let _ = self.tmux(&["kill-server"]);
        if let Some(pid) = self.pid {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "irssi" {
                // SAFETY: kill(2) on the pid of the irssi this guard started, checked above.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// Fails, naming `scripts/test.sh`, when `program` is not installed.
fn require(program: &str, version_flag: &str) {
    let found = Command::new(program)
        .arg(version_flag)
        .stdin(Stdio::null())
        .output();
    if !found.is_ok_and(|o| o.status.success()) {
        panic!(
            "`{program}` is not installed: tests/irc_client.rs drives irssi in tmux. \
             Run the tests with scripts/test.sh, which installs irssi and tmux (its NEEDS list)."
        );
    }
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
        let irssi = Irssi::start(irc_addr, NICK);
        // Any of these means 001 came (the first may have scrolled off already).
        irssi.wait_for_line("the welcome (001)", |l| {
            l.contains("Welcome to the shardcast IRC network")
                || l.contains("MOTD File is missing")
                || l.contains(&format!("Mode change [+i] for user {NICK}"))
        });
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
        assert_eq!(event["realname"], "Ada in irssi");
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

    /// With `SHARDCAST_IRSSI_SCREEN=<file>`, writes irssi's screen there with its colours
    /// (ANSI escapes), for `scripts/irc_screenshot.sh`.
    fn save_screen_if_asked(&self) {
        if let Some(path) = std::env::var_os("SHARDCAST_IRSSI_SCREEN") {
            std::fs::write(&path, self.irssi.screen(true))
                .unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
        }
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
