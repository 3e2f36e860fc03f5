//! Operating the server as nats-server operators do, with real processes: starts and
//! restarts that never reset a client, the log file and its reopening (`-l`, SIGUSR1),
//! the protocol trace (`-V`), log formats (`-T`, `--log-format`), the pid file (`-P`),
//! `shardcast signal`, configuration reload (SIGHUP), and the systemd unit.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{client_at, free_fixed_port, Raw, TempDir, WAIT};

/// `shardcast` with `args`, stderr to `stderr_file`, no RUST_LOG (the flags and the
/// configuration decide the level).
fn spawn(args: &[&str], stderr_file: &Path) -> Child {
    let stderr = std::fs::File::create(stderr_file).expect("stderr file");
    Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn shardcast")
}

fn shardcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run shardcast")
}

/// Waits (up to `WAIT`) for a line of the file at `path` that satisfies `pred`. A log file
/// gives no signal to block on, so this polls it (every 10 ms, bounded by the deadline).
fn wait_for_line(path: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| pred(l)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line {what} in {} within {WAIT:?}; it holds:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The address in the "shardcast listening" line of the log at `path`.
fn listening_addr(path: &Path) -> SocketAddr {
    let line = wait_for_line(path, "shardcast listening", |l| {
        l.contains("shardcast listening")
    });
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no addr= in {line:?}"))
}

/// Waits for `child` to exit (up to `WAIT`).
fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit within {WAIT:?}");
        }
        // The child's exit has no other signal here than its reaping; poll it.
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

// --- start and restart without resets ------------------------------------------------

/// How a round ends the server before the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Every round on a new port.
    Fresh,
    /// The same port again, after SIGTERM with a client still connected.
    SigtermWithClient,
    /// The same port again, after SIGINT with no client connected.
    SigintWithout,
}

/// Connects as soon as the port accepts, closes, connects again and expects INFO, as
/// client test harnesses do. Err names what went wrong.
fn probe(addr: SocketAddr) -> Result<TcpStream, String> {
    let deadline = Instant::now() + WAIT;
    loop {
        match TcpStream::connect(addr) {
            Ok(first) => {
                drop(first);
                break;
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused && Instant::now() < deadline => {
                // Not listening yet: the server is starting. Try again.
                std::thread::yield_now();
            }
            Err(e) => return Err(format!("first connect: {e}")),
        }
    }
    let mut c = TcpStream::connect(addr).map_err(|e| format!("second connect: {e}"))?;
    c.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match c.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => return Err(format!("closed after {} bytes, before INFO", line.len())),
            Err(e) => return Err(format!("read after {} bytes: {e}", line.len())),
        }
    }
    if !line.starts_with(b"INFO ") {
        return Err(format!(
            "{:?} instead of INFO",
            String::from_utf8_lossy(&line)
        ));
    }
    Ok(c)
}

fn start_restart_rounds(shards: usize, round: Round, rounds: usize) {
    let dir = TempDir::new("race");
    let log = dir.0.join("server.log");
    let fixed = free_fixed_port();
    let mut failures = Vec::new();
    for r in 0..rounds {
        let port = match round {
            Round::Fresh => free_fixed_port(),
            _ => fixed,
        };
        let port_arg = port.to_string();
        let shards_arg = shards.to_string();
        let args = [
            "serve",
            "-a",
            "127.0.0.1",
            "-p",
            &port_arg,
            "--shards",
            &shards_arg,
        ];
        let mut child = spawn(&args, &log);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let connected = probe(addr);
        if let Some(status) = child.try_wait().expect("wait") {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            failures.push(format!("round {r}: the server exited ({status}): {err}"));
            continue;
        }
        match (round, connected) {
            (Round::SigtermWithClient, Ok(mut client)) => {
                signal(&child, libc::SIGTERM);
                let status = wait_exit(&mut child);
                assert!(status.success(), "round {r}: {status}");
                // The connected client sees its connection closed cleanly, not reset.
                let mut rest = Vec::new();
                if let Err(e) = client.read_to_end(&mut rest) {
                    failures.push(format!("round {r}: the connected client: {e}"));
                }
            }
            (_, connected) => {
                if let Err(e) = &connected {
                    failures.push(format!("round {r}: {e}"));
                }
                drop(connected);
                let sig = if round == Round::SigintWithout {
                    libc::SIGINT
                } else {
                    libc::SIGTERM
                };
                signal(&child, sig);
                let status = wait_exit(&mut child);
                assert!(status.success(), "round {r}: {status}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{shards} shards, {round:?}: {} of {rounds} rounds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_hundred_starts_and_restarts_never_reset_or_refuse_a_client() {
    for shards in [2, 4] {
        for round in [Round::Fresh, Round::SigtermWithClient, Round::SigintWithout] {
            start_restart_rounds(shards, round, 100);
        }
    }
}

// --- logging -----------------------------------------------------------------------------

#[test]
fn the_log_file_is_written_and_reopened_after_logrotate_moves_it() {
    let dir = TempDir::new("logfile");
    let log = dir.0.join("shardcast.log");
    let pid = dir.0.join("shardcast.pid");
    let stderr = dir.0.join("stderr");
    let (log_s, pid_s) = (log.to_str().expect("utf8"), pid.to_str().expect("utf8"));
    let args = [
        "serve",
        "-a",
        "127.0.0.1",
        "-p",
        "0",
        "--shards",
        "2",
        "-l",
        log_s,
        "-P",
        pid_s,
    ];
    let mut child = spawn(&args, &stderr);
    let addr = listening_addr(&log);
    assert_eq!(
        std::fs::read_to_string(&stderr).expect("stderr"),
        "",
        "with -l nothing goes to standard error"
    );
    assert_eq!(
        std::fs::read_to_string(&pid).expect("pid file").trim(),
        child.id().to_string()
    );
    // logrotate: move the file, then tell the server to reopen it.
    let rotated = dir.0.join("shardcast.log.1");
    std::fs::rename(&log, &rotated).expect("rename");
    let out = shardcast(&["signal", "reopen", "--pid", pid_s]);
    assert!(out.status.success(), "{out:?}");
    wait_for_line(&log, "log file reopened", |l| {
        l.contains("log file reopened")
    });
    let mut c = Raw::connect(addr);
    c.read_info();
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());
    let new = std::fs::read_to_string(&log).expect("new log");
    assert!(new.contains("shardcast stopped"), "{new}");
    let old = std::fs::read_to_string(&rotated).expect("rotated log");
    assert!(old.contains("shardcast listening"), "{old}");
    assert!(!old.contains("log file reopened"), "{old}");
    assert!(!pid.exists(), "the pid file is removed at exit");
}

#[test]
fn the_protocol_trace_logs_every_operation_with_payloads_cut() {
    let dir = TempDir::new("trace");
    let cfg = dir.0.join("shardcast.toml");
    std::fs::write(&cfg, "[log]\ntrace_payload_max = \"4B\"\n").expect("config");
    let log = dir.0.join("server.log");
    let args = [
        "serve",
        "-c",
        cfg.to_str().expect("utf8"),
        "-a",
        "127.0.0.1",
        "-p",
        "0",
        "--shards",
        "2",
        "-V",
    ];
    let mut child = spawn(&args, &log);
    let addr = listening_addr(&log);
    let (mut c, _) = Raw::connect_info(addr);
    c.send(b"CONNECT {\"verbose\":false}\r\nSUB t.x 7\r\nPUB t.x 10\r\n0123456789\r\nPING\r\n");
    c.expect(b"MSG t.x 7 10\r\n0123456789\r\nPONG\r\n");
    let traced = |what: &str, dir: &str, op: &str| {
        wait_for_line(&log, what, |l| {
            l.contains("shardcast::trace") && l.contains(dir) && l.contains(op)
        })
    };
    traced("INFO out", "->>", "op=INFO {");
    traced("SUB in", "<<-", "op=SUB t.x 7");
    let publish = traced("PUB in", "<<-", "op=PUB t.x 10");
    assert!(publish.contains("payload=0123… (+6 bytes)"), "{publish}");
    let delivery = traced("MSG out", "->>", "op=MSG t.x 7 10");
    assert!(delivery.contains("payload=0123… (+6 bytes)"), "{delivery}");
    traced("PING in", "<<-", "op=PING");
    traced("PONG out", "->>", "op=PONG");
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());
}

#[test]
fn without_v_nothing_is_traced() {
    let dir = TempDir::new("notrace");
    let log = dir.0.join("server.log");
    let args = ["serve", "-a", "127.0.0.1", "-p", "0", "--shards", "2", "-D"];
    let mut child = spawn(&args, &log);
    let addr = listening_addr(&log);
    let (mut c, _) = Raw::connect_info(addr);
    c.send(b"SUB a 1\r\nPUB a 1\r\nx\r\nPING\r\n");
    c.expect(b"+OK\r\n+OK\r\nMSG a 1 1\r\nx\r\nPONG\r\n");
    drop(c);
    // -D logs the client's close: by then its operations were applied.
    wait_for_line(&log, "client closed (debug)", |l| {
        l.contains("client closed")
    });
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("shardcast::trace"), "{text}");
}

#[test]
fn timestamps_can_be_left_out_and_lines_can_be_json() {
    let dir = TempDir::new("formats");
    let plain = dir.0.join("plain.log");
    let args = [
        "serve",
        "-a",
        "127.0.0.1",
        "-p",
        "0",
        "--shards",
        "1",
        "-T=false",
    ];
    let mut child = spawn(&args, &plain);
    let line = wait_for_line(&plain, "listening", |l| l.contains("shardcast listening"));
    assert!(
        line.starts_with(" INFO") || line.starts_with("INFO"),
        "{line:?}"
    );
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());

    let timed = dir.0.join("timed.log");
    let args = ["serve", "-a", "127.0.0.1", "-p", "0", "--shards", "1"];
    let mut child = spawn(&args, &timed);
    let line = wait_for_line(&timed, "listening", |l| l.contains("shardcast listening"));
    let year = line.get(..4).and_then(|y| y.parse::<u32>().ok());
    assert!(
        year.is_some_and(|y| y >= 2024),
        "a timestamp first: {line:?}"
    );
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());

    let json = dir.0.join("json.log");
    let args = [
        "serve",
        "-a",
        "127.0.0.1",
        "-p",
        "0",
        "--shards",
        "1",
        "--log-format",
        "json",
    ];
    let mut child = spawn(&args, &json);
    let line = wait_for_line(&json, "listening", |l| l.contains("shardcast listening"));
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON object per line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "shardcast listening");
    assert!(v["fields"]["addr"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    assert!(v["timestamp"].is_string());
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());
}

// --- signals and reload ------------------------------------------------------------------

#[test]
fn the_signal_command_finds_its_server_and_explains_what_it_cannot_do() {
    let dir = TempDir::new("signal");
    let pid = dir.0.join("s.pid");
    let log = dir.0.join("server.log");
    let pid_s = pid.to_str().expect("utf8");
    let args = [
        "serve",
        "-a",
        "127.0.0.1",
        "-p",
        "0",
        "--shards",
        "1",
        "-P",
        pid_s,
    ];
    let mut child = spawn(&args, &log);
    listening_addr(&log);
    // By PID: ldm (SIGUSR2) is logged and ignored.
    let out = shardcast(&["signal", "ldm", &child.id().to_string()]);
    assert!(out.status.success(), "{out:?}");
    wait_for_line(&log, "lame duck ignored", |l| l.contains("lame duck"));
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    // Bad pid files are explained.
    let missing = dir.0.join("missing.pid");
    let out = shardcast(&["signal", "reload", "--pid", missing.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read pid file"), "{err}");
    let junk = dir.0.join("junk.pid");
    std::fs::write(&junk, "hello").expect("write");
    let out = shardcast(&["signal", "reload", "--pid", junk.to_str().expect("utf8")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not hold a process id"));
    // quit (SIGINT) through the pid file: a graceful stop.
    let out = shardcast(&["signal", "quit", "--pid", pid_s]);
    assert!(out.status.success(), "{out:?}");
    assert!(wait_exit(&mut child).success());
    assert!(!pid.exists());
}

/// A server with config file `cfg`; its log in `log`.
fn start_with_config(cfg: &Path, log: &Path) -> (Child, SocketAddr) {
    let args = [
        "serve",
        "-c",
        cfg.to_str().expect("utf8"),
        "-a",
        "127.0.0.1",
        "-p",
        "0",
        "--shards",
        "2",
    ];
    let child = spawn(&args, log);
    let addr = listening_addr(log);
    (child, addr)
}

fn reload(child: &Child) {
    let out = shardcast(&["signal", "reload", &child.id().to_string()]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_reload_applies_live_settings_and_names_those_that_need_a_restart() {
    let dir = TempDir::new("reload");
    let cfg = dir.0.join("shardcast.toml");
    std::fs::write(&cfg, "[limits]\nmax_subscriptions = 3\n").expect("config");
    let log = dir.0.join("server.log");
    let (mut child, addr) = start_with_config(&cfg, &log);
    let mut c = client_at(addr);
    c.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n");
    c.expect(b"PONG\r\n");

    // Lower the limit, turn debug on, and change the server name and the rings (which
    // need a restart; the port would too, but the -p flag overrides the file).
    std::fs::write(
        &cfg,
        "server_name = \"renamed\"\n[limits]\nmax_subscriptions = 1\n\
         [ring]\nslots = 128\n[log]\nlevel = \"debug\"\n",
    )
    .expect("config");
    reload(&child);
    let applied = wait_for_line(&log, "configuration reloaded", |l| {
        l.contains("configuration reloaded")
    });
    assert!(applied.contains("limits.max_subscriptions"), "{applied}");
    assert!(applied.contains("log.level"), "{applied}");
    let refused = wait_for_line(&log, "restart needed", |l| {
        l.contains("only take effect at a restart")
    });
    assert!(refused.contains("server_name"), "{refused}");
    assert!(refused.contains("ring.slots"), "{refused}");
    // The new limit holds for a connection that already had subscriptions, and for a new one.
    c.send(b"SUB d 4\r\nPING\r\n");
    c.expect(b"-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
    let mut d = client_at(addr);
    d.send(b"SUB x 1\r\nSUB y 2\r\nPING\r\n");
    d.expect(b"-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
    // Debug logging is on now: a client's close is logged.
    drop(d);
    wait_for_line(&log, "debug line after reload", |l| {
        l.contains("client closed")
    });
    // The name did not change: a new client's INFO still carries the generated one.
    let (_, info) = Raw::connect_info(addr);
    assert_ne!(info["server_name"], "renamed");
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());
}

#[test]
fn a_reload_of_a_bad_file_keeps_the_running_configuration() {
    let dir = TempDir::new("badreload");
    let cfg = dir.0.join("shardcast.toml");
    std::fs::write(&cfg, "[limits]\nmax_subscriptions = 1\n").expect("config");
    let log = dir.0.join("server.log");
    let (mut child, addr) = start_with_config(&cfg, &log);
    for bad in [
        "[limits]\nmax_subscriptions = \"many\"\n",
        "[limits]\nmax_payload = \"2MiB\"\nmax_pending = \"1MiB\"\n",
        "this is not toml\n",
    ] {
        std::fs::write(&cfg, bad).expect("config");
        reload(&child);
        let failed = wait_for_line(&log, "reload failed", |l| l.contains("reload failed"));
        assert!(failed.contains("running configuration stays"), "{failed}");
        // Read the log afresh for the next round: remove what was seen.
        let text = std::fs::read_to_string(&log).expect("log");
        std::fs::write(&log, text.replace("reload failed", "(seen)")).expect("rewrite");
    }
    let mut c = client_at(addr);
    c.send(b"SUB a 1\r\nSUB b 2\r\nPING\r\n");
    c.expect(b"-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());
}

// --- the service unit ----------------------------------------------------------------------

/// `systemd-analyze verify` on the shipped unit, with ExecStart pointing at this build.
fn verify_unit(unit: &str) -> (bool, String) {
    let dir = TempDir::new("unit");
    let path = dir.0.join("shardcast.service");
    std::fs::write(&path, unit).expect("unit");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_systemd_unit_verifies_cleanly() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/shardcast.service"),
    )
    .expect("packaging/shardcast.service");
    let binary: PathBuf = env!("CARGO_BIN_EXE_shardcast").into();
    let unit = unit.replace("/usr/local/bin/shardcast", binary.to_str().expect("utf8"));
    for needed in [
        "Type=notify",
        "ExecReload=",
        "LimitNOFILE=",
        "LimitMEMLOCK=infinity",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(needed), "the unit sets {needed}");
    }
    let (ok, text) = verify_unit(&unit);
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
    // The check itself can fail: a broken directive is reported.
    let (_, text) = verify_unit(&unit.replace("LimitNOFILE=1048576", "LimitNOFILE=lots"));
    assert!(
        text.contains("LimitNOFILE") || text.contains("lots"),
        "{text}"
    );
}

#[test]
fn the_packaged_config_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/shardcast.toml");
    let dir = TempDir::new("pkgcfg");
    let log = dir.0.join("server.log");
    let args = [
        "serve",
        "-c",
        path.to_str().expect("utf8"),
        "-a",
        "127.0.0.1",
        "-p",
        "0",
        "--shards",
        "1",
    ];
    let mut child = spawn(&args, &log);
    listening_addr(&log);
    let text = std::fs::read_to_string(&log).expect("log");
    let first = BufReader::new(text.as_bytes())
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    assert!(
        first.starts_with(" INFO") || first.starts_with("INFO"),
        "time = false: {first:?}"
    );
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child).success());
}

#[test]
fn systemd_is_told_when_the_server_is_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = TempDir::new("notify");
    let socket_path = dir.0.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket.set_read_timeout(Some(WAIT)).expect("timeout");
    let log = dir.0.join("server.log");
    let stderr = std::fs::File::create(&log).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["serve", "-a", "127.0.0.1", "-p", "0", "--shards", "2"])
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn");
    let next = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification within WAIT");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = next();
    assert!(ready.contains("READY=1"), "{ready:?}");
    // READY comes after the listening line: the shards accept by then.
    let addr = listening_addr(&log);
    Raw::connect_info(addr);
    signal(&child, libc::SIGHUP);
    assert!(next().contains("RELOADING=1"));
    assert!(next().contains("READY=1"));
    signal(&child, libc::SIGTERM);
    assert!(next().contains("STOPPING=1"));
    assert!(wait_exit(&mut child).success());
}
