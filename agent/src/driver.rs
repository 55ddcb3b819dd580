//! The driver: the one task that owns [`core::Node`](crate::core::Node).
//!
//! One `select!` loop, shutdown first: network input, the core's timer, load samples.
//! After every input it drains the core's outputs (datagrams out, state fetches, events
//! to log) and publishes a fresh [`ClusterView`]. Every turn is short; nothing here
//! awaits a peer or a probe.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::{Datagram, NodeId, NodeState};
use tokio::sync::{mpsc, watch};

use crate::clock;
use crate::config::Config;
use crate::core::{Event, Node};
use crate::net::{Inbound, LinkId, Net};
use crate::probe::load::LoadSample;
use crate::view::{self, ClusterView};

pub struct Driver {
    pub(crate) core: Node,
    pub(crate) net: Net,
    pub(crate) config: Arc<Config>,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) load_rx: watch::Receiver<Option<LoadSample>>,
    pub(crate) view_tx: watch::Sender<Arc<ClusterView>>,
    pub(crate) state_tx: watch::Sender<NodeState>,
    /// Live connections per node, newest last.
    pub(crate) links: HashMap<NodeId, Vec<(LinkId, quinn::Connection)>>,
    pub(crate) load: Option<LoadSample>,
    pub(crate) joined: bool,
    pub(crate) overloaded: bool,
}

impl Driver {
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.net.start();
        self.publish(clock::now());
        loop {
            let deadline = self
                .core
                .poll_timeout()
                .unwrap_or_else(|| clock::now() + Duration::from_secs(1));
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                msg = self.inbound.recv() => match msg {
                    Some(msg) => self.on_inbound(msg),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.core.handle_timeout(clock::now(), clock::wall());
                }
                changed = self.load_rx.changed() => {
                    if changed.is_ok() {
                        let sample = *self.load_rx.borrow_and_update();
                        self.on_load(sample);
                    }
                }
            }
            self.drain();
        }
        self.goodbye().await;
    }

    fn on_inbound(&mut self, msg: Inbound) {
        let now = clock::now();
        match msg {
            Inbound::LinkUp { id, hello, conn } => {
                self.core.handle_hello(now, &hello);
                self.links.entry(hello.node).or_default().push((id, conn));
            }
            Inbound::LinkDown {
                id,
                node,
                incarnation,
                goodbye,
            } => {
                if let Some(links) = self.links.get_mut(&node) {
                    links.retain(|(l, _)| *l != id);
                }
                if goodbye {
                    self.core.handle_left(now, &node, incarnation);
                }
            }
            Inbound::Datagram { from, datagram } => {
                self.core.handle_datagram(now, clock::wall(), &from, datagram);
            }
            Inbound::State { from, state } => self.core.handle_state(&from, state),
            Inbound::FetchFailed { from } => self.core.handle_fetch_failed(&from),
        }
    }

    fn on_load(&mut self, sample: Option<LoadSample>) {
        self.load = sample;
        let over = match (&self.config.load, sample) {
            (Some(limits), Some(s)) => s.over(limits),
            _ => false,
        };
        if over != self.overloaded {
            self.overloaded = over;
            if over {
                tracing::warn!("load above its limits: node is overloaded");
            } else {
                tracing::info!("load back within its limits");
            }
        }
    }

    fn local(&self) -> view::Local<'_> {
        view::Local {
            config: &self.config,
            load: self.load,
            joined: self.joined,
            overloaded: self.overloaded,
        }
    }

    fn drain(&mut self) {
        let now = clock::now();
        if !self.joined && self.core.has_quorum() {
            self.joined = true;
            tracing::info!(
                "joined the cluster: {} of {} voters alive",
                self.core.alive_voters(),
                self.config.voters()
            );
        }
        let local = self.local();
        let health = local.health_bits();
        let load = self.load.map(|l| l.figures()).unwrap_or_default();
        let digest = self.state_tx.borrow().digest();
        self.core.handle_local(health, load, digest);

        while let Some(t) = self.core.poll_transmit() {
            self.send(&t.to, &t.datagram);
        }
        while let Some(node) = self.core.poll_fetch() {
            match self.links.get(&node).and_then(|l| l.last()) {
                Some((_, conn)) => self.net.fetch_state(node, conn.clone()),
                None => self.core.handle_fetch_failed(&node),
            }
        }
        while let Some(event) = self.core.poll_event() {
            log_event(&event);
        }
        self.publish(now);
    }

    fn send(&self, to: &NodeId, datagram: &Datagram) {
        let Some((_, conn)) = self.links.get(to).and_then(|l| l.last()) else {
            return;
        };
        match proto::encode_datagram(datagram) {
            Ok(bytes) => {
                if let Err(e) = conn.send_datagram(bytes.into()) {
                    tracing::debug!(peer = %to, "datagram not sent: {e}");
                }
            }
            Err(e) => tracing::error!(peer = %to, "cannot encode a datagram: {e}"),
        }
    }

    fn publish(&self, now: Instant) {
        let view = view::build(&self.core, &self.local(), now);
        self.view_tx.send_replace(Arc::new(view));
    }

    async fn goodbye(&mut self) {
        let bye = self.core.goodbye();
        let peers: Vec<NodeId> = self.links.keys().cloned().collect();
        for peer in &peers {
            self.send(peer, &bye);
        }
        tracing::info!("said goodbye to {} peers", peers.len());
        self.net.close(Duration::from_millis(500)).await;
    }
}

fn log_event(event: &Event) {
    match event {
        Event::Joined { node, incarnation } => {
            tracing::info!(peer = %node, incarnation = incarnation.0, "peer joined");
        }
        Event::Restarted { node, incarnation } => {
            tracing::info!(peer = %node, incarnation = incarnation.0, "peer restarted");
        }
        Event::StateChanged { node, from, to } => {
            tracing::info!(peer = %node, "peer {} → {}", from.as_str(), to.as_str());
        }
    }
}
