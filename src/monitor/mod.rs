//! HTTP monitoring, as nats-server's `-m PORT`: `/healthz`, `/varz`, `/connz`, `/subsz`
//! (nats-server 2.9's field names), ours `/shardz` and `/channelz`, Prometheus
//! `/metrics`, and a live dashboard at `/`.
//!
//! It runs on a thread of its own (hyper on a current-thread tokio runtime), never on a
//! shard. Shards answer snapshot requests over their control channels
//! (`Controller::snapshot`), so monitoring takes no lock on the message path and a slow
//! HTTP client never slows a shard. Responses are bounded: `/connz` pages hold at most
//! `CONNZ_LIMIT_MAX` connections, `/subsz` at most `SUBSZ_LIMIT_MAX` subscriptions.

mod assets;
mod connz;
mod format;
mod leafz;
mod logs;
mod prom;
mod routes;
mod shardz;
mod varz;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shards::server::Controller;
use tokio::sync::watch;

/// Connections one `/connz` page holds at most.
pub const CONNZ_LIMIT_MAX: usize = 1024;
/// Subscriptions one `/subsz?subs=1` page holds at most.
pub const SUBSZ_LIMIT_MAX: usize = 1024;
/// Concurrent HTTP connections the monitoring port serves; more wait in the backlog.
pub const HTTP_CONNECTIONS_MAX: usize = 64;

/// Why the monitoring port could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot listen for monitoring on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start the monitoring thread: {0}")]
    Thread(std::io::Error),
}

/// What the handlers share: the server (once it runs), whether it is draining, and
/// request counts per path (`http_req_stats` in `/varz`).
pub struct State {
    controller: OnceLock<Controller>,
    draining: AtomicBool,
    requests: Mutex<BTreeMap<String, u64>>,
    /// Where the monitoring port listens (for `/varz` http_host/http_port).
    addr: SocketAddr,
    /// When the configuration was (re)loaded.
    config_load_time: Mutex<SystemTime>,
}

impl State {
    fn count_request(&self, path: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = requests.get_mut(path) {
            *n += 1;
        } else if requests.len() < 64 {
            requests.insert(path.to_string(), 1);
        }
    }
}

/// The running monitoring port.
pub struct Monitor {
    state: Arc<State>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Monitor {
    /// Listens on `addr` (port 0 picks one) and serves until stopped. `/healthz` answers
    /// 503 "starting" until [`Monitor::ready`].
    pub fn start(addr: SocketAddr) -> Result<Monitor, MonitorError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| MonitorError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let bound = listener.local_addr().map_err(|source| MonitorError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| MonitorError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let state = Arc::new(State {
            controller: OnceLock::new(),
            draining: AtomicBool::new(false),
            requests: Mutex::new(BTreeMap::new()),
            addr: bound,
            config_load_time: Mutex::new(SystemTime::now()),
        });
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || serve(listener, shared, stopped))
            .map_err(MonitorError::Thread)?;
        Ok(Monitor {
            state,
            stop,
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// The server runs: answer from its shards from now on.
    pub fn ready(&self, controller: Controller) {
        let _ = self.state.controller.set(controller);
    }

    /// The server is stopping: `/healthz` answers 503 "draining" from now on.
    pub fn draining(&self) {
        self.state.draining.store(true, Ordering::Relaxed);
    }

    /// The configuration was reloaded now.
    pub fn reloaded(&self) {
        *self
            .state
            .config_load_time
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = SystemTime::now();
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The monitoring thread: a current-thread runtime accepting until told to stop.
fn serve(listener: std::net::TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "monitoring: cannot start its runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "monitoring: cannot use its listener");
                return;
            }
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(HTTP_CONNECTIONS_MAX));
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => p,
                _ = stopped.changed() => return,
            };
            let Ok(permit) = permit else { return };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopped.changed() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "monitoring: accept failed");
                    continue;
                }
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = service_fn(move |req| routes::handle(Arc::clone(&state), req));
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "monitoring: connection ended");
                }
                drop(permit);
            });
        }
    });
}
