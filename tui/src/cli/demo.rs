//! `quorate demo`: N agents on loopback in a temporary directory with their own CA, and
//! the terminal UI on the first of them until `q` (on a terminal, unless `--no-tui`), or
//! else the status table every second until Ctrl-C (or SIGTERM); then every agent is
//! stopped and the directory removed.
//!
//! The status table is read over the operator channel, like every other command, with
//! the first agent's certificate.
//!
//! `QUORATE_DEMO_SECONDS=S` ends it by itself after about S seconds, for tests.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, IsTerminal as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use proto::NodeId;
use proto::status::ClusterStatus;
use quorate_agent::ca;
use quorate_agent::config::TlsPaths;
use quorate_agent::ctl::client::blocking::Client;
use quorate_agent::ctl::client::{CtlError, Update};

use super::DemoArgs;
use crate::signals;
use crate::table::render_status;

const CLUSTER: &str = "demo";
const AGENT_BIN: &str = "quorate-agent";
const SECONDS_ENV: &str = "QUORATE_DEMO_SECONDS";
/// How long a refresh waits for a snapshot: short, so a hung agent does not stall the
/// view.
const REFRESH_TIMEOUT: Duration = Duration::from_millis(500);
const STEP: Duration = Duration::from_millis(100);
const STEPS_PER_REFRESH: u32 = 10;
/// How long stopped agents get to exit after SIGTERM before SIGKILL.
const GRACE_STEPS: u32 = 60;
const GRACE_STEP: Duration = Duration::from_millis(50);

/// One agent of the demo cluster.
#[derive(Debug, Clone, PartialEq)]
struct NodePlan {
    id: NodeId,
    quic: SocketAddr,
    http: SocketAddr,
    priority: u32,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let limit = demo_seconds()?;
    let agent_bin = agent_binary()?;
    let plan = plan(args.nodes, args.base_port)?;
    signals::install().context("installing the SIGINT/SIGTERM handler")?;

    let dir = tempfile::Builder::new()
        .prefix("quorate-demo-")
        .tempdir()
        .context("creating the demo directory")?;
    let root = dir.path().to_path_buf();
    println!("demo directory: {}", root.display());

    let ca_dir = root.join("ca");
    ca::init(&ca_dir)?;
    for node in &plan {
        ca::issue_node(&ca_dir, &node.id)?;
        let state_dir = root.join(node.id.as_str());
        fs::create_dir(&state_dir).with_context(|| format!("{}", state_dir.display()))?;
        let config = render_config(node, &plan, &root);
        let path = config_path(&root, node);
        fs::write(&path, config).with_context(|| format!("{}", path.display()))?;
    }

    // Declared after `dir`, so dropped (agents stopped) before the directory is removed,
    // also on an early return.
    let mut cluster = Cluster::default();
    for node in &plan {
        cluster.spawn(&agent_bin, &root, node)?;
    }
    let banner = banner(&cluster, &root);
    let terminal = io::stdout().is_terminal();
    if terminal && io::stdin().is_terminal() && !args.no_tui && limit.is_none() {
        let result = live_view(&plan, &root, &banner);
        cluster.shutdown();
        println!("{banner}");
        println!("demo stopped; every agent was shut down");
        let removed = dir.close();
        result?;
        removed.with_context(|| format!("removing {}", root.display()))?;
        return Ok(());
    }
    let mut out = io::stdout();
    if !terminal {
        // Written once; on a terminal it heads every refreshed screen instead.
        let _ = write!(out, "{banner}");
    }

    let reader = Reader {
        tls: tls_of(&root, &plan[0].id),
        client: None,
    };
    let result = watch(&mut cluster, reader, &banner, terminal, limit);
    cluster.shutdown();
    let removed = dir.close();
    result?;
    removed.with_context(|| format!("removing {}", root.display()))?;
    Ok(())
}

/// Prints how to break the cluster, then opens the terminal UI on the first agent until
/// the operator quits.
fn live_view(plan: &[NodePlan], root: &Path, banner: &str) -> anyhow::Result<()> {
    let Some(first) = plan.first() else {
        bail!("the demo has no agents");
    };
    print!("{banner}");
    println!(
        "\nopening the live view in 3 s: kill a node from another terminal and watch it; q quits and stops the demo"
    );
    let _ = io::stdout().flush();
    for _ in 0..30 {
        if signals::stop_requested() {
            return Ok(());
        }
        std::thread::sleep(STEP);
    }
    let target = crate::target::Target {
        addr: first.quic,
        bind: None,
        tls: tls_of(root, &first.id),
        origin: format!("the demo's {}", first.id),
    };
    crate::ui::run::run(&target)
}

/// Refreshes the table every second until a signal, the time limit, or every agent
/// having exited (an error: their logs' last lines are printed first).
fn watch(
    cluster: &mut Cluster,
    mut reader: Reader,
    banner: &str,
    terminal: bool,
    limit: Option<Duration>,
) -> anyhow::Result<()> {
    let mut out = io::stdout();
    let mut elapsed = Duration::ZERO;
    loop {
        if signals::stop_requested() {
            return Ok(());
        }
        cluster.reap();
        if cluster.agents.iter().all(|a| a.exited.is_some()) {
            let mut msg = String::new();
            for agent in &cluster.agents {
                let status = agent.exited.map(|s| s.to_string()).unwrap_or_default();
                let _ = writeln!(msg, "{} exited ({status}); its log ended:", agent.plan.id);
                for line in tail(&agent.log, 10) {
                    let _ = writeln!(msg, "    {line}");
                }
            }
            bail!("every agent has exited:\n{}", msg.trim_end());
        }

        let mut frame = String::new();
        if terminal {
            frame.push_str("\x1b[H\x1b[2J");
            frame.push_str(banner);
            frame.push('\n');
        }
        frame.push_str(&cluster.status_text(&mut reader));
        if !terminal {
            frame.push('\n');
        }
        // A closed stdout (`quorate demo | head`) ends the demo cleanly.
        if out
            .write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }

        for _ in 0..STEPS_PER_REFRESH {
            if signals::stop_requested() {
                return Ok(());
            }
            std::thread::sleep(STEP);
            elapsed += STEP;
        }
        if limit.is_some_and(|limit| elapsed >= limit) {
            return Ok(());
        }
    }
}

fn demo_seconds() -> anyhow::Result<Option<Duration>> {
    match std::env::var(SECONDS_ENV) {
        Ok(s) => {
            let secs: u64 = s
                .trim()
                .parse()
                .with_context(|| format!("{SECONDS_ENV}={s:?} is not a number of seconds"))?;
            Ok(Some(Duration::from_secs(secs)))
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(e).context(SECONDS_ENV),
    }
}

/// `quorate-agent`, next to this executable.
fn agent_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let path = exe
        .parent()
        .map(|dir| dir.join(AGENT_BIN))
        .with_context(|| format!("{} has no parent directory", exe.display()))?;
    if !path.is_file() {
        bail!(
            "{} not found (the demo runs the agent binary next to `quorate`); \
             run `cargo build --workspace --bins` first",
            path.display()
        );
    }
    Ok(path)
}

/// Node ids, ports and priorities: n1 has the highest priority.
fn plan(nodes: u8, base_port: Option<u16>) -> anyhow::Result<Vec<NodePlan>> {
    let n = u16::from(nodes);
    let (quic, http): (Vec<u16>, Vec<u16>) = match base_port {
        Some(p) => {
            if u32::from(p) + 1000 + u32::from(n) > u32::from(u16::MAX) {
                bail!("--base-port {p} is too high for {n} nodes (HTTP ports go up to P+1000+N)");
            }
            (
                (1..=n).map(|i| p + i).collect(),
                (1..=n).map(|i| p + 1000 + i).collect(),
            )
        }
        None => free_ports(usize::from(n))?,
    };
    let localhost = |port| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    (1..=nodes)
        .zip(quic.into_iter().zip(http))
        .map(|(i, (q, h))| {
            Ok(NodePlan {
                id: NodeId::new(format!("n{i}"))?,
                quic: localhost(q),
                http: localhost(h),
                priority: 110 - 10 * u32::from(i),
            })
        })
        .collect()
}

/// `n` free UDP ports (QUIC) and `n` free TCP ports (HTTP) on 127.0.0.1. All sockets are
/// held until every port is chosen, so no port is handed out twice.
fn free_ports(n: usize) -> anyhow::Result<(Vec<u16>, Vec<u16>)> {
    let any = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0);
    let udp = (0..n)
        .map(|_| UdpSocket::bind(any))
        .collect::<io::Result<Vec<_>>>()
        .context("finding free UDP ports on 127.0.0.1")?;
    let tcp = (0..n)
        .map(|_| TcpListener::bind(any))
        .collect::<io::Result<Vec<_>>>()
        .context("finding free TCP ports on 127.0.0.1")?;
    let udp_ports = udp
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<io::Result<Vec<_>>>()?;
    let tcp_ports = tcp
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<io::Result<Vec<_>>>()?;
    Ok((udp_ports, tcp_ports))
}

/// The CA, certificate and key of node `id`, as the demo's CA issued them.
fn tls_of(root: &Path, id: &NodeId) -> TlsPaths {
    let ca_dir = root.join("ca");
    TlsPaths {
        ca: ca_dir.join(ca::CA_CERT_FILE),
        cert: ca_dir.join(format!("{id}.pem")),
        key: ca_dir.join(format!("{id}.key")),
    }
}

fn config_path(root: &Path, node: &NodePlan) -> PathBuf {
    root.join(format!("{}.toml", node.id))
}

/// The agent config of `node` in a cluster of `all`, files under `root`.
fn render_config(node: &NodePlan, all: &[NodePlan], root: &Path) -> String {
    let ca_dir = root.join("ca");
    let path = |p: PathBuf| toml_string(&p.to_string_lossy());
    let peers: Vec<String> = all
        .iter()
        .filter(|p| p.id != node.id)
        .map(|p| toml_string(&p.quic.to_string()))
        .collect();
    format!(
        "cluster = {cluster}\n\
         node = {id}\n\
         listen = {quic}\n\
         advertise = {quic}\n\
         peers = [{peers}]\n\
         priority = {priority}\n\
         state_dir = {state}\n\
         \n\
         [tls]\n\
         ca = {ca}\n\
         cert = {cert}\n\
         key = {key}\n\
         \n\
         [http]\n\
         listen = {http}\n",
        cluster = toml_string(CLUSTER),
        id = toml_string(node.id.as_str()),
        quic = toml_string(&node.quic.to_string()),
        peers = peers.join(", "),
        priority = node.priority,
        state = path(root.join(node.id.as_str())),
        ca = path(ca_dir.join(ca::CA_CERT_FILE)),
        cert = path(ca_dir.join(format!("{}.pem", node.id))),
        key = path(ca_dir.join(format!("{}.key", node.id))),
        http = toml_string(&node.http.to_string()),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The last `n` lines of a log file (nothing if it cannot be read).
fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

struct Agent {
    plan: NodePlan,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Agent {
    fn exit_line(&self) -> String {
        match &self.exited {
            Some(status) => format!(
                "{} (pid {}) exited: {status}; log {}",
                self.plan.id,
                self.child.id(),
                self.log.display()
            ),
            None => format!("{} (pid {}) running", self.plan.id, self.child.id()),
        }
    }
}

/// The running agents. Dropping it stops them.
#[derive(Default)]
struct Cluster {
    agents: Vec<Agent>,
}

impl Cluster {
    fn spawn(&mut self, agent_bin: &Path, root: &Path, node: &NodePlan) -> anyhow::Result<()> {
        let log = root.join(format!("{}.log", node.id));
        let stdout = File::create(&log).with_context(|| format!("{}", log.display()))?;
        let stderr = stdout
            .try_clone()
            .with_context(|| format!("{}", log.display()))?;
        let child = Command::new(agent_bin)
            .arg("--config")
            .arg(config_path(root, node))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: Ctrl-C reaches only the demo, which stops the
            // agents itself (and the operator can still `kill -9` one).
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", agent_bin.display()))?;
        self.agents.push(Agent {
            plan: node.clone(),
            child,
            log,
            exited: None,
        });
        Ok(())
    }

    /// Records which agents have exited.
    fn reap(&mut self) {
        for agent in self.agents.iter_mut().filter(|a| a.exited.is_none()) {
            if let Ok(Some(status)) = agent.child.try_wait() {
                agent.exited = Some(status);
            }
        }
    }

    /// The table of the first agent that answers, then a line per exited agent.
    fn status_text(&self, reader: &mut Reader) -> String {
        let running: Vec<SocketAddr> = self
            .agents
            .iter()
            .filter(|a| a.exited.is_none())
            .map(|a| a.plan.quic)
            .collect();
        let mut text = reader
            .status(&running)
            .map(|status| render_status(&status))
            .unwrap_or_else(|| "no agent answers yet\n".to_string());
        for agent in self.agents.iter().filter(|a| a.exited.is_some()) {
            let _ = writeln!(text, "{}", agent.exit_line());
        }
        text
    }

    /// SIGTERM to every agent still running, up to 3 s for them to exit, then SIGKILL.
    fn shutdown(&mut self) {
        self.reap();
        for agent in self.agents.iter().filter(|a| a.exited.is_none()) {
            let _ = signals::terminate(agent.child.id());
        }
        for _ in 0..GRACE_STEPS {
            self.reap();
            if self.agents.iter().all(|a| a.exited.is_some()) {
                return;
            }
            std::thread::sleep(GRACE_STEP);
        }
        for agent in self.agents.iter_mut().filter(|a| a.exited.is_none()) {
            let _ = agent.child.kill();
            if let Ok(status) = agent.child.wait() {
                agent.exited = Some(status);
            }
        }
    }
}

/// The operator channel to one running agent: kept while it answers, else the next
/// running agent is asked.
struct Reader {
    tls: TlsPaths,
    client: Option<Client>,
}

impl Reader {
    /// The view of the agent connected to, if it still runs and answers, else of the
    /// first of `running` that does.
    fn status(&mut self, running: &[SocketAddr]) -> Option<ClusterStatus> {
        if let Some(client) = self.client.take()
            && running.contains(&client.addr())
            && let Ok(status) = snapshot(&client)
        {
            self.client = Some(client);
            return Some(status);
        }
        for addr in running {
            let Ok(client) = Client::connect(*addr, &self.tls, None) else {
                continue;
            };
            if let Ok(status) = snapshot(&client) {
                self.client = Some(client);
                return Some(status);
            }
        }
        None
    }
}

/// The first snapshot of a subscription, waited for at most [`REFRESH_TIMEOUT`].
fn snapshot(client: &Client) -> Result<ClusterStatus, CtlError> {
    match client.subscribe()?.next(REFRESH_TIMEOUT)? {
        Some(Update::Snapshot(s)) => Ok(s.status),
        _ => Err(CtlError::Unexpected {
            addr: client.addr(),
            what: "no snapshot first".into(),
        }),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn banner(cluster: &Cluster, root: &Path) -> String {
    let mut b = format!(
        "quorate demo: {} agent{} of cluster {CLUSTER:?} in {} (removed on exit)\n",
        cluster.agents.len(),
        if cluster.agents.len() == 1 { "" } else { "s" },
        root.display()
    );
    let pid_width = cluster
        .agents
        .iter()
        .map(|a| a.child.id().to_string().len())
        .max()
        .unwrap_or(0);
    for a in &cluster.agents {
        let _ = writeln!(
            b,
            "  {}  pid {:<pid_width$}  http {}  quic {}  priority {}",
            a.plan.id,
            a.child.id(),
            a.plan.http,
            a.plan.quic,
            a.plan.priority,
        );
    }
    if let Some(first) = cluster.agents.first() {
        let (pid, http) = (first.child.id(), first.plan.http);
        let _ = write!(
            b,
            "kill a node:  kill -9 {pid}\n\
             watch:        curl -s {http}/cluster\n\
             \x20             quorate status --config {}\n\
             \x20             quorate events --follow --config {}\n\
             logs:         {}/n*.log\n",
            config_path(root, &first.plan).display(),
            config_path(root, &first.plan).display(),
            root.display()
        );
    }
    b.push_str("stop:         Ctrl-C\n");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_with_base_port() {
        let plan = plan(3, Some(20000)).unwrap();
        let ids: Vec<&str> = plan.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["n1", "n2", "n3"]);
        let quic: Vec<u16> = plan.iter().map(|p| p.quic.port()).collect();
        let http: Vec<u16> = plan.iter().map(|p| p.http.port()).collect();
        assert_eq!(quic, [20001, 20002, 20003]);
        assert_eq!(http, [21001, 21002, 21003]);
        let prio: Vec<u32> = plan.iter().map(|p| p.priority).collect();
        assert_eq!(prio, [100, 90, 80]);
        assert!(super::plan(9, Some(64530)).is_err());
    }

    #[test]
    fn plan_with_free_ports_has_distinct_ports() {
        let plan = plan(9, None).unwrap();
        assert_eq!(plan.len(), 9);
        let mut quic: Vec<u16> = plan.iter().map(|p| p.quic.port()).collect();
        quic.sort_unstable();
        quic.dedup();
        assert_eq!(quic.len(), 9);
        assert_eq!(plan[8].priority, 20);
    }

    #[test]
    fn config_has_the_agreed_shape() {
        let plan = plan(3, Some(17700)).unwrap();
        let got = render_config(&plan[0], &plan, Path::new("/tmp/d"));
        let expected = r#"cluster = "demo"
node = "n1"
listen = "127.0.0.1:17701"
advertise = "127.0.0.1:17701"
peers = ["127.0.0.1:17702", "127.0.0.1:17703"]
priority = 100
state_dir = "/tmp/d/n1"

[tls]
ca = "/tmp/d/ca/ca.pem"
cert = "/tmp/d/ca/n1.pem"
key = "/tmp/d/ca/n1.key"

[http]
listen = "127.0.0.1:18701"
"#;
        assert_eq!(got, expected);
        let parsed: toml::Table = toml::from_str(&got).unwrap();
        assert_eq!(parsed["peers"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn one_node_has_no_peers() {
        let plan = plan(1, Some(17700)).unwrap();
        let got = render_config(&plan[0], &plan, Path::new("/tmp/d"));
        assert!(got.contains("peers = []\n"), "{got}");
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("x\ny"), r#""x\u000Ay""#);
        let parsed: toml::Table =
            toml::from_str(&format!("k = {}", toml_string("q\"\\\n\u{7f}é"))).unwrap();
        assert_eq!(parsed["k"].as_str(), Some("q\"\\\n\u{7f}é"));
    }
}
