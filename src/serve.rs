//! `shardcast serve`: load the configuration, set up logging, start the shards, write
//! the pid file, tell systemd we are ready, then obey signals until told to stop:
//! SIGINT/SIGTERM stop gracefully, SIGUSR1 reopens the log file, SIGHUP reloads the
//! configuration, SIGUSR2 (lame duck mode) is logged and ignored.

use std::path::PathBuf;
use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::cli::ServeArgs;
use crate::logging::Logger;
use crate::reload;

/// Runs the server until a stop signal; the process exit code.
pub fn serve(args: &ServeArgs) -> ExitCode {
    let cfg = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shardcast: {e}");
            return ExitCode::from(2);
        }
    };
    let logger = match Logger::install(&cfg.log) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shardcast: {e}");
            return ExitCode::from(2);
        }
    };
    // A panic in a shard would silently take its clients down with it: stop the process.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        tracing::error!("a shard panicked; exiting");
        std::process::exit(70);
    }));

    // Installed before the shards start, so no signal finds its default action meanwhile.
    let signals = Signals::new([SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP]);
    let server = match shards::server::start(cfg.server_config()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("shardcast: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pid_file = match PidFile::create(&cfg.pid_file) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("shardcast: {e}");
            server.controller().stop();
            let _ = server.join();
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        addr = %server.local_addr(),
        shards = server.shards(),
        version = env!("CARGO_PKG_VERSION"),
        "shardcast listening"
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);

    let controller = server.controller();
    match signals {
        Ok(mut signals) => {
            let args = args.clone();
            std::thread::spawn(move || {
                let mut running = cfg;
                for sig in signals.forever() {
                    match sig {
                        SIGUSR1 => match logger.reopen() {
                            Ok(()) => tracing::info!(signal = sig, "log file reopened"),
                            Err(e) => tracing::error!(signal = sig, "{e}"),
                        },
                        SIGUSR2 => tracing::warn!(
                            signal = sig,
                            "SIGUSR2 (lame duck mode) is not supported yet; ignored"
                        ),
                        SIGHUP => {
                            notify_systemd(&[sd_notify::NotifyState::Reloading]);
                            reload::reload(&args, &mut running, &logger, &controller);
                            notify_systemd(&[sd_notify::NotifyState::Ready]);
                        }
                        _ => {
                            tracing::info!(
                                signal = sig,
                                "stopping: closing listeners, flushing clients"
                            );
                            notify_systemd(&[sd_notify::NotifyState::Stopping]);
                            controller.stop();
                            break;
                        }
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot install signal handlers"),
    }
    let code = match server.join() {
        Ok(metrics) => {
            if let Some(m) = metrics {
                log_totals(&m);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardcast: {e}");
            ExitCode::FAILURE
        }
    };
    drop(pid_file);
    code
}

/// Tells systemd (when it started us with `Type=notify`) what the server is doing.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!(error = %e, "cannot notify systemd");
    }
}

/// The pid file: written at start, removed at exit.
struct PidFile(Option<PathBuf>);

/// The pid file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write pid file {path}: {source}")]
struct PidFileError {
    path: String,
    source: std::io::Error,
}

impl PidFile {
    fn create(path: &str) -> Result<PidFile, PidFileError> {
        if path.is_empty() {
            return Ok(PidFile(None));
        }
        let path = PathBuf::from(path);
        std::fs::write(&path, format!("{}\n", std::process::id())).map_err(|source| {
            PidFileError {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(PidFile(Some(path)))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The shutdown line: every counter, summed over the shards.
fn log_totals(m: &shards::metrics::MetricsSnapshot) {
    let h = &m.ring_transit_us;
    tracing::info!(
        msgs_in = m.msgs_in,
        bytes_in = m.bytes_in,
        deliveries = m.deliveries,
        forwards = m.forwards,
        ring_batches_out = m.ring_batches_out,
        ring_batches_in = m.ring_batches_in,
        queue_misses = m.queue_misses,
        conns_accepted = m.conns_accepted,
        conns_rejected = m.conns_rejected,
        slow_consumers = m.slow_consumers,
        stale_connections = m.stale_connections,
        protocol_errors = m.protocol_errors,
        ring_transit_us_p50 = h.value_at_quantile(0.5),
        ring_transit_us_p99 = h.value_at_quantile(0.99),
        "shardcast stopped"
    );
}
