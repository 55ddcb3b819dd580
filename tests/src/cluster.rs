//! [`TestCluster`]: real `quorate-agent` processes on loopback.
//!
//! A cluster lives in a temporary directory:
//!
//! ```text
//! DIR/ca/            ca.pem, ca.key, n1.pem, n1.key, … made by `quorate ca init|issue`
//! DIR/n1.toml        n1's config, in the documented format (NodeConfig::render)
//! DIR/n1/            n1's state_dir
//! DIR/n1.log         n1's stdout and stderr (QUORATE_LOG=info), appended on each start
//! ```
//!
//! Ports come from [`free_port`], unique within the test process. Every child is
//! SIGKILLed when the cluster is dropped, and when the test thread that started it dies
//! (PR_SET_PDEATHSIG), so a crashed or killed test run leaves no agent behind. When the
//! cluster is dropped during a panic (a failed assertion), every node's log is printed.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::{Response, bin, ca_init, ca_issue, http_request, wait_until};

/// The cluster name every test cluster uses (the documented example's).
pub const CLUSTER: &str = "bars";

/// How long [`TestCluster::term`] waits for an agent to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// One node's config file, in exactly the documented format:
///
/// ```toml
/// cluster = "bars"
/// node = "n1"
/// listen = "127.0.0.1:17701"
/// advertise = "127.0.0.1:17701"
/// peers = ["127.0.0.1:17702", "127.0.0.1:17703"]
/// priority = 99
/// state_dir = "/tmp/x/n1"
///
/// [tls]
/// ca = "/tmp/x/ca/ca.pem"
/// cert = "/tmp/x/ca/n1.pem"
/// key = "/tmp/x/ca/n1.key"
///
/// [http]
/// listen = "127.0.0.1:18701"
/// ```
///
/// plus `top_level` (inserted after `state_dir`, for more top-level keys) and `extra`
/// (appended after `[http]`: start it with a table header such as `[timing]`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub cluster: String,
    pub node: String,
    /// QUIC: `listen` and `advertise`.
    pub quic: SocketAddr,
    pub peers: Vec<SocketAddr>,
    pub priority: u32,
    pub state_dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `[http] listen`.
    pub http: SocketAddr,
    pub top_level: String,
    pub extra: String,
}

impl NodeConfig {
    /// The file's text.
    pub fn render(&self) -> String {
        let peers = self
            .peers
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut top = self.top_level.clone();
        if !top.is_empty() && !top.ends_with('\n') {
            top.push('\n');
        }
        let mut extra = self.extra.clone();
        if !extra.is_empty() {
            extra.insert(0, '\n');
            if !extra.ends_with('\n') {
                extra.push('\n');
            }
        }
        format!(
            "cluster = \"{cluster}\"\n\
             node = \"{node}\"\n\
             listen = \"{quic}\"\n\
             advertise = \"{quic}\"\n\
             peers = [{peers}]\n\
             priority = {priority}\n\
             state_dir = \"{state_dir}\"\n\
             {top}\
             \n\
             [tls]\n\
             ca = \"{ca}\"\n\
             cert = \"{cert}\"\n\
             key = \"{key}\"\n\
             \n\
             [http]\n\
             listen = \"{http}\"\n\
             {extra}",
            cluster = self.cluster,
            node = self.node,
            quic = self.quic,
            priority = self.priority,
            state_dir = self.state_dir.display(),
            ca = self.ca.display(),
            cert = self.cert.display(),
            key = self.key.display(),
            http = self.http,
        )
    }
}

/// A loopback port free for both UDP and TCP, never handed out twice in this process.
///
/// Ports are taken from 20000–32767, below Linux's default ephemeral range (so the
/// kernel does not hand them to an outgoing connection meanwhile), starting at an
/// offset derived from the process id so that test binaries running at the same time
/// rarely probe the same ports. Each candidate is checked by binding it.
pub fn free_port() -> u16 {
    const LO: u32 = 20_000;
    const SPAN: u32 = 12_768;
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| AtomicU32::new((std::process::id().wrapping_mul(7_919)) % SPAN));
    for _ in 0..SPAN {
        let port = (LO + next.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        let ip = Ipv4Addr::LOCALHOST;
        let udp = UdpSocket::bind((ip, port));
        let tcp = TcpListener::bind((ip, port));
        if udp.is_ok() && tcp.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in 20000–32767");
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Starts `quorate-agent --config CONFIG` with stdout and stderr appended to `log`
/// (QUORATE_LOG=info unless the test's environment sets it).
///
/// The child is killed when the *thread* that spawned it exits: start agents from the
/// test's own thread, not from a short-lived helper thread.
pub fn spawn_agent(config: &Path, log: &Path) -> Child {
    spawn_agent_with_env(config, log, &[], &[])
}

/// [`spawn_agent`] with extra environment variables, run through `wrap` (a command that
/// ends by running its arguments, such as `unshare … sh -c '…; exec "$@"' sh`) if given.
pub fn spawn_agent_with_env(
    config: &Path,
    log: &Path,
    env: &[(String, String)],
    wrap: &[String],
) -> Child {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let _ = writeln!(file, "==== quorate-agent --config {}", config.display());
    let err = file.try_clone().expect("clone the log file handle");
    let mut cmd = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin("quorate-agent"));
            c
        }
        None => Command::new(bin("quorate-agent")),
    };
    cmd.arg("--config")
        .arg(config)
        .env(
            "QUORATE_LOG",
            std::env::var("QUORATE_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err);
    die_with_parent(&mut cmd);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Asks the kernel to SIGKILL the child when the thread that spawned it exits, so an
/// aborted test run (a timeout, Ctrl-C, a double panic) leaves no agent holding ports.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe, allocates nothing and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `sig` to `pid`.
#[allow(unsafe_code)]
pub fn send_signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child,
    // not yet reaped (the caller holds its `Child`), so it cannot have been reused.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// Builds a [`TestCluster`]: `TestCluster::builder(3).priority(0, 200).start()`.
#[derive(Debug, Clone)]
pub struct TestClusterBuilder {
    n: usize,
    priorities: Vec<u32>,
    top_level: Vec<String>,
    extra: Vec<String>,
    cert_dir: Option<PathBuf>,
}

impl TestClusterBuilder {
    /// Node `i`'s priority (default: n1 = 99, n2 = 98, …).
    pub fn priority(mut self, i: usize, priority: u32) -> Self {
        self.priorities[i] = priority;
        self
    }

    /// More top-level keys for node `i` (`mode = "witness"`).
    pub fn top_level(mut self, i: usize, text: &str) -> Self {
        self.top_level[i].push_str(text);
        self
    }

    /// Text appended to node `i`'s config after `[http]`; start it with a table header.
    pub fn extra(mut self, i: usize, text: &str) -> Self {
        self.extra[i].push_str(text);
        self
    }

    /// [`extra`](Self::extra) for every node.
    pub fn extra_all(mut self, text: &str) -> Self {
        for e in &mut self.extra {
            e.push_str(text);
        }
        self
    }

    /// Take certificates from this directory instead of a fresh CA: `ca.pem` (made with
    /// `quorate ca init` if missing) and `nK.pem`/`nK.key` (issued if missing).
    pub fn cert_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cert_dir = Some(dir.into());
        self
    }

    /// Makes the directory, certificates and configs; starts nothing.
    pub fn build(self) -> TestCluster {
        let dir = tempfile::Builder::new()
            .prefix("quorate-test-")
            .tempdir()
            .expect("a temporary directory");
        let ca_dir = self
            .cert_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("ca"));
        if !ca_dir.join("ca.pem").exists() {
            ca_init(&ca_dir);
        }
        let ids: Vec<String> = (1..=self.n).map(|k| format!("n{k}")).collect();
        for id in &ids {
            if !ca_dir.join(format!("{id}.pem")).exists() {
                ca_issue(&ca_dir, id);
            }
        }
        let quic: Vec<SocketAddr> = (0..self.n).map(|_| loopback(free_port())).collect();
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let config = NodeConfig {
                    cluster: CLUSTER.into(),
                    node: id.clone(),
                    quic: quic[i],
                    peers: quic
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, a)| *a)
                        .collect(),
                    priority: self.priorities[i],
                    state_dir: dir.path().join(id),
                    ca: ca_dir.join("ca.pem"),
                    cert: ca_dir.join(format!("{id}.pem")),
                    key: ca_dir.join(format!("{id}.key")),
                    http: loopback(free_port()),
                    top_level: self.top_level[i].clone(),
                    extra: self.extra[i].clone(),
                };
                Node::new(dir.path(), config)
            })
            .collect();
        TestCluster {
            dir,
            ca_dir,
            members: self.n,
            nodes,
        }
    }

    /// [`build`](Self::build), then start every node.
    pub fn start(self) -> TestCluster {
        let mut c = self.build();
        for i in 0..c.nodes.len() {
            c.start(i);
        }
        c
    }
}

#[derive(Debug)]
struct Node {
    config: NodeConfig,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// How the last child exited, once reaped.
    exited: Option<ExitStatus>,
    /// Extra environment for its process (fault injection).
    env: Vec<(String, String)>,
    /// A command the agent is started through (a mount namespace of its own).
    wrap: Vec<String>,
}

impl Node {
    fn new(dir: &Path, config: NodeConfig) -> Self {
        let config_path = dir.join(format!("{}.toml", config.node));
        fs::write(&config_path, config.render())
            .unwrap_or_else(|e| panic!("{}: {e}", config_path.display()));
        Self {
            log_path: dir.join(format!("{}.log", config.node)),
            config,
            config_path,
            child: None,
            exited: None,
            env: Vec::new(),
            wrap: Vec::new(),
        }
    }
}

/// Real agents on loopback. Nodes are indexed from 0 (`n1` is node 0). See the module
/// documentation for the layout.
#[derive(Debug)]
pub struct TestCluster {
    dir: tempfile::TempDir,
    ca_dir: PathBuf,
    /// Nodes `0..members` are the cluster; later ones were added with
    /// [`add_node`](Self::add_node) and are in nobody's peers.
    members: usize,
    nodes: Vec<Node>,
}

impl TestCluster {
    /// `n` nodes `n1…nN`, each listing the others as peers, all started.
    pub fn new(n: usize) -> Self {
        Self::builder(n).start()
    }

    pub fn builder(n: usize) -> TestClusterBuilder {
        assert!(n >= 1);
        TestClusterBuilder {
            n,
            priorities: (0..n).map(|i| 99 - i as u32).collect(),
            top_level: vec![String::new(); n],
            extra: vec![String::new(); n],
            cert_dir: None,
        }
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where `ca.pem` and the nodes' certificates are.
    pub fn ca_dir(&self) -> &Path {
        &self.ca_dir
    }

    /// Number of cluster members (nodes added with [`add_node`](Self::add_node) not
    /// counted).
    pub fn members(&self) -> usize {
        self.members
    }

    pub fn id(&self, i: usize) -> &str {
        &self.nodes[i].config.node
    }

    pub fn config(&self, i: usize) -> &NodeConfig {
        &self.nodes[i].config
    }

    pub fn config_path(&self, i: usize) -> &Path {
        &self.nodes[i].config_path
    }

    pub fn quic_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].config.quic
    }

    pub fn http_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].config.http
    }

    /// A config for a node `name` outside the cluster: fresh ports, every member as a
    /// peer, a certificate of the cluster CA naming `name` (issued if missing). It is in
    /// nobody's peers. Change what the test needs, then [`add_node`](Self::add_node).
    pub fn outsider(&self, name: &str) -> NodeConfig {
        if !self.ca_dir.join(format!("{name}.pem")).exists() {
            ca_issue(&self.ca_dir, name);
        }
        NodeConfig {
            cluster: CLUSTER.into(),
            node: name.into(),
            quic: loopback(free_port()),
            peers: (0..self.members).map(|i| self.quic_addr(i)).collect(),
            priority: 1,
            state_dir: self.dir().join(name),
            ca: self.ca_dir.join("ca.pem"),
            cert: self.ca_dir.join(format!("{name}.pem")),
            key: self.ca_dir.join(format!("{name}.key")),
            http: loopback(free_port()),
            top_level: String::new(),
            extra: String::new(),
        }
    }

    /// Replaces node `i`'s config (its file and [`config`](Self::config)); a running
    /// agent is not told (restart it, or send SIGHUP). Its name must stay the same: the
    /// log and config file are named after it.
    pub fn set_config(&mut self, i: usize, config: NodeConfig) {
        assert_eq!(
            config.node, self.nodes[i].config.node,
            "a node keeps its name"
        );
        let node = &mut self.nodes[i];
        fs::write(&node.config_path, config.render())
            .unwrap_or_else(|e| panic!("{}: {e}", node.config_path.display()));
        node.config = config;
    }

    /// Writes `config` and adds it as node `len()`, not started. The cluster kills it on
    /// drop and prints its log on failure like any other.
    pub fn add_node(&mut self, config: NodeConfig) -> usize {
        self.nodes.push(Node::new(self.dir.path(), config));
        self.nodes.len() - 1
    }

    /// Sets an environment variable for node `i`'s next starts.
    pub fn set_env(&mut self, i: usize, key: &str, value: &str) {
        self.nodes[i].env.retain(|(k, _)| k != key);
        self.nodes[i].env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts node `i`'s agent through `wrap` from now on (see [`spawn_agent_with_env`]).
    pub fn set_wrapper(&mut self, i: usize, wrap: &[&str]) {
        self.nodes[i].wrap = wrap.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Starts node `i`'s agent.
    ///
    /// # Panics
    ///
    /// If it is already running.
    pub fn start(&mut self, i: usize) {
        assert!(!self.is_running(i), "{} is already running", self.id(i));
        let node = &mut self.nodes[i];
        node.child = Some(spawn_agent_with_env(
            &node.config_path,
            &node.log_path,
            &node.env,
            &node.wrap,
        ));
        node.exited = None;
    }

    /// Whether node `i`'s agent process is running (reaps it if it exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.reap(i);
        self.nodes[i].child.is_some()
    }

    /// How node `i`'s last agent process exited, if it did.
    pub fn exit_status(&mut self, i: usize) -> Option<ExitStatus> {
        self.reap(i);
        self.nodes[i].exited
    }

    fn reap(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(child) = &mut node.child
            && let Ok(Some(status)) = child.try_wait()
        {
            node.exited = Some(status);
            node.child = None;
        }
    }

    /// The process id of node `i`'s running agent.
    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.id(i)))
            .id()
    }

    /// Sends `sig` to node `i`'s running agent.
    pub fn signal(&self, i: usize, sig: libc::c_int) {
        send_signal(self.pid(i), sig);
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("{} is not running", node.config.node));
        let _ = child.kill();
        node.exited = child.wait().ok();
    }

    /// SIGTERMs node `i` and waits (up to 20 s) for it to exit.
    ///
    /// # Panics
    ///
    /// If it does not exit in time.
    pub fn term(&mut self, i: usize) -> ExitStatus {
        self.signal(i, libc::SIGTERM);
        self.wait_exit(i, EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "{} did not exit within {EXIT_TIMEOUT:?} of SIGTERM",
                self.id(i)
            )
        })
    }

    /// Waits up to `timeout` for node `i`'s agent to exit; its exit status if it did.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.exit_status(i);
            status.is_some()
        });
        status
    }

    /// SIGSTOP: the agent freezes, sockets stay open.
    pub fn stop(&self, i: usize) {
        self.signal(i, libc::SIGSTOP);
    }

    /// SIGCONT after [`stop`](Self::stop).
    pub fn cont(&self, i: usize) {
        self.signal(i, libc::SIGCONT);
    }

    /// Runs the operator tool against node `i` over the operator channel, with node
    /// `i`'s own certificate (`quorate ARGS --config CONFIG --connect QUIC-ADDR`).
    pub fn quorate(&self, i: usize, args: &[&str]) -> std::process::Output {
        Command::new(crate::bin("quorate"))
            .args(args)
            .arg("--config")
            .arg(self.config_path(i))
            .arg("--connect")
            .arg(self.quic_addr(i).to_string())
            .output()
            .unwrap_or_else(|e| panic!("cannot run quorate: {e}"))
    }

    /// A client of node `i`'s operator channel with node `i`'s own certificate.
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    pub fn ctl(&self, i: usize) -> quorate_agent::ctl::client::blocking::Client {
        let c = &self.nodes[i].config;
        let tls = quorate_agent::config::TlsPaths {
            ca: c.ca.clone(),
            cert: c.cert.clone(),
            key: c.key.clone(),
        };
        quorate_agent::ctl::client::blocking::Client::connect(c.quic, &tls, None)
            .unwrap_or_else(|e| panic!("operator channel of {}: {e}", c.node))
    }

    /// One HTTP request to node `i`'s HTTP port.
    pub fn http(&self, i: usize, method: &str, path: &str) -> std::io::Result<Response> {
        http_request(self.http_addr(i), method, path)
    }

    /// `GET path` on node `i`.
    ///
    /// # Panics
    ///
    /// If the request fails (the status may be anything).
    pub fn http_get(&self, i: usize, path: &str) -> Response {
        self.http(i, "GET", path)
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.id(i)))
    }

    /// Node `i`'s `/cluster`, if it answers 200 with JSON.
    pub fn try_cluster(&self, i: usize) -> Option<Value> {
        let r = self.http(i, "GET", "/cluster").ok()?;
        if r.status != 200 {
            return None;
        }
        serde_json::from_str(&r.body).ok()
    }

    /// Node `i`'s `/cluster`.
    ///
    /// # Panics
    ///
    /// If it does not answer 200 with JSON.
    pub fn cluster(&self, i: usize) -> Value {
        let r = self.http_get(i, "/cluster");
        assert_eq!(r.status, 200, "GET /cluster on {}: {}", self.id(i), r.body);
        r.json()
    }

    /// The entry for `node` in node `i`'s `/cluster`, if it answers and lists it.
    pub fn member(&self, i: usize, node: &str) -> Option<Value> {
        let c = self.try_cluster(i)?;
        nodes(&c).into_iter().find(|n| n["node"] == node).cloned()
    }

    /// The `state` of `node` in node `i`'s `/cluster`.
    pub fn state_of(&self, i: usize, node: &str) -> Option<String> {
        self.member(i, node)
            .and_then(|m| m["state"].as_str().map(str::to_owned))
    }

    /// Whether node `i` answers `/ready` with 200.
    pub fn is_ready(&self, i: usize) -> bool {
        self.http(i, "GET", "/ready").is_ok_and(|r| r.status == 200)
    }

    /// Whether node `i`'s `/cluster` lists exactly the cluster's members, all `alive`.
    pub fn sees_all_alive(&self, i: usize) -> bool {
        let Some(c) = self.try_cluster(i) else {
            return false;
        };
        let nodes = nodes(&c);
        nodes.len() == self.members
            && (0..self.members).all(|j| {
                nodes
                    .iter()
                    .any(|n| n["node"] == self.id(j) && n["state"] == "alive")
            })
    }

    /// Waits until every member is ready and sees every member alive.
    pub fn wait_converged(&self, timeout: Duration) -> bool {
        wait_until(timeout, || {
            (0..self.members).all(|i| self.is_ready(i) && self.sees_all_alive(i))
        })
    }

    /// Node `i`'s log so far (every start of it).
    pub fn log(&self, i: usize) -> String {
        fs::read(&self.nodes[i].log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Prints every node's config path, exit status and log to stderr.
    pub fn dump(&mut self) {
        let mut out = String::new();
        for i in 0..self.nodes.len() {
            let running = self.is_running(i);
            let node = &self.nodes[i];
            let state = match (running, node.exited) {
                (true, _) => "running".to_owned(),
                (false, Some(s)) => describe_exit(s),
                (false, None) => "never started".to_owned(),
            };
            out.push_str(&format!(
                "===== {} ({}, quic {}, http {}, {}) =====\n{}\n",
                node.config.node,
                node.config_path.display(),
                node.config.quic,
                node.config.http,
                state,
                self.log(i)
            ));
        }
        eprintln!("{out}");
    }
}

/// `exit 0`, `signal 9`…
pub fn describe_exit(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{s}"),
    }
}

/// The `nodes` array of a `/cluster` document (empty if absent).
pub fn nodes(cluster: &Value) -> Vec<&Value> {
    cluster["nodes"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: logs of the cluster in {} follow",
                self.dir().display()
            );
            self.dump();
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
