//! docs/logs.md's walk-through, run as written: the blocks it marks with
//! `<!-- walkthrough: NAME -->` are read from the file, the server starts with its
//! `rules.toml` and its `serve` flags (ports 0, on 127.0.0.1), irssi types its commands,
//! its `nc` subscriber and its `logger` commands run in a shell with the real ports, and
//! what they show is compared with what the walk-through says they show: irssi's line,
//! the subscriber's output, the `/varz` counters. An async-nats subscriber gets the same
//! record. Changing the walk-through so that a block is missing or no longer works fails
//! here, naming the block.
//!
//! irssi, tmux, `nc` (netcat-openbsd) and `logger` come from Debian packages that
//! `scripts/test.sh` installs. `SHARDCAST_IRSSI_SCREEN=<file>` writes irssi's screen
//! after the last logs (`scripts/irc_screenshot.sh logs_walkthrough
//! docs/img/logs-irssi.png` makes the walk-through's picture from it).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use common::irc::{runtime, subscribed};
use common::irssi::{require, Irssi};
use common::logs::{listening, next};
use common::{get_json, monitoring_addr, Server, TempDir, WAIT};

const DOC: &str = "docs/logs.md";
/// The nick irssi gets (the walk-through's irssi uses the login name).
const NICK: &str = "reader";

#[test]
fn the_walkthrough_in_docs_logs_md_works_as_written() {
    for program in ["logger", "nc"] {
        require(program);
    }
    // Steps 2 to 5: the rules, the server, irssi in #logs.error, the nc subscriber (and
    // an async-nats one).
    let doc = Walkthrough::read();
    let run = Run::start(&doc);
    let irssi = run.irssi_follows(&doc);
    let mut subscriber = Shell::spawn(&run.with_ports(&doc.subscribe));
    subscriber.wait_for_line("PONG", |l| l == "PONG");
    let rt = runtime();
    // async-nats unsubscribes a dropped subscription from a tokio task: the NATS side,
    // declared after this, is dropped inside the runtime (on a failure too).
    let _in_runtime = rt.enter();
    let (_nats, mut sub) = rt.block_on(async {
        let nats = async_nats::connect(run.server.addr.to_string())
            .await
            .expect("nats");
        let sub = nats.subscribe("logs.error").await.expect("sub");
        subscribed(&nats).await;
        (nats, sub)
    });

    // Step 6: the log, in irssi and in both subscribers.
    run.shell(&doc.logger);
    let shown = irssi.wait_for_line("the log line", |l| l.contains(&doc.logger_message));
    assert_eq!(
        mask_digits(shown.trim_end()),
        mask_digits(&doc.irssi_line),
        "irssi's line differs from the walk-through's `irssi-line` block (digits aside)"
    );
    let record = subscriber.check_output(&doc.subscriber_output);
    let msg = rt.block_on(next(&mut sub));
    assert_eq!(
        std::str::from_utf8(&msg.payload).expect("UTF-8 record"),
        record,
        "the async-nats subscriber and the walk-through's nc got different records"
    );
    let level = msg
        .headers
        .as_ref()
        .and_then(|h| h.get("Shardcast-Log-Level"));
    assert_eq!(level.map(|v| v.as_str()), Some("ERROR"));
    // Step 7: the counters.
    let logs = run.varz_logs_until(&doc.varz, "varz");
    assert_eq!(logs["inputs"]["syslog_udp"]["received"], 1, "{logs}");
    assert_eq!(logs["rules"][0]["to"], "logs.error", "{logs}");
    assert_eq!(logs["rules"][0]["matched"], 1, "{logs}");

    // Step 8: a few more, and the counters again.
    for command in &doc.more {
        run.shell(command);
    }
    for message in &doc.more_shown {
        irssi.wait_for_line(message, |l| l.contains(message.as_str()));
    }
    run.varz_logs_until(&doc.varz_more, "varz-more");
    irssi.save_screen_if_asked();
}

/// What the walk-through says, read from its marked blocks.
struct Walkthrough {
    rules_toml: String,
    /// The arguments after `serve`.
    serve_args: Vec<String>,
    /// What is typed into irssi.
    irssi: Vec<String>,
    subscribe: String,
    logger: String,
    /// The message the `logger` command sends (its last, quoted, argument).
    logger_message: String,
    irssi_line: String,
    subscriber_output: Vec<String>,
    varz: Vec<Value>,
    more: Vec<String>,
    /// The messages of the `more` commands that irssi shows in `#logs.error`.
    more_shown: Vec<String>,
    varz_more: Vec<Value>,
}

impl Walkthrough {
    fn read() -> Walkthrough {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let serve = one_line(&text, "serve");
        let serve_args = serve
            .split_once(" serve ")
            .unwrap_or_else(|| panic!("{DOC}: the `serve` block runs no `… serve …`: {serve}"))
            .1
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let logger = one_line(&text, "logger");
        let more = commands(&block(&text, "more"));
        let more_shown = more
            .iter()
            .filter(|c| is_error(c))
            .map(|c| quoted_message(c))
            .collect();
        Walkthrough {
            rules_toml: block(&text, "rules.toml"),
            serve_args,
            irssi: commands(&block(&text, "irssi")),
            subscribe: one_line(&text, "subscribe"),
            logger_message: quoted_message(&logger),
            logger,
            irssi_line: one_line(&text, "irssi-line"),
            subscriber_output: block(&text, "subscriber-output")
                .lines()
                .map(str::to_string)
                .collect(),
            varz: json_lines(&text, "varz"),
            more,
            more_shown,
            varz_more: json_lines(&text, "varz-more"),
        }
    }
}

/// The fenced block right after `<!-- walkthrough: name -->`, without its fences.
fn block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- walkthrough: {name} -->\n");
    let fix = "tests/logs_walkthrough.rs runs the walk-through from these marked blocks";
    let (_, after) = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{DOC} has no line `{}` ({fix})", marker.trim_end()));
    let mut lines = after.lines();
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "{DOC}: `{}` is not followed by a fenced code block but by {fence:?} ({fix})",
        marker.trim_end()
    );
    let body: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(
        !body.is_empty(),
        "{DOC}: the `{name}` block is empty ({fix})"
    );
    body.join("\n") + "\n"
}

/// The block `name`'s one command line.
fn one_line(doc: &str, name: &str) -> String {
    let lines = commands(&block(doc, name));
    assert_eq!(
        lines.len(),
        1,
        "{DOC}: the `{name}` block should be one line: {lines:?}"
    );
    lines[0].clone()
}

/// A block's lines, without blank lines and `#` comments.
fn commands(block: &str) -> Vec<String> {
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("# "))
        .map(str::to_string)
        .collect()
}

/// The block `name`, one JSON value per line.
fn json_lines(doc: &str, name: &str) -> Vec<Value> {
    commands(&block(doc, name))
        .iter()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{DOC}: the `{name}` block: {e}: {l}"))
        })
        .collect()
}

/// The last single-quoted argument of a `logger` command: the message.
fn quoted_message(command: &str) -> String {
    let inner = command.strip_suffix('\'').and_then(|c| c.rsplit_once('\''));
    match inner {
        Some((_, message)) => message.to_string(),
        None => panic!("{DOC}: a `logger` command should end with its message in '…': {command}"),
    }
}

/// Whether a `logger` command's severity (`-p facility.severity`) is one that becomes
/// `ERROR` or `FATAL`.
fn is_error(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    let priority = words
        .iter()
        .position(|w| *w == "-p")
        .and_then(|i| words.get(i + 1));
    let severity = priority.and_then(|p| p.rsplit_once('.')).map(|(_, s)| s);
    let Some(severity) = severity else {
        panic!("{DOC}: a `logger` command should have `-p facility.severity`: {command}");
    };
    ["emerg", "alert", "crit", "err"].contains(&severity)
}

/// `line` with every digit a 0: times, dates and sizes differ from run to run.
fn mask_digits(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect()
}

/// The flags of `shardcast serve` that take a port.
const PORT_FLAGS: &[&str] = &[
    "-p",
    "--port",
    "-m",
    "--http_port",
    "--irc",
    "--log-tcp",
    "--syslog-tcp",
    "--syslog-udp",
];

/// The server started as the walk-through starts it, and its ports: the walk-through's
/// (the doc's) and the real ones.
struct Run {
    /// (the walk-through's port, the real one).
    ports: Vec<(String, u16)>,
    http: SocketAddr,
    server: Server,
    _dir: TempDir,
}

impl Run {
    /// `shardcast serve` with the walk-through's flags, its `rules.toml`, port 0 for each
    /// of its ports, on 127.0.0.1 with 2 shards.
    fn start(doc: &Walkthrough) -> Run {
        let dir = TempDir::new("walkthrough");
        let rules = dir.0.join("rules.toml");
        std::fs::write(&rules, &doc.rules_toml).expect("write rules.toml");
        let mut args = vec!["serve".to_string()];
        let mut doc_ports = Vec::new();
        let mut words = doc.serve_args.iter();
        while let Some(word) = words.next() {
            args.push(word.clone());
            if word == "-c" || word == "--config" {
                words.next().expect("a file after -c");
                args.push(rules.display().to_string());
            } else if PORT_FLAGS.contains(&word.as_str()) {
                doc_ports.push((word.clone(), words.next().expect("a port").clone()));
                args.push("0".into());
            }
        }
        assert!(
            args.iter().any(|a| a == "-c"),
            "{DOC}: the `serve` command does not use -c rules.toml"
        );
        for (flag, value) in [("-a", "127.0.0.1"), ("-p", "0"), ("--shards", "2")] {
            if !args.iter().any(|a| a == flag) {
                args.extend([flag.to_string(), value.to_string()]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::spawn(&args);
        let http = monitoring_addr(&server);
        let mut ports = vec![("4222".to_string(), server.addr.port())];
        for (flag, doc_port) in doc_ports {
            let real = match flag.as_str() {
                "-p" | "--port" => server.addr,
                "-m" | "--http_port" => http,
                "--irc" => listening(&server, "irc listening"),
                "--log-tcp" => listening(&server, "log tcp listening"),
                "--syslog-tcp" => listening(&server, "syslog tcp listening"),
                _ => listening(&server, "syslog udp listening"),
            };
            ports.retain(|(p, _)| *p != doc_port);
            ports.push((doc_port, real.port()));
        }
        Run {
            ports,
            http,
            server,
            _dir: dir,
        }
    }

    /// `command` with each of the walk-through's ports (a whole word) the real one.
    fn with_ports(&self, command: &str) -> String {
        command
            .split(' ')
            .map(
                |word| match self.ports.iter().find(|(doc, _)| doc == word) {
                    Some((_, real)) => real.to_string(),
                    None => word.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs `command` (with the real ports) in `sh`; it must succeed.
    fn shell(&self, command: &str) {
        let command = self.with_ports(command);
        let out = Command::new("sh")
            .args(["-c", &command])
            .stdin(Stdio::null())
            .output()
            .expect("sh");
        assert!(out.status.success(), "{DOC}: `{command}` failed: {out:?}");
    }

    /// irssi, started without a server, types the walk-through's commands (with the
    /// real ports); after `/connect` it waits for the welcome, after `/join #x` for the
    /// channel to be synced.
    fn irssi_follows(&self, doc: &Walkthrough) -> Irssi {
        let irssi = Irssi::start(NICK, "Reading logs", None);
        irssi.wait_for_line("irssi started", |l| l.contains("Irssi v"));
        for command in &doc.irssi {
            irssi.type_line(&self.with_ports(command));
            if command.starts_with("/connect ") {
                irssi.wait_registered(NICK);
            } else if let Some(channel) = command.strip_prefix("/join ") {
                irssi.wait_for_line("the channel synced", |l| {
                    l.contains(&format!("Join to {channel} was synced"))
                });
            }
        }
        irssi
    }

    /// Polls `/varz` until its `logs` show what the walk-through's `name` block shows:
    /// the `syslog_udp` input, then each rule. Returns the `logs` object.
    fn varz_logs_until(&self, want: &[Value], name: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let logs = get_json(self.http, "/varz")["logs"].clone();
            let mut got = vec![logs["inputs"]["syslog_udp"].clone()];
            got.extend(logs["rules"].as_array().cloned().unwrap_or_default());
            if got == want {
                return logs;
            }
            let lines = |v: &[Value]| {
                v.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert!(
                Instant::now() < deadline,
                "{DOC}: the `{name}` block says /varz shows\n{}\nbut it shows\n{}",
                lines(want),
                lines(&got)
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// A shell pipeline in a process group of its own (killed, by that group's id, when
/// dropped) whose output is read line by line.
struct Shell {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Shell {
    fn spawn(command: &str) -> Shell {
        let mut child = Command::new("sh")
            .args(["-c", command])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line.trim_end_matches('\r').to_string()).is_err() {
                    break;
                }
            }
        });
        Shell {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to `WAIT`) for a line that satisfies `pred`.
    fn wait_for_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no {what} from the subscriber ({e}); it printed {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Checks the subscriber's output so far plus the next lines against the
    /// walk-through's `subscriber-output` block (the INFO line is cut short there,
    /// digits differ, and the record's `time`, `host` and `fields` are this machine's);
    /// returns the record as printed.
    fn check_output(&mut self, want: &[String]) -> String {
        let [info, pong, msg, record] = want else {
            panic!("{DOC}: the `subscriber-output` block should be INFO, PONG, MSG and the record: {want:#?}");
        };
        self.wait_for_line("the record", |l| l.starts_with('{'));
        let got = &self.seen;
        assert_eq!(got.len(), 4, "the subscriber printed {got:#?}");
        let info_start = info.split('"').next().unwrap_or_default();
        assert!(got[0].starts_with(info_start), "{got:#?} against {want:#?}");
        assert_eq!((&got[1], mask_digits(&got[2])), (pong, mask_digits(msg)));
        let (got_record, want_record): (Value, Value) = (
            serde_json::from_str(&got[3]).expect("the record is JSON"),
            serde_json::from_str(record).expect("the block's record is JSON"),
        );
        for key in ["level", "category", "app", "message"] {
            assert_eq!(got_record[key], want_record[key], "{key} of {got_record}");
        }
        for key in ["time", "host", "fields"] {
            let (got_has, want_has) = (
                got_record.get(key).is_some(),
                want_record.get(key).is_some(),
            );
            assert_eq!(got_has, want_has, "{key} in {got_record}");
        }
        got[3].clone()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this guard started (its leader, `sh`, is
        // our child and not yet reaped, so the id cannot have been reused).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}
