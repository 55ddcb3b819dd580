//! quorate-agent as a library: the binary and the tests both run it.
//!
//! Module map:
//! - [`config`]: the config file — parse, check, errors with file:line.
//! - [`core`]: sans-IO state machines (membership, failure detection). No IO, no clocks.
//! - [`net`]: QUIC endpoint, mutual TLS, peer links; turns sockets into core inputs and
//!   hands operator connections to [`ctl`].
//! - [`ctl`]: the operator channel (`quorate-ctl/1`): its server, and the client the
//!   `quorate` tool uses.
//! - [`events`]: the event journal (`quorate events`), kept across restarts.
//! - [`http`]: health endpoints and `/cluster`, served from a snapshot on their own thread.
//! - [`probe`]: local checks (app, mounts, config hashes, load); they measure and report,
//!   they never decide.
//! - [`assess`]: judgement, one file per check: this node's results and operator state,
//!   judged with the peers'; the reason codes; the agent-check weight.
//! - [`view`]: the snapshot readers answer from ([`view::ClusterView`]), built from the
//!   core and the assessment; it arranges, it never judges.
//! - [`driver`]: the one task that owns `core::Node` and publishes [`view::ClusterView`].
//! - [`clock`]: the only place clocks are read.
//! - [`ca`]: cluster CA tooling shared with the `quorate` binary.
//! - [`systemd`]: READY, STATUS, STOPPING and the watchdog for `Type=notify`.
//! - [`logging`]: where log lines go (terminal, journald, JSON) and the live log level.
//! - [`generate`]: man pages and shell completions from the clap definitions.
//! - [`reload`]: which config keys a reload (SIGHUP) applies and which need a restart.

// Nothing here needs unsafe code; `forbid` (not the workspace's `deny`) so no
// `#[allow]` can bring it back.
#![forbid(unsafe_code)]

pub mod assess;
pub mod ca;
pub mod clock;
pub mod config;
pub mod core;
pub mod ctl;
pub mod driver;
pub mod events;
pub mod generate;
pub mod hooks;
pub mod http;
pub mod logging;
pub mod net;
pub mod persist;
pub mod probe;
pub mod ratelog;
pub mod reload;
pub mod systemd;
pub mod timer;
pub mod view;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::{RngCore, SeedableRng};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::view::ClusterView;

/// A started agent. Dropping it does not stop it; call [`Running::stop`].
pub struct Running {
    pub quic_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub view: watch::Receiver<Arc<ClusterView>>,
    shutdown: watch::Sender<bool>,
    driver: tokio::task::JoinHandle<anyhow::Result<()>>,
    reloads: mpsc::Sender<driver::ReloadRequest>,
    notify: systemd::Sender,
}

/// Reloads a running agent's config (SIGHUP). Cheap to clone; see [`reload`] for what a
/// reload applies.
#[derive(Clone)]
pub struct Reloader {
    reloads: mpsc::Sender<driver::ReloadRequest>,
}

impl Reloader {
    /// Reads and checks `path` (off the runtime's thread: the file and its TLS files may
    /// sit on a slow disk), then applies it. An invalid file changes nothing and the
    /// error says `file:line: reason`.
    pub async fn reload_file(
        &self,
        path: &std::path::Path,
    ) -> Result<reload::ReloadOutcome, reload::ReloadError> {
        let path = path.to_owned();
        let loaded = tokio::task::spawn_blocking(move || {
            let checked = Config::check(&path)?;
            // A certificate near its end is said at every reload, as at the start: the
            // renewal an operator just made may not be the one the file names.
            for warning in &checked.warnings {
                tracing::warn!("reload: {warning}");
            }
            let config = checked.config;
            let tls = config::tls::TlsMaterial::load_agent(&config.tls, config.tls_crl.as_deref())?;
            Ok::<_, reload::ReloadError>((config, tls))
        })
        .await
        .map_err(|_| reload::ReloadError::Stopped)??;
        self.apply(loaded.0, loaded.1).await
    }

    /// Applies a config already read and checked (tests build one in memory).
    pub async fn reload(
        &self,
        config: Config,
    ) -> Result<reload::ReloadOutcome, reload::ReloadError> {
        let tls = config::tls::TlsMaterial::load_agent(&config.tls, config.tls_crl.as_deref())?;
        self.apply(config, tls).await
    }

    async fn apply(
        &self,
        config: Config,
        tls: config::tls::TlsMaterial,
    ) -> Result<reload::ReloadOutcome, reload::ReloadError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.reloads
            .send(driver::ReloadRequest {
                config: Box::new(config),
                tls,
                reply,
            })
            .await
            .map_err(|_| reload::ReloadError::Stopped)?;
        answer.await.map_err(|_| reload::ReloadError::Stopped)
    }
}

impl Running {
    /// What tells systemd about this agent (does nothing outside systemd).
    pub fn notify(&self) -> &systemd::Sender {
        &self.notify
    }

    /// A handle that reloads this agent's config.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            reloads: self.reloads.clone(),
        }
    }

    /// Hands the primary role over if it holds it, says goodbye to every peer and stops.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.driver.await.context("the driver task failed")?
    }

    /// Waits until the agent stops by itself (a fatal error), or forever.
    pub async fn failed(&mut self) -> anyhow::Error {
        match (&mut self.driver).await {
            Ok(Ok(())) => anyhow::anyhow!("the driver stopped"),
            Ok(Err(e)) => e,
            Err(e) => anyhow::anyhow!("the driver task failed: {e}"),
        }
    }
}

/// Starts an agent from a checked config. Must be called inside a tokio runtime. Binds
/// the QUIC and HTTP ports; fails (naming the port or file) if either is taken.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let incarnation = persist::next_incarnation(&config.state_dir, clock::wall())?;
    let tls = config::tls::TlsMaterial::load_agent(&config.tls, config.tls_crl.as_deref())?;

    let local_state = proto::NodeState {
        roles: config.roles.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        peers_hash: config.bootstrap_hash(),
        ..proto::NodeState::new(
            config.node.clone(),
            incarnation,
            config.advertise.to_string(),
            config.mode,
            config.priority,
            clock::wall(),
        )
    };
    let digest = local_state.digest();
    let (state_tx, state_rx) = watch::channel(local_state);
    let (inbound_tx, inbound_rx) = mpsc::channel(1024);
    let (ctl_tx, ctl_rx) = mpsc::channel(ctl::server::MAX_CONNECTIONS);
    let journal = events::Journal::open(&config.state_dir, config.node.as_str())?;
    let hello = proto::Hello {
        cluster: config.cluster.clone(),
        node: config.node.clone(),
        incarnation,
        advertise: config.advertise.to_string(),
        mode: config.mode,
    };
    let net = net::Net::bind(
        net::NetConfig {
            hello,
            listen: config.listen,
            peers: config.peers.clone(),
            control_allow: config.control_allow.clone(),
            ctl: ctl_tx,
        },
        &tls,
        state_rx,
        inbound_tx,
    )?;
    let quic_addr = net.local_addr().context("QUIC endpoint address")?;

    let stored = persist::load_hard_state(&config.state_dir)?;
    let now = clock::now();
    let mut core = core::Node::new(
        config.core_config(incarnation),
        now,
        rand::rngs::SmallRng::from_os_rng().next_u64(),
        stored.hard,
    );
    if let Some(why) = stored.lost_vote {
        // The core says what it waits for (a `Rejoining` event, logged once).
        tracing::warn!(
            state_dir = %config.state_dir.display(),
            "no proof of this node's last vote: {why}"
        );
        core = core.with_lost_vote(now, why);
    }
    let operator: assess::OperatorState =
        persist::load_json(&persist::operator_path(&config.state_dir))?;
    // The shared-storage proof: new on every start, so a stale file proves nothing.
    let nonce = format!(
        "{:016x}-{}",
        rand::rngs::SmallRng::from_os_rng().next_u64(),
        incarnation.0
    );
    let local = assess::LocalState::new(config.clone(), nonce.clone(), operator);
    let placeholder = view::build(
        &core,
        &view::Inputs {
            config: &config,
            state: &local,
            assessment: &assess::Assessment::starting(),
            node_state: &state_tx.borrow(),
            agent_check: "down".into(),
            pending_restart: &[],
        },
        now,
        clock::boottime(),
    );
    let (view_tx, view_rx) = watch::channel(Arc::new(placeholder));
    let (order_tx, order_rx) = mpsc::channel(16);
    let (balancer_tx, balancer_rx) = watch::channel(None);
    let bound = http::spawn(
        config.http.listen,
        view_rx.clone(),
        balancer_tx,
        config.haproxy_agent.map(|h| h.listen),
    )?;
    let (revocations_tx, revocations_rx) = watch::channel(tls.revocations());
    ctl::CtlServer::new(view_rx.clone(), journal.reader(), order_tx, revocations_rx).spawn(ctl_rx);
    let http_addr = bound.http;
    let load_rx = probe::load::spawn(Duration::from_secs(1));
    let probes = probe::set::Probes::spawn(&config, nonce)?;
    let (reload_tx, reload_rx) = mpsc::channel(1);

    let notify = systemd::Sender::start();
    let driver = driver::Driver {
        core,
        net,
        config: config.clone(),
        inbound: inbound_rx,
        load_rx,
        probes,
        reloads: reload_rx,
        tls,
        revocations: revocations_tx,
        pending_restart: Vec::new(),
        balancer_rx,
        view_tx,
        state_tx,
        orders: order_rx,
        journal,
        digest,
        local,
        assessment: None,
        dirty: true,
        lease_held_assessed: false,
        agent: config
            .haproxy_agent
            .as_ref()
            .map(assess::weight::AgentWeight::from_config)
            .unwrap_or_else(|| {
                assess::weight::AgentWeight::from_config(&config::HaproxyAgent::default())
            }),
        agent_check: "down".into(),
        published: None,
        jump_guard: clock::JumpGuard::new(),
        hooks: hooks::Hooks::new(config.hooks.clone(), config.node.clone()),
        notifier: systemd::Notifier::new(notify.clone(), now, config.timing.election_timeout.0),
        timer: timer::Deadline::new()
            .map_err(|e| anyhow::anyhow!("cannot create the driver's timer (timerfd): {e}"))?,
        member_replies: HashMap::new(),
        member_req: 0,
        members_logged: None,
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let driver = tokio::spawn(driver.run(shutdown_rx));
    tracing::info!(
        node = %config.node,
        cluster = %config.cluster,
        incarnation = incarnation.0,
        "started: quic {quic_addr}, http {http_addr}{}, {} peers",
        bound
            .agent_check
            .map(|a| format!(", agent-check {a}"))
            .unwrap_or_default(),
        config.peers.len()
    );
    Ok(Running {
        quic_addr,
        http_addr,
        view: view_rx,
        shutdown: shutdown_tx,
        driver,
        reloads: reload_tx,
        notify,
    })
}
