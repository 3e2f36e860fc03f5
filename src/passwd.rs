//! `shardcast passwd`: reads a password (twice, without echo, at a terminal; once from a
//! pipe) and prints its bcrypt hash for `[[auth.users]] password`, so plain passwords
//! need not be written in the configuration.

use std::io::{BufRead, IsTerminal, Write};

/// Arguments of `shardcast passwd`.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswdArgs {
    /// bcrypt cost (4 to 31): each step doubles the work of checking a password.
    #[arg(long, default_value_t = shards::auth::BCRYPT_COST, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub cost: u32,
}

/// Why no hash was printed.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    #[error("cannot read the password: {0}")]
    Read(#[from] std::io::Error),
    #[error("the password is empty")]
    Empty,
    #[error("the two passwords differ")]
    Mismatch,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Reads the password and returns its hash.
pub fn run(args: &PasswdArgs) -> Result<String, PasswdError> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt("Password: ")?;
        let again = prompt("Reenter password: ")?;
        if first != again {
            return Err(PasswdError::Mismatch);
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        return Err(PasswdError::Empty);
    }
    shards::auth::hash_password(&password, args.cost).map_err(|e| PasswdError::Hash(e.to_string()))
}

/// Asks on standard error and reads a line from the terminal with echo off.
fn prompt(question: &str) -> Result<String, PasswdError> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let _quiet = EchoOff::new();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    eprintln!();
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns the terminal's echo off until dropped.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        // SAFETY: termios is plain data filled in by tcgetattr on fd 0.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd 0 is valid for the process's life; `t` is a valid out pointer.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return EchoOff(None);
        }
        let saved = t;
        t.c_lflag &= !libc::ECHO;
        // SAFETY: as above, with a termios read from the same terminal.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        EchoOff(Some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings read from fd 0 in `new`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, saved) };
        }
    }
}
