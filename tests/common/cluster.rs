//! A real 3-node nats-server cluster on loopback (routes, a leafnodes port and monitoring
//! on each, all on free ports) for shardcast nodes to hang off as leaf nodes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{free_fixed_port, get_json, NatsServer, Server, TempDir};

/// One member of the hub cluster.
pub struct Hub {
    /// None once killed.
    pub server: Option<NatsServer>,
    pub client: SocketAddr,
    pub leaf_port: u16,
    pub http_port: u16,
    conf: std::path::PathBuf,
}

impl Hub {
    pub fn http(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.http_port).into()
    }

    /// SIGKILLs it (nats-server gets no chance to say goodbye).
    pub fn kill(&mut self) {
        drop(self.server.take());
    }
}

/// Three nats-server processes in one cluster (`sc`), each with a leafnodes port.
pub struct Hubs {
    pub nodes: Vec<Hub>,
    _dir: TempDir,
}

impl Hubs {
    /// Starts the cluster and waits for the full mesh of routes.
    pub fn start() -> Hubs {
        let dir = TempDir::new("hubs");
        let routes: Vec<u16> = (0..3).map(|_| free_fixed_port()).collect();
        let route_urls = routes
            .iter()
            .map(|p| format!("\"nats://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let (leaf_port, http_port) = (free_fixed_port(), free_fixed_port());
            let conf = dir.0.join(format!("hub{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: hub{i}\n\
                     cluster {{ name: sc, listen: \"127.0.0.1:{route}\", routes: [{route_urls}] }}\n\
                     leafnodes {{ listen: \"127.0.0.1:{leaf_port}\" }}\n\
                     http: \"127.0.0.1:{http_port}\"\n"
                ),
            )
            .expect("write hub conf");
            let server = NatsServer::start_with(&["-c", conf.to_str().expect("path")]);
            nodes.push(Hub {
                client: server.addr,
                server: Some(server),
                leaf_port,
                http_port,
                conf,
            });
        }
        let hubs = Hubs { nodes, _dir: dir };
        hubs.wait_for_routes();
        hubs
    }

    /// Waits until every running member routes to every other running one.
    pub fn wait_for_routes(&self) {
        let up: Vec<&Hub> = self.nodes.iter().filter(|h| h.server.is_some()).collect();
        let want = up.len() as u64 - 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        for hub in &up {
            loop {
                if std::net::TcpStream::connect(hub.http()).is_ok() {
                    let routez = get_json(hub.http(), "/routez");
                    if routez["num_routes"].as_u64() == Some(want) {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "the hub cluster never meshed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Restarts member `i` with its configuration (same ports).
    pub fn restart(&mut self, i: usize) {
        let hub = &mut self.nodes[i];
        assert!(hub.server.is_none(), "hub{i} is running");
        let server = NatsServer::start_with(&["-c", hub.conf.to_str().expect("path")]);
        hub.client = server.addr;
        hub.server = Some(server);
    }

    /// `[leafnode]` for a shardcast node named `name` that dials the members in `which`.
    pub fn leaf_toml(&self, name: &str, which: &[usize]) -> String {
        let remotes = which
            .iter()
            .map(|&i| format!("\"nats-leaf://127.0.0.1:{}\"", self.nodes[i].leaf_port))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "[leafnode]\nremotes = [{remotes}]\nname = \"{name}\"\nreconnect_delay = \"100ms\"\n"
        )
    }

    /// How many leaf connections member `i` has now.
    pub fn leafs_on(&self, i: usize) -> u64 {
        get_json(self.nodes[i].http(), "/leafz")["leafnodes"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until the cluster holds `n` leaf connections in all.
    pub fn wait_for_leafs(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let total: u64 = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].server.is_some())
                .map(|i| self.leafs_on(i))
                .sum();
            if total == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{total} leaf connections, not {n}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A shardcast node with 2 shards hanging off `hubs` (dialling the members in `which`).
pub fn node(hubs: &Hubs, name: &str, which: &[usize]) -> Server {
    node_with(hubs, name, which, "")
}

/// `node`, with more configuration (`extra`: TOML sections).
pub fn node_with(hubs: &Hubs, name: &str, which: &[usize], extra: &str) -> Server {
    Server::start_with(
        2,
        &format!(
            "[monitoring]\nport = 0\n{extra}\n{}",
            hubs.leaf_toml(name, which)
        ),
    )
}

/// The IRC address a node logged (it has `[irc] port = 0`).
pub fn irc_addr(server: &Server) -> SocketAddr {
    let line = server.wait_for_log("irc listening", |l| l.contains("irc listening"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no addr in {line}"))
}

/// Subscribes `client` to `subject` and waits until a probe published from `probe` (a
/// client elsewhere in the cluster) reaches it: the interest has crossed. Later probes
/// are drained.
pub async fn subscribe_across(
    client: &async_nats::Client,
    subject: &str,
    probe: &async_nats::Client,
) -> async_nats::Subscriber {
    use futures::{FutureExt, StreamExt};
    let mut sub = client.subscribe(subject.to_string()).await.expect("sub");
    client.flush().await.expect("flush");
    let probe_subject = probe_subject(subject);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        probe
            .publish(probe_subject.clone(), "probe".into())
            .await
            .expect("probe");
        probe.flush().await.expect("flush");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{subject}: interest never crossed the cluster"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Some(Some(_)) = sub.next().now_or_never() {}
    sub
}

/// A literal subject `subject` (which may hold wildcards) matches.
fn probe_subject(subject: &str) -> String {
    subject
        .split('.')
        .map(|t| if t == "*" || t == ">" { "probe" } else { t })
        .collect::<Vec<_>>()
        .join(".")
}

/// Node a for the IRC tests: a node with IRC dialling member 0, and alice in `#lobby`
/// there with `topic` set.
pub fn node_a_with_alice_in_lobby(hubs: &Hubs, topic: &str) -> (Server, super::irc::Irc) {
    let a = node_with(hubs, "node-a", &[0], "[irc]\nport = 0\n");
    hubs.wait_for_leafs(1);
    let mut alice = super::irc::Irc::register(irc_addr(&a), "alice");
    alice.send("JOIN #lobby");
    alice.expect(" 366 alice #lobby ");
    alice.send(&format!("TOPIC #lobby :{topic}"));
    alice.expect(&format!(" TOPIC #lobby :{topic}"));
    (a, alice)
}

/// Polls `/leafz` at `http` until its `irc_nodes` satisfy `done`; returns that `/leafz`.
pub fn wait_for_irc_nodes(
    http: SocketAddr,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let leafz = get_json(http, "/leafz");
        let nodes = leafz["irc_nodes"].as_array().cloned().unwrap_or_default();
        if done(&nodes) {
            return leafz;
        }
        assert!(Instant::now() < deadline, "{what} never in {leafz}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
