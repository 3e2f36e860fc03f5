//! Everything one shard owns, in one place: its router, its ring links, its connections,
//! its chunk pool and its metrics. Shard-local (`Rc`/`RefCell`), except `Global`, which
//! holds the few server-wide values every shard reads (and the connection count, touched
//! only on accept and close, never on the publish path).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use rustc_hash::FxHashMap;

use crate::conn::Conn;
use crate::flow::{LoadMeter, MemoryBudget, Pressure, SharedLoad};
use crate::front::irc::{IrcSettings, IrcShard};
use crate::limits::{Limits, SHARDS_MAX};
use crate::metrics::{MetricsConfig, ShardMetrics};
use crate::protocol::info::{ServerInfo, NATS_COMPAT_VERSION};
use crate::ring::{Inbound, RingCounters, RingLinks};
use crate::route::Router;
use crate::writer::{ChunkPool, Congestion, OutboxEnv};

/// Server-wide, shared by all shards.
#[derive(Debug)]
pub struct Global {
    pub limits: Limits,
    pub metrics: MetricsConfig,
    /// When the server started.
    pub started: std::time::SystemTime,
    pub server_id: String,
    pub server_name: String,
    /// The address every shard listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    pub shards: usize,
    /// Open client connections, all shards.
    pub connections: AtomicUsize,
    pub next_cid: AtomicU64,
    /// Batches each shard has put in each ring (see `ring::inbound`).
    pub ring_counters: RingCounters,
    /// Every shard's load figure L (see `flow::load`).
    pub load: SharedLoad,
    /// The IRC listener's address (real port) and settings, when it is on.
    pub irc: Option<(SocketAddr, IrcSettings)>,
    /// What history keeps.
    pub history: crate::history::HistoryConfig,
    /// Log routing.
    pub logs: crate::logs::LogsConfig,
    /// The log line port's address (real port), when it is on.
    pub log_tcp: Option<SocketAddr>,
    /// The syslog ports' addresses (real ports), when they are on.
    pub syslog_tcp: Option<SocketAddr>,
    pub syslog_udp: Option<SocketAddr>,
    /// Who may connect (replaced whole by a reload).
    pub auth: std::sync::RwLock<std::sync::Arc<crate::auth::Authenticator>>,
    /// Failed logins per address.
    pub failures: crate::auth::Failures,
    /// Connections per address and the accept rate.
    pub admission: crate::conn::admission::Admission,
    /// TLS on the NATS port, when configured.
    pub tls: Option<crate::conn::tls::TlsSetup>,
    /// The leaf node link to a NATS cluster, when configured (run by shard 0).
    pub leaf: Option<crate::leaf::LeafConfig>,
    /// The deployment's other nodes, for clients (INFO `connect_urls`).
    pub connect_urls: Vec<String>,
}

impl Global {
    /// The credentials in force now.
    pub fn authenticator(&self) -> std::sync::Arc<crate::auth::Authenticator> {
        let auth = self.auth.read().unwrap_or_else(|e| e.into_inner());
        std::sync::Arc::clone(&auth)
    }
}

/// One shard's state.
pub struct ShardCtx {
    pub id: usize,
    pub global: std::sync::Arc<Global>,
    /// The limits in force; replaced as a whole by a reload (see [`ShardCtx::reload`]).
    limits: RefCell<Limits>,
    pub router: RefCell<Router>,
    /// None when the server runs a single shard.
    pub links: Option<RingLinks>,
    /// The rings into this shard (empty when the server runs a single shard).
    pub inbound: Vec<Rc<Inbound>>,
    pub pool: Rc<ChunkPool>,
    pub conns: RefCell<FxHashMap<u64, Rc<Conn>>>,
    pub metrics: Rc<ShardMetrics>,
    /// Outboxes that became congested this turn; publishers pause for them, boundedly.
    pub congestion: Rc<Congestion>,
    /// The shard's share of `memory.budget`.
    pub memory: Rc<MemoryBudget>,
    /// What every outbox of the shard shares (the four above).
    pub outbox_env: Rc<OutboxEnv>,
    /// This shard's load figure and its last inputs.
    pub load: RefCell<LoadMeter>,
    /// The server's part of the NATS `INFO` every new client gets.
    nats_info: RefCell<Rc<ServerInfo>>,
    /// What the shard's IRC sessions share, when the IRC listener is on.
    pub irc: Option<Rc<IrcShard>>,
    /// What the shard's log inputs share, when log routing is on.
    pub logs: Option<Rc<crate::logs::LogShard>>,
    /// The leaf node link's state, on the shard that runs it.
    pub leaf: RefCell<Option<Rc<crate::leaf::LinkState>>>,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tasks: crate::shard::tasks::Tasks,
    pub stopping: Cell<bool>,
}

impl ShardCtx {
    pub fn new(
        id: usize,
        global: std::sync::Arc<Global>,
        links: Option<RingLinks>,
        inbound: Vec<Rc<Inbound>>,
    ) -> Self {
        let limits = global.limits.clone();
        let metrics = Rc::new(ShardMetrics::new(global.metrics.latency));
        let top_subjects = global.metrics.top_subjects;
        let memory = Rc::new(MemoryBudget::new(
            &limits.flow.memory,
            global.shards,
            limits.connections_max.saturating_add(SHARDS_MAX),
        ));
        let mut router = Router::new(
            id,
            global.shards,
            limits.subscriptions_max,
            top_subjects,
            &limits.flow,
        );
        router.set_accounting(memory.shared_counter());
        if let (0, Some(leaf)) = (id, &global.leaf) {
            let loop_subject = format!("$LDS.{}", global.server_id);
            let watch = crate::route::watch::InterestWatch::new(&loop_subject, &leaf.import);
            router.watch = Some(watch);
        }
        let pool = Rc::new(ChunkPool::new(limits.pool_chunks_max));
        let congestion = Rc::new(Congestion::default());
        let outbox_env = Rc::new(OutboxEnv {
            pool: Rc::clone(&pool),
            congestion: Rc::clone(&congestion),
            metrics: Rc::clone(&metrics),
            memory: Rc::clone(&memory),
        });
        let irc = global.irc.as_ref().map(|(_, settings)| {
            let history = global.history.is_on();
            Rc::new(IrcShard::new(
                settings.clone(),
                id,
                &global.server_id,
                history,
            ))
        });
        let logs = global.logs.enabled.then(|| &global.logs).and_then(|cfg| {
            // The rules were compiled when the configuration was loaded.
            match crate::logs::Rules::compile(&cfg.routes, cfg.all_subject.as_deref()) {
                Ok(rules) => Some(Rc::new(crate::logs::LogShard::new(cfg.clone(), rules))),
                Err(e) => {
                    tracing::error!(shard = id, error = %e, "log routing off");
                    None
                }
            }
        });
        ShardCtx {
            id,
            irc,
            logs,
            leaf: RefCell::new(None),
            router: RefCell::new(router),
            nats_info: RefCell::new(Rc::new(nats_info(&global, &limits))),
            pool,
            load: RefCell::new(LoadMeter::new(limits.flow.load.clone())),
            limits: RefCell::new(limits),
            global,
            links,
            inbound,
            conns: RefCell::new(FxHashMap::default()),
            metrics,
            congestion,
            memory,
            outbox_env,
            tasks: Default::default(),
            stopping: Cell::new(false),
        }
    }

    pub fn shards(&self) -> usize {
        self.global.shards
    }

    /// This shard's load figure now, and the inputs of its last sample.
    pub fn load_now(&self) -> (f64, Pressure) {
        let load = self.load.borrow();
        (load.value(), load.last())
    }

    /// The limits in force now (read them, do not hold the borrow across an await).
    pub fn limits(&self) -> std::cell::Ref<'_, Limits> {
        self.limits.borrow()
    }

    /// The NATS `INFO` template for a new client.
    /// A new client id, unique over the server.
    pub fn next_cid(&self) -> u64 {
        self.global
            .next_cid
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn nats_info(&self) -> Rc<ServerInfo> {
        Rc::clone(&self.nats_info.borrow())
    }

    /// Puts new limits in force (a configuration reload, checked by the server first).
    /// Subscription, connection and keepalive limits apply at once; every open outbox
    /// takes the new `max_pending` and pacing thresholds; the rest (line and payload
    /// sizes, write deadline, batching) apply to connections accepted from now on.
    pub fn reload(&self, limits: Limits) {
        {
            let mut router = self.router.borrow_mut();
            router.set_subscriptions_max(limits.subscriptions_max);
            if limits.flow != self.limits.borrow().flow {
                router.set_flow(&limits.flow);
            }
        }
        self.memory
            .reconfigure(&limits.flow.memory, self.global.shards);
        self.load.borrow_mut().set_config(limits.flow.load.clone());
        *self.nats_info.borrow_mut() = Rc::new(nats_info(&self.global, &limits));
        for conn in self.conns.borrow().values() {
            conn.outbox.set_limits(&limits);
        }
        *self.limits.borrow_mut() = limits;
    }
}

/// The server's part of `INFO`; `client_id` and `client_ip` are filled in per client.
fn nats_info(g: &Global, limits: &Limits) -> ServerInfo {
    ServerInfo {
        server_id: g.server_id.clone(),
        server_name: g.server_name.clone(),
        version: NATS_COMPAT_VERSION.to_string(),
        proto: 1,
        go: concat!("shardcast/", env!("CARGO_PKG_VERSION")).to_string(),
        host: g.addr.ip().to_string(),
        port: g.addr.port(),
        headers: true,
        auth_required: false,
        tls_required: g.tls.is_some(),
        tls_verify: g
            .tls
            .as_ref()
            .is_some_and(|t| t.files.verify || t.files.verify_and_map),
        max_payload: limits.payload_bytes_max,
        client_id: 0,
        client_ip: None,
        connect_urls: g.connect_urls.clone(),
        ldm: false,
    }
}
