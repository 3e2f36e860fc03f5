//! `shardcast serve`: load the configuration, set up logging, start the shards, write
//! the pid file, tell systemd we are ready, then obey signals until told to stop:
//! SIGINT/SIGTERM stop gracefully, SIGUSR1 reopens the log file, SIGHUP reloads the
//! configuration, SIGUSR2 puts the server in lame duck mode (then it stops).

use std::path::PathBuf;
use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::cli::ServeArgs;
use crate::logging::Logger;
use crate::monitor::{Monitor, MonitorError};
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
    // Monitoring listens first, so it reports "starting" while the shards start.
    let monitor = match start_monitor(&cfg) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("shardcast: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match shards::server::start(cfg.server_config()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("shardcast: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(m) = &monitor {
        m.ready(server.controller());
    }
    let monitor = std::sync::Arc::new(monitor);
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
    if let Some(addr) = server.irc_addr() {
        tracing::info!(addr = %addr, "irc listening");
    }
    if let Some(addr) = server.log_tcp_addr() {
        tracing::info!(addr = %addr, "log tcp listening");
    }
    let (syslog_tcp, syslog_udp) = server.syslog_addrs();
    if let Some(addr) = syslog_tcp {
        tracing::info!(addr = %addr, "syslog tcp listening");
    }
    if let Some(addr) = syslog_udp {
        tracing::info!(addr = %addr, "syslog udp listening");
    }
    log_flow(&cfg, server.shards());
    notify_systemd(&[sd_notify::NotifyState::Ready]);

    let controller = server.controller();
    match signals {
        Ok(mut signals) => {
            let args = args.clone();
            let monitor = std::sync::Arc::clone(&monitor);
            std::thread::spawn(move || {
                let mut running = cfg;
                for sig in signals.forever() {
                    match sig {
                        SIGUSR1 => match logger.reopen() {
                            Ok(()) => tracing::info!(signal = sig, "log file reopened"),
                            Err(e) => tracing::error!(signal = sig, "{e}"),
                        },
                        SIGUSR2 => {
                            let (duration, grace) = (
                                running.shutdown.lame_duck_duration.0,
                                running.shutdown.lame_duck_grace_period.0,
                            );
                            tracing::info!(
                                signal = sig,
                                duration = ?duration,
                                grace = ?grace,
                                "entering lame duck mode: not accepting, clients told, then closed gradually"
                            );
                            notify_systemd(&[sd_notify::NotifyState::Stopping]);
                            if let Some(m) = monitor.as_ref() {
                                m.draining();
                            }
                            controller.lame_duck(duration, grace);
                        }
                        SIGHUP => {
                            notify_systemd(&[sd_notify::NotifyState::Reloading]);
                            reload::reload(&args, &mut running, &logger, &controller);
                            if let Some(m) = monitor.as_ref() {
                                m.reloaded();
                            }
                            notify_systemd(&[sd_notify::NotifyState::Ready]);
                        }
                        _ => {
                            tracing::info!(
                                signal = sig,
                                "stopping: closing listeners, flushing clients"
                            );
                            notify_systemd(&[sd_notify::NotifyState::Stopping]);
                            if let Some(m) = monitor.as_ref() {
                                m.draining();
                            }
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
    if let Ok(Some(m)) = std::sync::Arc::try_unwrap(monitor) {
        m.stop();
    }
    code
}

/// Starts the monitoring port when configured, and logs where it listens.
fn start_monitor(cfg: &crate::config::Config) -> Result<Option<Monitor>, MonitorError> {
    let Some(port) = cfg.monitoring.port else {
        return Ok(None);
    };
    let host = if cfg.monitoring.host.is_empty() {
        cfg.host.as_str()
    } else {
        cfg.monitoring.host.as_str()
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| MonitorError::Bind {
            addr: format!("{host}:{port}"),
            source: std::io::Error::other("cannot resolve the address"),
        })?;
    let monitor = Monitor::start(addr)?;
    tracing::info!(addr = %monitor.local_addr(), "monitoring listening");
    Ok(Some(monitor))
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

/// The flow-control settings that shape memory and throughput, once at start.
fn log_flow(cfg: &crate::config::Config, shards: usize) {
    let flow = cfg.server_config().limits.flow;
    let budget = flow.memory.budget_bytes;
    tracing::info!(
        memory_budget = %crate::units::format_size(budget as u64),
        memory_budget_per_shard = %crate::units::format_size((budget / shards.max(1)) as u64),
        memory_budget_source = match cfg.memory.budget {
            crate::config::flow::Budget::Auto => "auto: a quarter of the machine's memory",
            crate::config::flow::Budget::Bytes(_) => "memory.budget",
        },
        slow_consumer_policy = flow.policy.name(),
        rate_limited = !flow.rate_limit.is_unlimited() || !flow.rate_rules.is_empty(),
        "flow control"
    );
}

/// The shutdown line: every counter, summed over the shards.
fn log_totals(m: &shards::metrics::MetricsSnapshot) {
    use shards::metrics::Counter::*;
    let c = &m.counters;
    let (ring, e2e) = (&m.ring_transit_us, &m.latency_us);
    tracing::info!(
        in_msgs = c.get(MsgsIn),
        in_bytes = c.get(BytesIn),
        out_msgs = c.get(MsgsOut),
        out_bytes = c.get(BytesOut),
        forwards = c.get(Forwards),
        ring_batches_out = c.get(RingBatchesOut),
        ring_batches_in = c.get(RingBatchesIn),
        ring_full = c.get(RingFull),
        writes = c.get(Writes),
        queue_misses = c.get(QueueMisses),
        connections_accepted = c.get(ConnsAccepted),
        connections_rejected = c.get(ConnsRejected),
        slow_consumers = c.get(SlowConsumers),
        stale_connections = c.get(StaleConnections),
        protocol_errors = c.get(ProtocolErrors),
        matched_msgs = c.get(MsgsMatched),
        dropped_drop_new = c.get(DroppedDropNew),
        dropped_slow_consumer = c.get(DroppedSlowConsumer),
        dropped_closed = c.get(DroppedClosed),
        slow_consumer_backlog_bytes = c.get(BacklogDroppedBytes),
        throttles = c.get(Throttles),
        throttled_us = c.get(ThrottledUs),
        pushback_waits = c.get(PushbackWaits),
        stalls = c.get(Stalls),
        stalled_us = c.get(StalledUs),
        latency_us_p50 = e2e.value_at_quantile(0.5),
        latency_us_p99 = e2e.value_at_quantile(0.99),
        ring_transit_us_p50 = ring.value_at_quantile(0.5),
        ring_transit_us_p99 = ring.value_at_quantile(0.99),
        "shardcast stopped"
    );
}
