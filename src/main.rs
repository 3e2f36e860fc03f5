//! `shardcast`: parse the command line and run the command: `serve` (see
//! `shardcast::serve`), `config`, `bench`, `signal`.

use std::process::ExitCode;

use clap::Parser;
use shardcast::cli::{Cli, Command};
use shardcast::config::DEFAULT_TOML;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config => {
            print!("{DEFAULT_TOML}");
            ExitCode::SUCCESS
        }
        Command::Serve(args) => shardcast::serve::serve(&args),
        Command::Bench(args) => bench(&args),
        Command::Signal(args) => signal(&args),
    }
}

fn bench(args: &shardcast::bench::BenchArgs) -> ExitCode {
    if args.scenario == shardcast::bench::Scenario::Logs {
        return bench_logs(args);
    }
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

fn signal(args: &shardcast::signal::SignalArgs) -> ExitCode {
    match shardcast::signal::run(args) {
        Ok(pid) => {
            eprintln!("shardcast signal: sent {:?} to {pid}", args.command);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardcast signal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `shardcast bench logs`: its config (`--print-config`) or a run.
fn bench_logs(args: &shardcast::bench::BenchArgs) -> ExitCode {
    let fail = |e: shardcast::bench::BenchError| {
        eprintln!("shardcast bench: {e}");
        ExitCode::FAILURE
    };
    match shardcast::bench::print_log_config(args) {
        Ok(Some(config)) => {
            print!("{config}");
            return ExitCode::SUCCESS;
        }
        Ok(None) => {}
        Err(e) => return fail(e),
    }
    let report = match shardcast::bench::run_logs(args) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Some(path) = &args.csv {
        if let Err(e) = report.append_csv(path) {
            eprintln!("shardcast bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
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
