//! A real IRC client for the tests: irssi, driven in tmux on a private socket. It types
//! as a person would and reads the screen (with or without colours).
//!
//! irssi and tmux come from Debian packages that `scripts/test.sh` installs (its NEEDS
//! list); without them the test fails and says so. `SHARDCAST_IRSSI_SCREEN=<file>` makes
//! `save_screen_if_asked` write the screen, with colours, for `scripts/irc_screenshot.sh`.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// How long to wait for something to show on irssi's screen: generous, because irssi
/// starts, registers and runs its join queries at its own pace on a loaded machine.
pub const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// The screen's size: the channel's lines fit, and a picture made from it stays small
/// (`scripts/irc_screenshot.sh` sizes its page to it).
const COLUMNS: &str = "100";
const ROWS: &str = "18";

/// irssi in a tmux session of its own (a private socket and `--home` in a temp dir).
/// Dropping it kills that tmux server, and irssi with it.
pub struct Irssi {
    dir: TempDir,
    /// irssi's process id (the pane runs it directly), killed if still there on drop.
    pid: Option<u32>,
}

impl Irssi {
    /// Starts irssi as `nick` (its user name too) with the real name `real_name`,
    /// connecting to `connect` (`-c`), or to nothing until a `/connect` is typed.
    pub fn start(nick: &str, real_name: &str, connect: Option<SocketAddr>) -> Irssi {
        require("tmux");
        require("irssi");
        let dir = TempDir::new("irssi");
        std::fs::create_dir_all(dir.0.join("home")).expect("irssi home");
        std::fs::write(dir.0.join("home/config"), config(nick, real_name)).expect("irssi config");
        let mut irssi = Irssi { dir, pid: None };
        let home = format!("--home={}", irssi.dir.0.join("home").display());
        #[rustfmt::skip]
        let mut args = vec![
            "-f", "/dev/null", "new-session", "-d", "-s", "irssi", "-x", COLUMNS, "-y", ROWS,
            "env", "TERM=screen-256color", "irssi", &home, "-n", nick,
        ];
        let port = connect.map(|a| a.port().to_string());
        if let Some(port) = &port {
            args.extend(["-c", "127.0.0.1", "-p", port]);
        }
        let started = irssi.tmux(&args);
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
    pub fn type_line(&self, text: &str) {
        let typed = self.tmux(&["send-keys", "-t", "irssi", "-l", text]);
        assert!(typed.status.success(), "send-keys {text:?}: {typed:?}");
        let enter = self.tmux(&["send-keys", "-t", "irssi", "Enter"]);
        assert!(enter.status.success(), "send-keys Enter: {enter:?}");
    }

    /// What the screen shows; with `colours`, with its ANSI escapes.
    pub fn screen(&self, colours: bool) -> String {
        let args: &[&str] = if colours {
            &["capture-pane", "-p", "-e", "-N", "-t", "irssi"]
        } else {
            &["capture-pane", "-p", "-t", "irssi"]
        };
        String::from_utf8_lossy(&self.tmux(args).stdout).into_owned()
    }

    /// Polls the screen until a line satisfies `pred`; returns that line.
    pub fn wait_for_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
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

    /// Waits for the welcome after connecting: any of these lines means 001 came (the
    /// first may have scrolled off already).
    pub fn wait_registered(&self, nick: &str) {
        self.wait_for_line("the welcome (001)", |l| {
            l.contains("Welcome to the shardcast IRC network")
                || l.contains("MOTD File is missing")
                || l.contains(&format!("Mode change [+i] for user {nick}"))
        });
    }

    /// Waits until irssi has exited (its tmux session ends with it).
    pub fn wait_exited(&self) {
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

    /// With `SHARDCAST_IRSSI_SCREEN=<file>`, writes the screen there with its colours
    /// (ANSI escapes), for `scripts/irc_screenshot.sh`.
    pub fn save_screen_if_asked(&self) {
        if let Some(path) = std::env::var_os("SHARDCAST_IRSSI_SCREEN") {
            std::fs::write(&path, self.screen(true))
                .unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
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

/// irssi's configuration: its command queue at 50 ms instead of 2.2 s between commands,
/// and a fixed user name so its mask does not depend on who runs the test.
fn config(nick: &str, real_name: &str) -> String {
    format!(
        r#"settings = {{
  core = {{ user_name = "{nick}"; real_name = "{real_name}"; }};
  "irc/core" = {{ cmd_queue_speed = "50msec"; }};
}};
"#
    )
}

/// Fails, naming `scripts/test.sh`, when `program` is not on PATH.
pub fn require(program: &str) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|dir| dir.join(program).is_file()) {
        panic!(
            "`{program}` is not installed (not on PATH). Run the tests with scripts/test.sh, \
             which installs what they need (its NEEDS list)."
        );
    }
}
