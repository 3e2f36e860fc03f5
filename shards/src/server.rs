//! Starting and stopping a server: checks the host can run it (io_uring, locked memory,
//! file descriptors) and says how to fix it if not, resolves the listen address (port 0
//! becomes one real port shared by every shard), places one executor per allowed CPU,
//! waits until every shard is ready, and later stops them all.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement, PoolThreadHandles};

use crate::front::irc::IrcSettings;
use crate::history::HistoryConfig;
use crate::limits::{
    Limits, LimitsError, EXECUTOR_IO_MEMORY_BYTES, SHARDS_MAX, SHARD_START_TIMEOUT,
    SNAPSHOT_TIMEOUT,
};
use crate::metrics::{MetricsConfig, MetricsSnapshot, ShardSnapshot, SnapshotRequest};
use crate::preflight::{self, PreflightError};
use crate::shard::runtime::{self, Control, ShardReport, ShardStart};
use crate::shard::Global;

/// How many shards to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardCount {
    /// One per CPU this process may run on.
    Auto,
    Fixed(usize),
}

/// What the engine needs to start; built by the binary from its configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub shards: ShardCount,
    /// Defaults to the server id.
    pub server_name: Option<String>,
    pub limits: Limits,
    pub metrics: MetricsConfig,
    /// The IRC listener, off when None.
    pub irc: Option<IrcConfig>,
    /// What history keeps (its service runs when IRC is on or patterns are listed).
    pub history: HistoryConfig,
    /// Log routing (its service runs when `logs.enabled`).
    pub logs: crate::logs::LogsConfig,
    /// Who may connect and what each user may touch.
    pub auth: crate::auth::AuthConfig,
    /// TLS on the NATS port, off when None.
    pub tls: Option<crate::conn::tls::TlsFiles>,
    /// The leaf node link to a NATS cluster, off when None.
    pub leaf: Option<crate::leaf::LeafConfig>,
    /// The deployment's other nodes (`host:port`), told to clients in INFO.
    pub connect_urls: Vec<String>,
}

/// Where the IRC listener listens, and how it presents itself.
#[derive(Debug, Clone)]
pub struct IrcConfig {
    pub host: String,
    /// 0 picks a free port (logged at start, and in [`ServerHandle::irc_addr`]).
    pub port: u16,
    pub settings: IrcSettings,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".into(),
            port: 4222,
            shards: ShardCount::Auto,
            server_name: None,
            limits: Limits::default(),
            metrics: MetricsConfig::default(),
            irc: None,
            history: HistoryConfig::default(),
            logs: crate::logs::LogsConfig::default(),
            auth: crate::auth::AuthConfig::default(),
            tls: None,
            leaf: None,
            connect_urls: Vec::new(),
        }
    }
}

/// Why a server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid limits: {0}")]
    Limits(#[from] LimitsError),
    #[error("cannot resolve listen address {addr}: {reason}")]
    Resolve { addr: String, reason: String },
    #[error(
        "address {addr} is already in use: stop the other server or pick another port with -p"
    )]
    AddrInUse { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("shards must be between 1 and {SHARDS_MAX} (got {0})")]
    ShardCount(usize),
    /// The host cannot run io_uring; the message names the cause and the fix.
    #[error(transparent)]
    Preflight(#[from] PreflightError),
    #[error("cannot place shards on CPUs: {0}")]
    Placement(String),
    #[error("a shard failed to start: {0}")]
    ShardFailed(String),
    #[error("shards did not report ready within {0:?}")]
    StartTimeout(Duration),
    #[error("a shard thread panicked or failed: {0}")]
    ShardCrashed(String),
    #[error("invalid auth configuration: {0}")]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error(transparent)]
    Tls(#[from] crate::conn::tls::TlsError),
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    irc_addr: Option<SocketAddr>,
    log_tcp_addr: Option<SocketAddr>,
    syslog_tcp_addr: Option<SocketAddr>,
    syslog_udp_addr: Option<SocketAddr>,
    shards: usize,
    controller: Controller,
    handles: PoolThreadHandles<Option<MetricsSnapshot>>,
}

impl ServerHandle {
    /// The address clients connect to (with the real port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The IRC listener's address, if it is on (with the real port if 0 was asked for).
    pub fn irc_addr(&self) -> Option<SocketAddr> {
        self.irc_addr
    }

    /// The syslog TCP and UDP ports' addresses (real ports), if they are on.
    pub fn syslog_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (self.syslog_tcp_addr, self.syslog_udp_addr)
    }

    /// The log line port's address (the real port when 0 was asked for), if it is on.
    pub fn log_tcp_addr(&self) -> Option<SocketAddr> {
        self.log_tcp_addr
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    /// A handle that stops the shards or reloads their limits; usable from another
    /// thread (signals).
    pub fn controller(&self) -> Controller {
        self.controller.clone()
    }

    /// Waits for every shard to finish and returns the merged metrics.
    pub fn join(self) -> Result<Option<MetricsSnapshot>, ServerError> {
        let mut total: Option<MetricsSnapshot> = None;
        for result in self.handles.join_all() {
            match result {
                Ok(Some(m)) => match total.as_mut() {
                    Some(t) => t.merge(&m),
                    None => total = Some(m),
                },
                Ok(None) => {}
                Err(e) => return Err(ServerError::ShardCrashed(e.to_string())),
            }
        }
        Ok(total)
    }
}

/// Tells a running server's shards what to do: stop, put new limits in force, or report.
#[derive(Clone)]
pub struct Controller {
    /// One channel per shard, by shard id.
    shards: Arc<Vec<flume::Sender<Control>>>,
    /// The limits in force.
    limits: Arc<std::sync::Mutex<Limits>>,
    global: Arc<Global>,
}

/// A shard did not answer a snapshot request in time (stopping, or stuck).
#[derive(Debug, thiserror::Error)]
#[error("shard {shard} did not answer within {timeout:?}")]
pub struct SnapshotError {
    pub shard: usize,
    pub timeout: Duration,
}

/// What the server is, for monitoring: identity, address, start time, limits in force.
#[derive(Debug, Clone)]
pub struct ServerSummary {
    pub server_id: String,
    pub server_name: String,
    pub addr: SocketAddr,
    pub shards: usize,
    pub started: std::time::SystemTime,
    pub limits: Limits,
    pub metrics: MetricsConfig,
}

/// What a reload of the limits did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsReload {
    /// Limits that changed and are now in force (configuration names).
    pub applied: Vec<&'static str>,
    /// Limits that changed but only take effect at a restart; their running values stay.
    pub refused: Vec<&'static str>,
}

impl Controller {
    /// Asks every shard for a snapshot; waits (up to `SNAPSHOT_TIMEOUT` in all) for the
    /// answers, in shard order. Blocking: call it from a thread of its own.
    pub fn snapshot(&self, request: SnapshotRequest) -> Result<Vec<ShardSnapshot>, SnapshotError> {
        let deadline = std::time::Instant::now() + SNAPSHOT_TIMEOUT;
        let replies: Vec<_> = self
            .shards
            .iter()
            .map(|shard| {
                let (tx, rx) = flume::bounded(1);
                let _ = shard.send(Control::Snapshot(request, tx));
                rx
            })
            .collect();
        replies
            .into_iter()
            .enumerate()
            .map(|(shard, rx)| {
                rx.recv_deadline(deadline).map_err(|_| SnapshotError {
                    shard,
                    timeout: SNAPSHOT_TIMEOUT,
                })
            })
            .collect()
    }

    /// Identity, address, start time and the limits in force.
    pub fn summary(&self) -> ServerSummary {
        let g = &self.global;
        ServerSummary {
            server_id: g.server_id.clone(),
            server_name: g.server_name.clone(),
            addr: g.addr,
            shards: g.shards,
            started: g.started,
            limits: self
                .limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            metrics: g.metrics.clone(),
        }
    }

    /// Lame duck mode: every shard stops accepting, tells its NATS clients (INFO with
    /// `ldm: true`), waits `grace`, then closes its clients a few at a time over the rest
    /// of `duration`, and stops.
    pub fn lame_duck(&self, duration: Duration, grace: Duration) {
        for shard in self.shards.iter() {
            let _ = shard.send(Control::LameDuck { duration, grace });
        }
    }

    /// Every shard stops accepting, flushes and closes its clients.
    pub fn stop(&self) {
        for shard in self.shards.iter() {
            let _ = shard.send(Control::Stop);
        }
    }

    /// Puts `new` in force on every shard, except the limits that cannot change while
    /// the server runs (they keep their running values and are reported as refused).
    /// Invalid limits change nothing.
    /// Puts `logs`' routing rules in force on every shard (the caller validated them).
    pub fn reload_log_rules(&self, logs: &crate::logs::LogsConfig) {
        for shard in self.shards.iter() {
            let _ = shard.send(Control::LogRules(Box::new(logs.clone())));
        }
    }

    /// Puts new credentials and permissions in force for connections that authenticate
    /// from now on; those already in keep what they were given. Invalid ones change
    /// nothing.
    pub fn reload_auth(
        &self,
        cfg: &crate::auth::AuthConfig,
    ) -> Result<(), crate::auth::AuthConfigError> {
        let auth = Arc::new(crate::auth::Authenticator::new(cfg)?);
        *self.global.auth.write().unwrap_or_else(|e| e.into_inner()) = auth;
        Ok(())
    }

    pub fn reload(&self, new: &Limits) -> Result<LimitsReload, LimitsError> {
        new.validate()?;
        let mut running = self
            .limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let refused = running.fixed_changes(new);
        let merged = running.with_live_from(new);
        merged.validate()?;
        let applied = running.live_changes(&merged);
        if !applied.is_empty() {
            for shard in self.shards.iter() {
                let _ = shard.send(Control::Reload(Box::new(merged.clone())));
            }
            *running = merged;
        }
        Ok(LimitsReload { applied, refused })
    }
}

/// Starts a server and returns once every shard is accepting.
pub fn start(cfg: ServerConfig) -> Result<ServerHandle, ServerError> {
    cfg.limits.validate()?;
    let auth = crate::auth::Authenticator::new(&cfg.auth)?;
    let tls = cfg
        .tls
        .as_ref()
        .map(crate::conn::tls::TlsSetup::load)
        .transpose()?;
    crate::wire::irc::set_log_colours(cfg.logs.irc_colours);
    preflight::check_io_uring()?;
    preflight::raise_fd_limit();
    let allowed = allowed_cpus();
    let shards = match cfg.shards {
        ShardCount::Auto => allowed.len().max(1),
        ShardCount::Fixed(n) => n,
    };
    if shards == 0 || shards > SHARDS_MAX {
        return Err(ServerError::ShardCount(shards));
    }
    let addr = resolve(&cfg.host, cfg.port)?;
    // Reserves the port for the shards to join (SO_REUSEPORT) until they have bound.
    let (holder, addr) = reserve_bound(addr)?;
    // The IRC port is reserved the same way, so every shard's listener joins one port.
    let irc_holder = match &cfg.irc {
        Some(irc) => {
            let (holder, bound) = reserve_bound(resolve(&irc.host, irc.port)?)?;
            let mut settings = irc.settings.clone();
            let now = time::OffsetDateTime::now_utc();
            settings.created_unix = now.unix_timestamp().max(0) as u64;
            settings.created = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            );
            Some((holder, bound, settings))
        }
        None => None,
    };
    let irc_addr = irc_holder.as_ref().map(|(_, addr, _)| *addr);
    // And the log line port.
    let log_holder = match (cfg.logs.enabled, cfg.logs.tcp_port) {
        (true, Some(port)) => Some(reserve_bound(resolve(&cfg.host, port)?)?),
        _ => None,
    };
    let syslog_tcp_holder = match (cfg.logs.enabled, cfg.logs.syslog_tcp_port) {
        (true, Some(port)) => Some(reserve_bound(resolve(&cfg.host, port)?)?),
        _ => None,
    };
    let syslog_udp_holder = match (cfg.logs.enabled, cfg.logs.syslog_udp_port) {
        (true, Some(port)) => Some(reserve_udp(resolve(&cfg.host, port)?)?),
        _ => None,
    };
    let log_tcp_addr = log_holder.as_ref().map(|(_, addr)| *addr);
    let server_id = make_server_id(addr);
    let global = Arc::new(Global {
        limits: cfg.limits.clone(),
        metrics: cfg.metrics.clone(),
        started: std::time::SystemTime::now(),
        server_name: cfg.server_name.clone().unwrap_or_else(|| server_id.clone()),
        server_id,
        addr,
        shards,
        connections: AtomicUsize::new(0),
        next_cid: AtomicU64::new(1),
        ring_counters: crate::ring::RingCounters::new(shards),
        load: crate::flow::SharedLoad::new(shards),
        history: cfg.history.clone(),
        logs: cfg.logs.clone(),
        log_tcp: log_tcp_addr,
        syslog_tcp: syslog_tcp_holder.as_ref().map(|(_, a)| *a),
        syslog_udp: syslog_udp_holder.as_ref().map(|(_, a)| *a),
        irc: irc_holder
            .as_ref()
            .map(|(_, addr, settings)| (*addr, settings.clone())),
        auth: std::sync::RwLock::new(Arc::new(auth)),
        failures: crate::auth::Failures::default(),
        admission: crate::conn::admission::Admission::default(),
        tls,
        leaf: cfg.leaf.clone(),
        connect_urls: cfg.connect_urls.clone(),
    });
    let placement = placement(shards, &allowed)?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards).map(|_| flume::unbounded()).unzip();
    let start = ShardStart {
        global: Arc::clone(&global),
        mesh: (shards > 1).then(|| MeshBuilder::full(shards, cfg.limits.ring_slots)),
        ready: ready_tx,
        controls: Arc::new(receivers),
    };
    let handles = LocalExecutorPoolBuilder::new(placement)
        .name("shard")
        .spin_before_park(cfg.limits.spin_before_park)
        .io_memory(EXECUTOR_IO_MEMORY_BYTES)
        // glommio clones this closure on the main thread, once per shard. The closure
        // must move `start`, never clone it: MeshBuilder holds a non-atomic Rc behind
        // `unsafe impl Send`, and clones made concurrently in shard threads corrupt it.
        .on_all_shards(move || async move { runtime::run(start).await })
        .map_err(|e| ServerError::Placement(e.to_string()))?;
    wait_ready(&ready_rx, shards)?;
    drop(holder);
    drop(irc_holder);
    drop(log_holder);
    let syslog_tcp_addr = syslog_tcp_holder.map(|(_, a)| a);
    let syslog_udp_addr = syslog_udp_holder.map(|(_, a)| a);
    Ok(ServerHandle {
        syslog_tcp_addr,
        syslog_udp_addr,
        addr,
        irc_addr,
        log_tcp_addr,
        shards,
        controller: Controller {
            shards: Arc::new(senders),
            limits: Arc::new(std::sync::Mutex::new(cfg.limits.clone())),
            global: Arc::clone(&global),
        },
        handles,
    })
}

fn wait_ready(rx: &mpsc::Receiver<ShardReport>, shards: usize) -> Result<(), ServerError> {
    let limit = SHARD_START_TIMEOUT;
    for _ in 0..shards {
        match rx.recv_timeout(limit) {
            Ok(ShardReport::Ready(_)) => {}
            Ok(ShardReport::Failed(why)) => return Err(ServerError::ShardFailed(why)),
            Err(_) => return Err(ServerError::StartTimeout(limit)),
        }
    }
    Ok(())
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, ServerError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| ServerError::Resolve {
            addr: format!("{host}:{port}"),
            reason: e.to_string(),
        })?
        .next()
        .ok_or_else(|| ServerError::Resolve {
            addr: format!("{host}:{port}"),
            reason: "no address found".into(),
        })
}

/// Binds `addr` with SO_REUSEPORT but does not listen: the port is ours (port 0 picks
/// one) and the shards' listeners join it.
///
/// A fixed port is checked first with a socket that binds with SO_REUSEADDR only and
/// never listens: the bind fails if another process listens there (SO_REUSEPORT would
/// otherwise silently share the port with a second copy of the server), and succeeds
/// over the connections a previous server left behind (TIME_WAIT, FIN_WAIT), so a
/// restart on the same port works at once.
/// [`reserve_port`], and the address it got (the real port when 0 was asked for).
fn reserve_bound(addr: SocketAddr) -> Result<(socket2::Socket, SocketAddr), ServerError> {
    let holder = reserve_port(addr)?;
    let bound = bound_addr(&holder, addr)?;
    Ok((holder, bound))
}

/// A UDP port every shard can then bind (SO_REUSEPORT), held until they have; and the
/// address it got.
fn reserve_udp(addr: SocketAddr) -> Result<(socket2::Socket, SocketAddr), ServerError> {
    use socket2::{Domain, Socket, Type};
    let bind_err = |source| ServerError::Bind { addr, source };
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None).map_err(bind_err)?;
    s.set_reuse_port(true).map_err(bind_err)?;
    s.bind(&addr.into()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            ServerError::AddrInUse { addr }
        } else {
            ServerError::Bind { addr, source: e }
        }
    })?;
    let bound = bound_addr(&s, addr)?;
    Ok((s, bound))
}

/// The address `socket`, bound for `addr`, got (the real port when 0 was asked for).
fn bound_addr(socket: &socket2::Socket, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| ServerError::Bind {
            addr,
            source: std::io::Error::other("no local address"),
        })
}

fn reserve_port(addr: SocketAddr) -> Result<socket2::Socket, ServerError> {
    use socket2::{Domain, Socket, Type};
    let bind_err = |source| ServerError::Bind { addr, source };
    if addr.port() != 0 {
        let probe = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_err)?;
        probe.set_reuse_address(true).map_err(bind_err)?;
        match probe.bind(&addr.into()) {
            Ok(()) => drop(probe),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(ServerError::AddrInUse { addr })
            }
            Err(source) => return Err(ServerError::Bind { addr, source }),
        }
    }
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(bind_err)?;
    socket.set_reuse_address(true).map_err(bind_err)?;
    socket.set_reuse_port(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    Ok(socket)
}

/// CPUs this process may run on (affinity mask and cgroup cpuset), read before any
/// thread is pinned.
fn allowed_cpus() -> Vec<usize> {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.into_iter().map(|c| c.id).collect(),
        _ => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}

fn placement(shards: usize, allowed: &[usize]) -> Result<PoolPlacement, ServerError> {
    let allowed_set: HashSet<usize> = allowed.iter().copied().collect();
    let cpus = CpuSet::online()
        .map_err(|e| ServerError::Placement(e.to_string()))?
        .filter(|l| allowed_set.contains(&l.cpu));
    if cpus.is_empty() {
        return Err(ServerError::Placement("no usable CPU found".into()));
    }
    if shards > allowed.len() {
        tracing::warn!(
            shards,
            cpus = allowed.len(),
            "more shards than CPUs: shards will share CPUs (fine for tests, slower in production)"
        );
        Ok(PoolPlacement::Fenced(shards, cpus))
    } else {
        Ok(PoolPlacement::MaxSpread(shards, Some(cpus)))
    }
}

/// A 22-character id, unique per start: hashed from the time, pid and address.
fn make_server_id(addr: SocketAddr) -> String {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut h);
    std::process::id().hash(&mut h);
    addr.hash(&mut h);
    let mut x = h.finish() as u128 | ((h.finish().rotate_left(17) as u128) << 64);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..22)
        .map(|_| {
            let c = ALPHABET[(x % 32) as usize] as char;
            x /= 32;
            c
        })
        .collect()
}
