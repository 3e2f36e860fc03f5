//! `shardcast`: parse the command line, load the configuration, start the shards,
//! stop them on SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use shardcast::cli::{Cli, Command, ServeArgs};
use shardcast::config::DEFAULT_TOML;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR2};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config => {
            print!("{DEFAULT_TOML}");
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(&args),
        Command::Bench(args) => bench(&args),
    }
}

fn bench(args: &shardcast::bench::BenchArgs) -> ExitCode {
    match shardcast::bench::run(args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(j) => println!("{j}"),
                    Err(e) => {
                        eprintln!("shardcast bench: cannot encode the report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", report.human());
            }
            ExitCode::SUCCESS
        }
        Err(e @ shardcast::bench::BenchError::Usage(_)) => {
            eprintln!("shardcast bench: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("shardcast bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let cfg = match args.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shardcast: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A panic in a shard would silently take its clients down with it: stop the process.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        tracing::error!("a shard panicked; exiting");
        std::process::exit(70);
    }));

    // Installed before the shards start, so no signal finds its default action meanwhile.
    let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGUSR2]);
    let server = match shards::server::start(cfg.server_config()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("shardcast: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        addr = %server.local_addr(),
        shards = server.shards(),
        version = env!("CARGO_PKG_VERSION"),
        "shardcast listening"
    );
    let stopper = server.stopper();
    match signals {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    if sig == SIGUSR2 {
                        // nats-server's lame-duck signal: not supported yet, and harmless.
                        tracing::warn!(
                            signal = sig,
                            "SIGUSR2 (lame duck mode) is not supported yet; ignored"
                        );
                        continue;
                    }
                    tracing::info!(
                        signal = sig,
                        "stopping: closing listeners, flushing clients"
                    );
                    stopper.stop();
                    break;
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot install signal handlers"),
    }
    match server.join() {
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
