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
        Command::Passwd(args) => match shardcast::passwd::run(&args) {
            Ok(hash) => {
                println!("{hash}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shardcast passwd: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn bench(args: &shardcast::bench::BenchArgs) -> ExitCode {
    if args.scenario == shardcast::bench::Scenario::Logs {
        return bench_logs(args);
    }
    match shardcast::bench::run(args) {
        Ok(report) => show(args.json, &report, report.human()),
        Err(e) => bench_failed(e),
    }
}

/// Prints a bench report: one JSON object, or the human summary.
fn show(json: bool, report: &impl serde::Serialize, human: String) -> ExitCode {
    if !json {
        print!("{human}");
        return ExitCode::SUCCESS;
    }
    match serde_json::to_string(report) {
        Ok(j) => {
            println!("{j}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardcast bench: cannot encode the report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Says why a bench failed: exit status 2 for bad usage, 1 otherwise.
fn bench_failed(e: shardcast::bench::BenchError) -> ExitCode {
    eprintln!("shardcast bench: {e}");
    match e {
        shardcast::bench::BenchError::Usage(_) => ExitCode::from(2),
        _ => ExitCode::FAILURE,
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
    match shardcast::bench::print_log_config(args) {
        Ok(Some(config)) => {
            print!("{config}");
            return ExitCode::SUCCESS;
        }
        Ok(None) => {}
        Err(e) => return bench_failed(e),
    }
    let report = match shardcast::bench::run_logs(args) {
        Ok(r) => r,
        Err(e) => return bench_failed(e),
    };
    if let Some(path) = &args.csv {
        if let Err(e) = report.append_csv(path) {
            eprintln!("shardcast bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    show(args.json, &report, report.human())
}
