//! `shardcast signal`: sends a running server the signal for a command, as
//! `nats-server --signal` does: stop (SIGKILL), quit (SIGINT), term (SIGTERM), reopen
//! (SIGUSR1: reopen the log file), reload (SIGHUP: reload the configuration), ldm
//! (SIGUSR2: lame duck mode). The server is named by its PID, by a pid file, or found
//! among running processes when there is exactly one `shardcast serve`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// What to tell the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignalCommand {
    /// Kill it at once (SIGKILL).
    Stop,
    /// Stop gracefully: stop accepting, flush, close clients (SIGINT).
    Quit,
    /// Stop gracefully (SIGTERM).
    Term,
    /// Reopen the log file, e.g. after logrotate moved it (SIGUSR1).
    Reopen,
    /// Reload the configuration file (SIGHUP).
    Reload,
    /// Lame duck mode (SIGUSR2; logged and ignored until lame duck mode exists).
    Ldm,
}

impl SignalCommand {
    pub fn signal(self) -> libc::c_int {
        match self {
            SignalCommand::Stop => libc::SIGKILL,
            SignalCommand::Quit => libc::SIGINT,
            SignalCommand::Term => libc::SIGTERM,
            SignalCommand::Reopen => libc::SIGUSR1,
            SignalCommand::Reload => libc::SIGHUP,
            SignalCommand::Ldm => libc::SIGUSR2,
        }
    }
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The command.
    #[arg(value_enum)]
    pub command: SignalCommand,
    /// The server's process id.
    #[arg(value_name = "PID", conflicts_with = "pid_file")]
    pub pid: Option<i32>,
    /// A pid file the server wrote (`-P`, `pid_file`).
    #[arg(short = 'P', long = "pid", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
}

/// Why no signal was sent.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("cannot read pid file {path}: {source}")]
    PidFile {
        path: String,
        source: std::io::Error,
    },
    #[error("pid file {path} does not hold a process id (it holds {content:?})")]
    BadPidFile { path: String, content: String },
    #[error("no running `shardcast serve` found; give its PID or --pid FILE")]
    NoneRunning,
    #[error(
        "several `shardcast serve` processes are running ({pids}); give one PID or --pid FILE"
    )]
    Several { pids: String },
    #[error("cannot signal process {pid}: {source}")]
    Kill { pid: i32, source: std::io::Error },
}

/// Resolves the target and sends the command's signal; returns the PID signalled.
pub fn run(args: &SignalArgs) -> Result<i32, SignalError> {
    let pid = match (&args.pid, &args.pid_file) {
        (Some(pid), _) => *pid,
        (None, Some(path)) => read_pid_file(path)?,
        (None, None) => find_server()?,
    };
    // SAFETY: kill(2) with a plain pid and signal number has no memory-safety concerns.
    if unsafe { libc::kill(pid, args.command.signal()) } != 0 {
        return Err(SignalError::Kill {
            pid,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(pid)
}

fn read_pid_file(path: &std::path::Path) -> Result<i32, SignalError> {
    let text = std::fs::read_to_string(path).map_err(|source| SignalError::PidFile {
        path: path.display().to_string(),
        source,
    })?;
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| SignalError::BadPidFile {
            path: path.display().to_string(),
            content: text.chars().take(40).collect(),
        })
}

/// The one running `shardcast serve` other than this process, from /proc.
fn find_server() -> Result<i32, SignalError> {
    let me = std::process::id() as i32;
    let mut found: Vec<i32> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&pid| pid != me && is_shardcast_serve(pid))
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    match found.as_slice() {
        [] => Err(SignalError::NoneRunning),
        [pid] => Ok(*pid),
        pids => Err(SignalError::Several {
            pids: pids
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Whether process `pid` runs `shardcast serve` (its argv: a program named shardcast,
/// then `serve`).
fn is_shardcast_serve(pid: i32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut argv = cmdline.split(|&b| b == 0);
    let program = argv.next().unwrap_or_default();
    let named = program
        .rsplit(|&b| b == b'/')
        .next()
        .is_some_and(|name| name == b"shardcast");
    named && argv.next() == Some(b"serve")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_map_to_nats_server_signals() {
        assert_eq!(SignalCommand::Stop.signal(), libc::SIGKILL);
        assert_eq!(SignalCommand::Quit.signal(), libc::SIGINT);
        assert_eq!(SignalCommand::Term.signal(), libc::SIGTERM);
        assert_eq!(SignalCommand::Reopen.signal(), libc::SIGUSR1);
        assert_eq!(SignalCommand::Reload.signal(), libc::SIGHUP);
        assert_eq!(SignalCommand::Ldm.signal(), libc::SIGUSR2);
    }

    #[test]
    fn pid_files_are_checked() {
        let dir = std::env::temp_dir().join(format!("shardcast-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let good = dir.join("good.pid");
        std::fs::write(&good, "4242\n").expect("write");
        assert_eq!(read_pid_file(&good).expect("pid"), 4242);
        let bad = dir.join("bad.pid");
        std::fs::write(&bad, "not a pid").expect("write");
        let e = read_pid_file(&bad).expect_err("bad");
        assert!(e.to_string().contains("does not hold a process id"), "{e}");
        let e = read_pid_file(&dir.join("missing.pid")).expect_err("missing");
        assert!(e.to_string().contains("cannot read pid file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
