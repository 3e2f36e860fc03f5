//! `shardcast bench`: an iperf-style load generator for any NATS-protocol server.
//!
//! The coordinator (this module, on the calling thread) builds a [`plan::Plan`], starts one
//! glommio executor per generator thread with its share of the connections (`roles`), then
//! steps the run through its phases (connect → warm up → measure → drain → stop) while
//! showing progress, and finally turns every connection's stats into a [`report::Report`].

pub mod args;
mod client;
mod irc;
mod irc_line;
pub mod logs;
mod logs_run;
pub mod monitor;
pub mod plan;
pub mod procfs;
pub mod report;
mod roles;
mod shared;
mod stream;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use args::{BenchArgs, Scenario};
pub use logs_run::{print_config as print_log_config, run as run_logs, LogReport};
use plan::{sent_to, share, Plan, Role};
use report::{aggregate, Report, ServerFigures};
use roles::{ClientStats, Kind, RoleCtx};
use shared::{now_ns, ns, Shared, GO, STOP, WARMUP};

/// Latencies up to an hour are recorded (in ns) with 3 significant digits.
const LATENCY_NS_MAX: u64 = 3_600_000_000_000;
/// How long all connections may take to connect and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `sub` waits for the first message.
const FIRST_MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the server's RSS is sampled for its peak while measuring.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);
/// How long `conns` holds its connections by default.
const CONNS_HOLD_DEFAULT: Duration = Duration::from_secs(1);

/// Why a run could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot start the generator: {0}")]
    Start(String),
    #[error("{0}")]
    Run(String),
}

/// Runs the benchmark `args` describes and returns its report (also writing --csv/--hist).
pub fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    args.validate().map_err(BenchError::Usage)?;
    if args.scenario == Scenario::Sub && args.duration.is_some() {
        return Err(BenchError::Usage(
            "sub waits for --msgs messages; --duration is for publishers".into(),
        ));
    }
    let addr = args.host_port().map_err(BenchError::Usage)?;
    args.tls_target().map_err(BenchError::Usage)?;
    shards::preflight::check_io_uring().map_err(|e| BenchError::Start(e.to_string()))?;
    shards::preflight::raise_fd_limit();
    let plan = Plan::new(args);
    check_fd_limit(plan.roles.len())?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256)
        .min(plan.roles.len().max(1));
    let shared = Arc::new(Shared::new(plan.subjects, plan.receivers));
    let base_usage = server_usage(args)?;
    let drops_start = server_drops(args)?;
    let gen_cpu_start = procfs::own_cpu_seconds();

    let workers = spawn_workers(args, &plan, &addr, threads, &shared)?;
    let outcome = coordinate(args, &plan, &shared);
    shared.set_phase(STOP);
    let mut stats = Vec::new();
    let mut hist = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, 3)
        .map_err(|e| BenchError::Start(e.to_string()))?;
    for w in workers {
        match w.join() {
            Ok((s, h)) => {
                stats.extend(s);
                // Same bounds on both sides, so adding cannot fail.
                let _ = hist.add(&h);
            }
            Err(e) => shared.fail(format!("a generator thread failed: {e}")),
        }
    }
    let measured = outcome?;
    if let Some(e) = shared.error() {
        return Err(BenchError::Run(e));
    }
    let drops = match (drops_start, server_drops(args)?) {
        (Some(before), Some(after)) => Some(after.since(&before)),
        _ => None,
    };
    let mut report = build_report(
        args,
        &plan,
        threads,
        &stats,
        &hist,
        &measured,
        base_usage,
        gen_cpu_start,
    );
    report.server_drops = drops;
    if let Some(path) = &args.csv {
        report
            .append_csv(path)
            .map_err(|e| BenchError::Run(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.hist {
        report::write_hist(&hist, path)
            .map_err(|e| BenchError::Run(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(report)
}

/// The open-file limit must cover every connection.
fn check_fd_limit(conns: usize) -> Result<(), BenchError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Ok(());
    }
    let need = conns as u64 + 64;
    if lim.rlim_cur < need {
        return Err(BenchError::Start(format!(
            "{conns} connections need {need} open files but the limit is {}; raise it (`ulimit -n {need}`)",
            lim.rlim_cur
        )));
    }
    Ok(())
}

/// The server's drop counters, when `--monitor` names its monitoring port.
fn server_drops(args: &BenchArgs) -> Result<Option<monitor::ServerDrops>, BenchError> {
    args.monitor
        .as_deref()
        .map(monitor::fetch)
        .transpose()
        .map_err(BenchError::Start)
}

fn server_usage(args: &BenchArgs) -> Result<Option<procfs::Usage>, BenchError> {
    args.server_pid
        .map(procfs::usage)
        .transpose()
        .map_err(BenchError::Usage)
}

type WorkerHandle = glommio::ExecutorJoinHandle<(Vec<ClientStats>, Histogram<u64>)>;

/// One executor per thread, each driving every `threads`-th connection of the plan.
fn spawn_workers(
    args: &BenchArgs,
    plan: &Plan,
    addr: &str,
    threads: usize,
    shared: &Arc<Shared>,
) -> Result<Vec<WorkerHandle>, BenchError> {
    let pubs = args.pubs.max(1) as f64;
    let rate_per_pub = args.rate_total() as f64 / pubs;
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let roles: Vec<Role> = plan
            .roles
            .iter()
            .skip(t)
            .step_by(threads)
            .copied()
            .collect();
        let shared = Arc::clone(shared);
        let (addr, prefix) = (addr.to_string(), args.subject.clone());
        let auth = args.connect_auth();
        let tls = args.tls_target().ok().flatten();
        let irc_target = irc::IrcTarget::new(args);
        let (size, warmup, timeout) = (args.size, args.warmup, args.timeout);
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("bench-{t}"))
            .spawn(move || async move {
                let hist = Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3)
                    .expect("constant histogram bounds are valid");
                let ctx = RoleCtx {
                    shared: Arc::clone(&shared),
                    addr: addr.into(),
                    auth: auth.into(),
                    tls: tls.map(|(config, host)| Rc::new(client::TlsTarget { config, host })),
                    prefix: prefix.into(),
                    size,
                    rate_per_pub,
                    warmup,
                    timeout,
                    hist: Rc::new(RefCell::new(hist)),
                    gate: Rc::new(glommio::sync::Semaphore::new(roles::CONNECTS_IN_FLIGHT)),
                    irc: Rc::new(irc_target),
                    irc_gate: Rc::new(glommio::sync::Semaphore::new(
                        (irc::REGISTRATIONS_IN_FLIGHT / threads).max(1) as u64,
                    )),
                };
                let tasks: Vec<_> = roles
                    .into_iter()
                    .map(|role| {
                        let ctx = ctx.clone();
                        glommio::spawn_local(async move {
                            let shared = Arc::clone(&ctx.shared);
                            match roles::run(role, ctx).await {
                                Ok(s) => Some(s),
                                Err(e) => {
                                    if shared.phase() < STOP {
                                        shared.fail(format!("{}: {e}", role_name(role)));
                                    }
                                    None
                                }
                            }
                        })
                    })
                    .collect();
                let mut stats = Vec::with_capacity(tasks.len());
                for t in tasks {
                    stats.extend(t.await);
                }
                let hist = ctx.hist.borrow().clone();
                (stats, hist)
            })
            .map_err(|e| BenchError::Start(format!("cannot start generator thread {t}: {e}")))?;
        handles.push(handle);
    }
    Ok(handles)
}

fn role_name(role: Role) -> String {
    match role {
        Role::Publisher { index, .. } => format!("publisher {index}"),
        Role::Subscriber { index, .. } => format!("subscriber {index}"),
        Role::Stalled { .. } => "stalled subscriber".into(),
        Role::Requester { index, .. } => format!("requester {index}"),
        Role::Responder => "responder".into(),
        Role::Idle { index } => format!("idle connection {index}"),
        Role::IrcMember { index } => format!("IRC member {index}"),
        Role::IrcPublisher { .. } => "IRC publisher".into(),
    }
}

/// What the coordinator measured itself.
struct Measured {
    expected: u64,
    received: u64,
    started_ns: u64,
    ended_ns: u64,
    server_start: Option<procfs::Usage>,
    server_end: Option<procfs::Usage>,
    /// The server's largest RSS seen while measuring (sampled every few ms).
    server_rss_peak: u64,
}

/// Steps the run through its phases; returns when measuring is over (the caller stops everyone).
fn coordinate(args: &BenchArgs, plan: &Plan, shared: &Shared) -> Result<Measured, BenchError> {
    let progress = Progress::new();
    connect_all(args, plan, shared, &progress)?;
    warm_up(args, plan, shared, &progress)?;
    measure(args, plan, shared, &progress)
}

/// Waits until every connection is open and subscribed.
fn connect_all(
    args: &BenchArgs,
    plan: &Plan,
    shared: &Shared,
    progress: &Progress,
) -> Result<(), BenchError> {
    let total = plan.roles.len();
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while shared.ready.load(Relaxed) < total {
        check(shared)?;
        if Instant::now() > deadline {
            return Err(BenchError::Run(format!(
                "only {} of {total} connections were ready after {CONNECT_TIMEOUT:?}",
                shared.ready.load(Relaxed)
            )));
        }
        progress.show(format!("connecting {}/{total}", shared.ready.load(Relaxed)));
        std::thread::sleep(Duration::from_millis(5));
    }
    if args.scenario == Scenario::Sub {
        // Another process publishes: tell the user (or script) when to start it.
        eprintln!(
            "shardcast bench: {total} subscribers ready on {}.*; waiting for publishers",
            args.subject
        );
    }
    Ok(())
}

/// Lets publishers send marked warm-up messages for `--warmup`, acknowledged by the server.
fn warm_up(
    args: &BenchArgs,
    plan: &Plan,
    shared: &Shared,
    progress: &Progress,
) -> Result<(), BenchError> {
    let publishers = plan
        .roles
        .iter()
        .filter(|r| matches!(r, Role::Publisher { .. }))
        .count();
    if args.warmup.is_zero() || publishers == 0 {
        return Ok(());
    }
    shared.set_phase(WARMUP);
    while shared.warmed.load(Relaxed) < publishers {
        check(shared)?;
        progress.show("warming up".into());
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The measured phase: publishing, then draining until every owed delivery arrived or
/// receivers went quiet for `--timeout`.
fn measure(
    args: &BenchArgs,
    plan: &Plan,
    shared: &Shared,
    progress: &Progress,
) -> Result<Measured, BenchError> {
    let server_start = server_usage(args)?;
    let started_ns = now_ns();
    if let Some(d) = args.duration.filter(|_| args.scenario != Scenario::Conns) {
        shared
            .deadline_ns
            .store(started_ns.saturating_add(ns(d)), Relaxed);
    }
    shared.set_phase(GO);
    if args.scenario == Scenario::Conns {
        std::thread::sleep(args.duration.unwrap_or(CONNS_HOLD_DEFAULT));
        check(shared)?;
        let server_end = server_usage(args)?;
        return Ok(Measured {
            expected: 0,
            received: 0,
            started_ns,
            ended_ns: now_ns(),
            server_start,
            server_end,
            server_rss_peak: server_end.map_or(0, |u| u.rss_bytes),
        });
    }
    let estimate = expected_by_formula(args, plan);
    let mut last_progress = (0u64, Instant::now());
    let mut expected = None;
    let mut rss_peak = 0;
    let mut rss_sampled = Instant::now();
    loop {
        check(shared)?;
        if let Some(pid) = args.server_pid {
            if rss_sampled.elapsed() >= RSS_SAMPLE_INTERVAL {
                rss_sampled = Instant::now();
                rss_peak = rss_peak.max(procfs::rss_bytes(pid).unwrap_or(0));
            }
        }
        let received = shared.received_total();
        let now = Instant::now();
        if received != last_progress.0 {
            last_progress = (received, now);
        }
        let published = shared.published.load(Relaxed);
        // With --duration the total is known only once the publishers stop.
        let owed = expected.or((args.duration.is_none()).then_some(estimate));
        progress.show(match owed {
            Some(owed) => format!("published {published}, received {received}/{owed}"),
            None => format!("published {published}, received {received}"),
        });
        if expected.is_none() && shared.senders_done.load(Relaxed) >= plan.senders {
            expected = Some(final_expected(args, plan, shared));
            last_progress.1 = now; // the drain timeout starts now
        }
        if let Some(e) = expected {
            let idle_max = if args.scenario == Scenario::Sub && received == 0 {
                FIRST_MESSAGE_TIMEOUT
            } else {
                args.timeout
            };
            if received >= e || now.duration_since(last_progress.1) > idle_max {
                let server_end = server_usage(args)?;
                return Ok(Measured {
                    expected: e,
                    received,
                    started_ns,
                    ended_ns: now_ns(),
                    server_start,
                    server_end,
                    server_rss_peak: rss_peak.max(server_end.map_or(0, |u| u.rss_bytes)),
                });
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn check(shared: &Shared) -> Result<(), BenchError> {
    match shared.error() {
        Some(e) => Err(BenchError::Run(e)),
        None => Ok(()),
    }
}

/// The deliveries `--msgs` implies (before anything is sent; `sub` relies on it).
fn expected_by_formula(args: &BenchArgs, plan: &Plan) -> u64 {
    let per_subject = |k: usize| -> u64 {
        (0..args.pubs)
            .map(|p| sent_to(k, p, share(args.msgs, args.pubs, p), plan.subjects))
            .sum()
    };
    match args.scenario {
        Scenario::Pub | Scenario::Conns | Scenario::Logs => 0,
        Scenario::Queue | Scenario::Reqrep => args.msgs,
        Scenario::Sub | Scenario::Pubsub | Scenario::Latency | Scenario::Irc => {
            (0..args.subs).map(|i| per_subject(i % plan.subjects)).sum()
        }
    }
}

/// The deliveries owed once every sender has finished, from what they actually sent.
fn final_expected(args: &BenchArgs, plan: &Plan, shared: &Shared) -> u64 {
    let sent = |k: usize| {
        shared
            .sent_per_subject
            .get(k)
            .map_or(0, |s| s.load(Relaxed))
    };
    match args.scenario {
        Scenario::Pub | Scenario::Conns | Scenario::Logs => 0,
        Scenario::Sub => expected_by_formula(args, plan),
        Scenario::Queue | Scenario::Reqrep => sent(0),
        Scenario::Pubsub | Scenario::Latency | Scenario::Irc => {
            (0..args.subs).map(|i| sent(i % plan.subjects)).sum()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    args: &BenchArgs,
    plan: &Plan,
    threads: usize,
    stats: &[ClientStats],
    hist: &Histogram<u64>,
    m: &Measured,
    base: Option<procfs::Usage>,
    gen_cpu_start: f64,
) -> Report {
    let (published, pub_rate, pub_mb, pub_clients) = aggregate(stats, Kind::Publisher);
    let (received, sub_rate, sub_mb, sub_clients) = aggregate(stats, Kind::Subscriber);
    // Subscribers may count a little after the coordinator's last look; use the final counts.
    let received = received.max(m.received);
    let msgs_published = if args.scenario == Scenario::Reqrep {
        m.expected
    } else {
        published
    };
    let server = match (args.server_pid, m.server_start, m.server_end) {
        (Some(pid), Some(start), Some(end)) => {
            let cpu_s = (end.cpu_s - start.cpu_s).max(0.0);
            let per = if received > 0 {
                Some(cpu_s * 1e6 / received as f64)
            } else if msgs_published > 0 {
                Some(cpu_s * 1e6 / msgs_published as f64)
            } else {
                None
            };
            let per_conn = (args.scenario == Scenario::Conns).then(|| {
                let before = base.map_or(start.rss_bytes, |b| b.rss_bytes);
                end.rss_bytes.saturating_sub(before) as f64 / plan.roles.len().max(1) as f64
            });
            Some(ServerFigures {
                pid,
                cpu_s,
                cpu_us_per_msg: per,
                rss_bytes: end.rss_bytes,
                rss_peak_bytes: m.server_rss_peak,
                rss_per_conn_bytes: per_conn,
            })
        }
        _ => None,
    };
    let url = match (args.scenario, &args.irc_url) {
        (Scenario::Irc, Some(irc)) => format!("irc://{irc} (publisher: {:?})", args.irc_publisher),
        _ => args.url.clone(),
    };
    Report {
        label: args.label.clone(),
        scenario: args.scenario,
        url,
        pubs: args.pubs,
        subs: args.subs,
        stalled: args.stalled,
        subjects: plan.subjects,
        size: args.size,
        threads,
        msgs_published,
        pub_msgs_per_s: pub_rate,
        pub_mb_per_s: pub_mb,
        pub_clients,
        expected: m.expected,
        received,
        lost: m.expected.saturating_sub(received),
        sub_msgs_per_s: sub_rate,
        sub_mb_per_s: sub_mb,
        sub_clients,
        latency: report::latency(hist),
        disconnected: stats.iter().filter(|s| s.lost_connection.is_some()).count(),
        disconnect_reason: stats.iter().find_map(|s| s.lost_connection.clone()),
        server,
        server_drops: None,
        elapsed_s: m.ended_ns.saturating_sub(m.started_ns) as f64 / 1e9,
        gen_cpu_s: procfs::own_cpu_seconds() - gen_cpu_start,
    }
}

/// A progress line on stderr, shown only for runs longer than a second (and only on a terminal).
struct Progress {
    bar: ProgressBar,
    since: Instant,
    shown: std::cell::Cell<bool>,
}

impl Progress {
    fn new() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Progress {
            bar,
            since: Instant::now(),
            shown: std::cell::Cell::new(false),
        }
    }

    fn show(&self, msg: String) {
        if self.since.elapsed() < Duration::from_secs(1) {
            return;
        }
        if !self.shown.replace(true) {
            // Hidden anyway when stderr is not a terminal.
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        self.bar.set_message(msg);
        self.bar.tick();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
