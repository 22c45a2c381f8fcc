//! Real parts for the cluster tests: `nats-server` processes joined by
//! routes on loopback, and `ringcast-hub` processes (the binary under
//! test) connected to them.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// JetStream tests of one binary share the machine (two at a time on two
/// cores); a heavy one takes it alone, so that its bulk work is not timed
/// against another test's.
static TURNS: RwLock<()> = RwLock::new(());

/// A JetStream test's share of the machine.
enum Turn {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

/// A port free right now (the kernel's choice, released at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn nats_server_path() -> String {
    for path in ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"] {
        if std::path::Path::new(path).exists() {
            return path.into();
        }
    }
    panic!("nats-server is not installed: the test command installs it (apt-get install nats-server)");
}

/// One `nats-server` node: its client, route and monitoring ports.
pub struct NatsNode {
    pub client: u16,
    pub route: u16,
    pub monitor: u16,
    child: Option<Child>,
}

/// Nodes of one NATS cluster, each routed to all the others.
pub struct NatsCluster {
    pub nodes: Vec<NatsNode>,
    /// With JetStream: the folder its nodes store in (removed on drop).
    store: Option<std::path::PathBuf>,
    /// With JetStream: this test's share of the machine, until dropped
    /// (after the nodes are stopped: fields drop in order).
    _turn: Option<Turn>,
}

impl NatsCluster {
    /// Starts `n` nodes and waits until every one has routes to all others.
    pub fn start(n: usize) -> NatsCluster {
        let mut cluster = NatsCluster {
            nodes: (0..n)
                .map(|_| NatsNode { client: free_port(), route: free_port(), monitor: free_port(), child: None })
                .collect(),
            store: None,
            _turn: None,
        };
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster.wait_routes();
        cluster
    }

    /// One node with JetStream on, storing in a fresh temporary folder.
    pub fn jetstream() -> NatsCluster {
        let turn = Turn::Shared(TURNS.read().unwrap_or_else(|e| e.into_inner()));
        Self::jetstream_in(turn)
    }

    /// [`jetstream`](Self::jetstream) for a heavy test: no other JetStream
    /// test of this binary runs meanwhile.
    pub fn jetstream_alone() -> NatsCluster {
        let turn = Turn::Alone(TURNS.write().unwrap_or_else(|e| e.into_inner()));
        Self::jetstream_in(turn)
    }

    fn jetstream_in(turn: Turn) -> NatsCluster {
        let store = std::env::temp_dir().join(format!("ringcast-js-{}-{}", std::process::id(), free_port()));
        let mut cluster = NatsCluster {
            nodes: vec![NatsNode { client: free_port(), route: free_port(), monitor: free_port(), child: None }],
            store: Some(store),
            _turn: Some(turn),
        };
        cluster.start_node(0);
        cluster
    }

    /// One node whose clients connect on `port`.
    pub fn on_port(port: u16) -> NatsCluster {
        let mut cluster = NatsCluster {
            nodes: vec![NatsNode { client: port, route: free_port(), monitor: free_port(), child: None }],
            store: None,
            _turn: None,
        };
        cluster.start_node(0);
        cluster
    }

    /// `nats://127.0.0.1:PORT` of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client)
    }

    /// (Re)starts node `i` on its ports.
    pub fn start_node(&mut self, i: usize) {
        let routes: Vec<String> = (0..self.nodes.len())
            .filter(|&j| j != i)
            .map(|j| format!("nats://127.0.0.1:{}", self.nodes[j].route))
            .collect();
        let node = &self.nodes[i];
        let mut command = Command::new(nats_server_path());
        command
            .args(["-a", "127.0.0.1", "-p", &node.client.to_string(), "-m", &node.monitor.to_string()])
            .args(["-n", &format!("node{i}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A lone JetStream node runs without a cluster (JetStream in a
        // cluster wants routes).
        if self.store.is_none() || self.nodes.len() > 1 {
            let route = format!("nats://127.0.0.1:{}", node.route);
            command.args(["--cluster_name", "ringcast-test", "--cluster", &route]);
        }
        if !routes.is_empty() {
            command.args(["--routes", &routes.join(",")]);
        }
        if let Some(store) = &self.store {
            command.arg("-js").arg("-sd").arg(store.join(format!("node{i}")));
        }
        let child = command.spawn().expect("nats-server starts");
        self.nodes[i].child = Some(child);
        wait_port(self.nodes[i].client);
    }

    /// Kills node `i` (SIGKILL: no goodbye to clients or routes).
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until every running node has a route to every other running
    /// node.
    pub fn wait_routes(&self) {
        let running: Vec<&NatsNode> = self.nodes.iter().filter(|n| n.child.is_some()).collect();
        let until = Instant::now() + Duration::from_secs(20);
        for node in &running {
            loop {
                let body = http_get(node.monitor, "/routez");
                let routes = body
                    .split("\"num_routes\":")
                    .nth(1)
                    .and_then(|rest| rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
                    .unwrap_or(0usize);
                if routes >= running.len() - 1 {
                    break;
                }
                assert!(Instant::now() < until, "NATS routes not up: {body}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill_node(i);
        }
        if let Some(store) = &self.store {
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_get(port: u16, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let _ = std::io::Write::write_all(&mut stream, request.as_bytes());
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

/// A `ringcast-hub` process (the binary under test).
pub struct HubProcess {
    pub addr: SocketAddr,
    child: Child,
}

impl HubProcess {
    /// Starts the hub with these extra flags on a free port and waits for
    /// its banner.
    pub fn start(args: &[&str]) -> HubProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast-hub"))
            .args(["--listen", "127.0.0.1:0", "--shards", "2", "--shutdown-grace", "200ms"])
            .args(args)
            .env("RUST_LOG", "ringcast_hub=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ringcast-hub starts");
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).expect("the hub's banner");
        let addr = first
            .split_whitespace()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in the banner {first:?}"));
        HubProcess { addr, child }
    }

    /// `ws://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// A metric's value (the sum of its samples).
    pub fn metric(&self, name: &str) -> u64 {
        let (_, _, body) = super::http(self.addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Waits until `metric` reads `value`.
    pub fn wait_metric(&self, name: &str, value: u64) {
        let until = Instant::now() + Duration::from_secs(20);
        while self.metric(name) != value {
            assert!(Instant::now() < until, "{name} is {}, expected {value}", self.metric(name));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
