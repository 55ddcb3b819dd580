//! The command line: one file per subcommand; this one only declares the arguments.

pub mod ca;
pub mod checks;
pub mod control;
pub mod demo;
pub mod events;
pub mod status;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use proto::NodeId;

/// Where the agent's config file is unless `--config` says otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/quorate/agent.toml";

/// quorate's operator tool: the live cluster, status and commands, the cluster CA, a demo.
#[derive(Debug, Parser)]
#[command(name = "quorate", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Without a subcommand: the live cluster in the terminal UI (a one-shot `status`
    /// table when not on a terminal).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Print a man page or a shell completion script and exit (for packagers)
    #[arg(long, value_enum, hide = true)]
    pub generate: Option<quorate_agent::generate::Generated>,
}

/// Flags every subcommand takes: which agent to ask over the operator channel (QUIC,
/// mutual TLS), and with which certificate.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The agent's config file, read for its `listen` address and its `[tls]` files
    /// [default: /etc/quorate/agent.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// QUIC address (`host[:port]`, default port 7700) of the agent to ask; overrides the
    /// config's `listen`
    #[arg(long, global = true, value_name = "ADDR")]
    pub connect: Option<String>,
    /// An operator certificate (`quorate ca issue --operator NAME`) instead of the
    /// config's `[tls] cert`
    #[arg(long, global = true, value_name = "PATH", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of `--cert`
    #[arg(long, global = true, value_name = "PATH", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The cluster's CA certificate (`ca.pem`), instead of the config's `[tls] ca`
    #[arg(long, global = true, value_name = "PATH")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the cluster as one agent sees it
    Status(StatusArgs),
    /// What happened (elections, failovers, state and check changes, drift, commands), as
    /// the agent recorded it; kept across restarts
    Events(EventsArgs),
    /// Make the cluster CA and issue node and operator certificates
    #[command(subcommand)]
    Ca(CaCommand),
    /// Run a cluster of agents on loopback, with its own CA, in the terminal UI (until `q`;
    /// `--no-tui`: a table every second until Ctrl-C)
    Demo(DemoArgs),
    /// Hand the primary role to NODE (refused, with the reason, if it cannot take it)
    Transfer {
        /// The node to hand over to
        #[arg(value_name = "NODE")]
        node: NodeId,
    },
    /// Stop elections and handovers cluster-wide (for upgrades)
    Freeze,
    /// Allow elections and handovers again
    Unfreeze,
    /// Take NODE (default: this node) out of traffic: it hands the primary over, then its
    /// /health answers the drain code and the agent-check `drain`, then `maint`
    Drain {
        /// The node to drain (default: the node you run this on)
        #[arg(value_name = "NODE")]
        node: Option<NodeId>,
        /// Why, shown to every operator
        #[arg(long)]
        reason: String,
        /// Undrain by itself after this long (e.g. 1h)
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
    },
    /// Put NODE (default: this node) back into traffic
    Undrain {
        #[arg(value_name = "NODE")]
        node: Option<NodeId>,
    },
    /// Config drift
    #[command(subcommand)]
    Drift(DriftCommand),
    /// Rolling upgrades: versions and the upgrade gate
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
    /// Singleton tasks
    #[command(subcommand)]
    Task(TaskCommand),
}

#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Mark a known difference in config set NAME as acknowledged until it expires
    Ack {
        /// The `[[config]]` set's name
        name: String,
        /// How long (e.g. 2h)
        #[arg(long = "for", value_name = "DURATION")]
        for_: String,
        /// Why, shown to every operator
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// Which node runs which version, and which node to upgrade next
    Status,
    /// Let this node, started on a newer app version than the primary's, become ready
    Allow,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Exit 0 (printing QUORATE_TERM=N) on the one node that should run task NAME now,
    /// 1 elsewhere: for cron jobs and systemd timers
    ShouldRun { name: String },
}

#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Print the agent's view as JSON (the `/cluster` document)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct EventsArgs {
    /// Keep printing new events as they happen, until interrupted
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// One JSON object per line: seq, at_micros, recorded_by, kind, node, text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create ca.pem and ca.key in DIR (refuses if ca.key exists)
    Init {
        /// Directory for the CA's files (created with mode 0700)
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Issue NODE.pem/NODE.key for a node, or NAME.pem/NAME.key for an operator
    Issue {
        /// Directory holding ca.pem and ca.key; the new files are written there
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Issue an operator (client-only) certificate for NAME instead of a node's
        #[arg(long, value_name = "NAME", conflicts_with = "node")]
        operator: Option<NodeId>,
        /// The node id the certificate names
        #[arg(value_name = "NODE", required_unless_present = "operator")]
        node: Option<NodeId>,
    },
    /// Renew NODE.pem (or an operator's NAME.pem): new validity, same CA, same names;
    /// NODE.key is kept. Then `systemctl reload quorate` on the node
    Renew {
        /// Directory holding ca.pem, ca.key and NODE.key; NODE.pem is replaced there
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Renew the operator certificate NAME.pem instead of a node's
        #[arg(long, value_name = "NAME", conflicts_with = "node")]
        operator: Option<NodeId>,
        /// The node whose certificate to renew
        #[arg(value_name = "NODE", required_unless_present = "operator")]
        node: Option<NodeId>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// How many agents to run
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub nodes: u8,
    /// Print the status table every second instead of opening the terminal UI
    #[arg(long)]
    pub no_tui: bool,
    /// QUIC ports P+1…P+N and HTTP ports P+1001…P+1000+N, instead of free ones
    #[arg(long, value_name = "P")]
    pub base_port: Option<u16>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("quorate").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_is_allowed() {
        let cli = parse(&[]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.global.config, None);
        assert_eq!(cli.global.connect, None);
    }

    #[test]
    fn operator_certificates_come_as_a_pair() {
        let cli = parse(&[
            "status", "--cert", "a.pem", "--key", "a.key", "--ca", "ca.pem",
        ])
        .unwrap();
        assert_eq!(cli.global.cert, Some(PathBuf::from("a.pem")));
        assert_eq!(cli.global.ca, Some(PathBuf::from("ca.pem")));
        assert!(parse(&["status", "--cert", "a.pem"]).is_err());
        assert!(parse(&["status", "--key", "a.key"]).is_err());
    }

    #[test]
    fn events_and_transfer() {
        let cli = parse(&["events", "-f", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Events(EventsArgs {
                follow: true,
                json: true
            }))
        ));
        assert!(parse(&["transfer"]).is_err(), "NODE is required");
        assert!(parse(&["transfer", "n2"]).is_ok());
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let cli = parse(&["--connect", "10.0.0.1:7701", "status", "--json"]).unwrap();
        assert_eq!(cli.global.connect.as_deref(), Some("10.0.0.1:7701"));
        assert!(matches!(
            cli.command,
            Some(Command::Status(StatusArgs { json: true }))
        ));

        let cli = parse(&["ca", "init", "--dir", "d", "--config", "/x.toml"]).unwrap();
        assert_eq!(cli.global.config, Some(PathBuf::from("/x.toml")));
        assert!(matches!(
            cli.command,
            Some(Command::Ca(CaCommand::Init { .. }))
        ));

        let cli = parse(&["demo", "--connect", "h:1"]).unwrap();
        assert_eq!(cli.global.connect.as_deref(), Some("h:1"));
    }

    #[test]
    fn ca_issue_takes_a_node_or_an_operator() {
        let cli = parse(&["ca", "issue", "--dir", "d", "n1"]).unwrap();
        let Some(Command::Ca(CaCommand::Issue {
            dir,
            operator,
            node,
        })) = cli.command
        else {
            panic!("not ca issue");
        };
        assert_eq!(dir, PathBuf::from("d"));
        assert_eq!(operator, None);
        assert_eq!(node.map(String::from).as_deref(), Some("n1"));

        let cli = parse(&["ca", "issue", "--dir", "d", "--operator", "alice"]).unwrap();
        let Some(Command::Ca(CaCommand::Issue { operator, node, .. })) = cli.command else {
            panic!("not ca issue");
        };
        assert_eq!(operator.map(String::from).as_deref(), Some("alice"));
        assert_eq!(node, None);

        assert!(parse(&["ca", "issue", "--dir", "d"]).is_err());
        assert!(parse(&["ca", "issue", "--dir", "d", "--operator", "a", "n1"]).is_err());
        assert!(parse(&["ca", "issue", "n1"]).is_err(), "--dir is required");
        assert!(parse(&["ca", "issue", "--dir", "d", "bad.name"]).is_err());
        assert!(parse(&["ca", "issue", "--dir", "d", "--operator", "a.b"]).is_err());
    }

    #[test]
    fn demo_defaults_and_limits() {
        let cli = parse(&["demo"]).unwrap();
        let Some(Command::Demo(demo)) = cli.command else {
            panic!("not demo");
        };
        assert_eq!(demo.nodes, 3);
        assert!(!demo.no_tui);
        assert_eq!(demo.base_port, None);

        let cli = parse(&["demo", "--nodes", "9", "--no-tui", "--base-port", "20000"]).unwrap();
        let Some(Command::Demo(demo)) = cli.command else {
            panic!("not demo");
        };
        assert_eq!(
            (demo.nodes, demo.no_tui, demo.base_port),
            (9, true, Some(20000))
        );

        assert!(parse(&["demo", "--nodes", "0"]).is_err());
        assert!(parse(&["demo", "--nodes", "10"]).is_err());
    }
}
