//! The command line: one file per subcommand; this one only declares the arguments.

pub mod ca;
pub mod checks;
pub mod control;
pub mod demo;
pub mod events;
pub mod json;
pub mod member;
pub mod status;

#[cfg(test)]
mod doc_commands;

use std::net::SocketAddr;
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
        #[command(flatten)]
        out: CommandOutput,
    },
    /// Stop elections and handovers cluster-wide (for upgrades)
    Freeze(CommandOutput),
    /// Allow elections and handovers again
    Unfreeze(CommandOutput),
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
        #[command(flatten)]
        out: CommandOutput,
    },
    /// Put NODE (default: this node) back into traffic
    Undrain {
        #[arg(value_name = "NODE")]
        node: Option<NodeId>,
        #[command(flatten)]
        out: CommandOutput,
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
    /// The agreed member set (who votes): list it, or change it through the primary
    #[command(subcommand)]
    Member(MemberCommand),
}

/// `quorate member …`. A change is made by the primary (the agent asked forwards it
/// there) and committed once a majority of the voters holds it; one change at a time.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// The agreed member set as the agent asked holds it: stamp, members (with their
    /// state), the change being committed, and what disagrees with it
    List(MemberListArgs),
    /// Add NODE, reachable at ADDR, to the member set (as a voter unless --non-voter);
    /// start it first: the primary refuses a change that would leave too few voters up
    Add {
        /// The new member's node id (the name its certificate carries)
        #[arg(value_name = "NODE", value_parser = node_id)]
        node: NodeId,
        /// The QUIC address it advertises: ip:port, host:port or host (port 7700), resolved now
        #[arg(value_name = "ADDR", value_parser = member_addr)]
        addr: SocketAddr,
        /// Add it as a non-voter: it follows and answers the balancer, but never counts
        /// towards a majority (`quorate member promote` later)
        #[arg(long)]
        non_voter: bool,
        #[command(flatten)]
        out: CommandOutput,
    },
    /// Remove NODE from the member set (hand the primary role over first if it is NODE)
    Remove {
        /// The member to remove
        #[arg(value_name = "NODE", value_parser = node_id)]
        node: NodeId,
        #[command(flatten)]
        out: CommandOutput,
    },
    /// Replace member OLD by NEW at ADDR, as a voter: OLD is removed, then NEW added, each
    /// change committed before the next
    Replace {
        /// The member to remove
        #[arg(value_name = "OLD", value_parser = node_id)]
        old: NodeId,
        /// The node to add in its place (as a voter)
        #[arg(value_name = "NEW", value_parser = node_id)]
        new: NodeId,
        /// The QUIC address NEW advertises: ip:port, host:port or host (port 7700), resolved now
        #[arg(value_name = "ADDR", value_parser = member_addr)]
        addr: SocketAddr,
        #[command(flatten)]
        out: CommandOutput,
    },
    /// Make the non-voter NODE a voter
    Promote {
        /// The non-voter to promote
        #[arg(value_name = "NODE", value_parser = node_id)]
        node: NodeId,
        #[command(flatten)]
        out: CommandOutput,
    },
    /// Only when a majority of the voters is lost for good: make the node asked the only
    /// voter of a new member set (refused while another voter answers)
    ForceNewCluster {
        /// Required: confirms that a majority of the voters is gone for good
        #[arg(long)]
        yes_i_lost_the_majority: bool,
        #[command(flatten)]
        out: CommandOutput,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct MemberListArgs {
    /// Print the agent's `members` object (as in `/cluster`) as JSON
    #[arg(long)]
    pub json: bool,
}

/// A node id argument, with the rule it breaks.
fn node_id(s: &str) -> Result<NodeId, String> {
    NodeId::new(s).map_err(|e| format!("not a node id: {e}"))
}

/// A member's address argument: `ip:port`, or a host name (`n4:7700`, `n4` for port
/// 7700) resolved when the command is given: the agreed member set keeps addresses, and
/// every node must dial the same one, so the name is not sent. Reachable (no wildcard, no
/// port 0).
fn member_addr(s: &str) -> Result<SocketAddr, String> {
    let addr =
        quorate_agent::config::resolve_address(s, quorate_agent::config::defaults::QUIC_PORT)?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(format!("{addr} is not an address peers can reach"));
    }
    Ok(addr)
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
        #[command(flatten)]
        out: CommandOutput,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// Which node runs which version, and which node to upgrade next
    Status {
        /// Print the versions and the next step as one JSON object: nodes (node, role,
        /// app, agent, held), newest, next (node, step)
        #[arg(long)]
        json: bool,
    },
    /// Let this node, started on a newer app version than the primary's, become ready
    Allow(CommandOutput),
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Exit 0 (printing QUORATE_TERM=N) on the one node that should run task NAME now,
    /// 1 elsewhere, 2 on an error: for cron jobs and systemd timers
    ShouldRun {
        name: String,
        /// Print the answer as one JSON object: task, run_here, term, holder (the exit
        /// status stays the same)
        #[arg(long)]
        json: bool,
    },
}

/// `--json` of the commands that change something (drain, transfer, freeze, …).
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct CommandOutput {
    /// Print the result as one JSON object: ok, command, node, message (a refusal is
    /// `"ok": false`, exit status 1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Print the agent's view as JSON: the `/cluster` document with a `verdict` object
    /// added (level, exit_code, summary, findings)
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
        #[command(flatten)]
        out: CaOutput,
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
        #[command(flatten)]
        out: CaOutput,
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
        #[command(flatten)]
        out: CaOutput,
    },
    /// Revoke NODE's certificate (or an operator's NAME.pem): every certificate issued to
    /// it goes into DIR/crl.pem. Then copy crl.pem to every node's `[tls] crl` and
    /// `systemctl reload quorate` there
    Revoke {
        /// Directory holding ca.pem, ca.key and NODE.pem; serials.json and crl.pem are
        /// rewritten there
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Revoke the operator certificate NAME.pem instead of a node's
        #[arg(long, value_name = "NAME", conflicts_with = "node")]
        operator: Option<NodeId>,
        /// The node whose certificate to revoke
        #[arg(value_name = "NODE", required_unless_present = "operator")]
        node: Option<NodeId>,
        #[command(flatten)]
        out: CaOutput,
    },
}

/// `--json` of `quorate ca …`.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct CaOutput {
    /// Print what was done as one JSON object: command, name, kind, wrote, kept,
    /// valid_until, revoked, already_revoked, crl_number
    #[arg(long)]
    pub json: bool,
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

    /// Every command that prints takes `--json`; `demo` (a live table or the terminal UI)
    /// does not.
    #[test]
    fn every_printing_command_takes_json() {
        for args in [
            &["status", "--json"][..],
            &["events", "--json"],
            &["drain", "n2", "--reason", "r", "--json"],
            &["undrain", "--json"],
            &["transfer", "n2", "--json"],
            &["freeze", "--json"],
            &["unfreeze", "--json"],
            &[
                "drift", "ack", "x", "--for", "1h", "--reason", "r", "--json",
            ],
            &["upgrade", "status", "--json"],
            &["upgrade", "allow", "--json"],
            &["task", "should-run", "t", "--json"],
            &["member", "list", "--json"],
            &["ca", "init", "--dir", "d", "--json"],
            &["ca", "issue", "--dir", "d", "n1", "--json"],
            &["ca", "renew", "--dir", "d", "--operator", "a", "--json"],
            &["ca", "revoke", "--dir", "d", "n1", "--json"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}");
        }
        assert!(parse(&["demo", "--json"]).is_err());
        let Some(Command::Freeze(out)) = parse(&["freeze", "--json"]).unwrap().command else {
            panic!("not freeze");
        };
        assert!(out.json);
        let Some(Command::Drain { out, .. }) = parse(&["drain", "--reason", "r"]).unwrap().command
        else {
            panic!("not drain");
        };
        assert!(!out.json);
    }

    #[test]
    fn ca_issue_takes_a_node_or_an_operator() {
        let cli = parse(&["ca", "issue", "--dir", "d", "n1"]).unwrap();
        let Some(Command::Ca(CaCommand::Issue {
            dir,
            operator,
            node,
            out,
        })) = cli.command
        else {
            panic!("not ca issue");
        };
        assert_eq!(dir, PathBuf::from("d"));
        assert!(!out.json);
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
        let cli = parse(&["ca", "revoke", "--dir", "d", "--operator", "alice"]).unwrap();
        let Some(Command::Ca(CaCommand::Revoke { operator, node, .. })) = cli.command else {
            panic!("not ca revoke");
        };
        assert_eq!(operator.unwrap().as_str(), "alice");
        assert!(node.is_none());
        assert!(parse(&["ca", "revoke", "--dir", "d"]).is_err());
    }

    fn member(args: &[&str]) -> Result<MemberCommand, clap::Error> {
        let all: Vec<&str> = std::iter::once("member")
            .chain(args.iter().copied())
            .collect();
        match parse(&all)?.command {
            Some(Command::Member(m)) => Ok(m),
            other => panic!("not member: {other:?}"),
        }
    }

    fn error_text(args: &[&str]) -> String {
        member(args).unwrap_err().to_string()
    }

    #[test]
    fn member_changes_parse() {
        let Ok(MemberCommand::Add {
            node,
            addr,
            non_voter,
            ..
        }) = member(&["add", "n4", "10.0.0.14:7700"])
        else {
            panic!("not member add");
        };
        assert_eq!(
            (node.as_str(), addr.to_string().as_str(), non_voter),
            ("n4", "10.0.0.14:7700", false)
        );
        let Ok(MemberCommand::Add {
            addr, non_voter, ..
        }) = member(&["add", "--non-voter", "n4", "[fd00::14]:7700"])
        else {
            panic!("not member add");
        };
        assert_eq!(
            (addr.to_string().as_str(), non_voter),
            ("[fd00::14]:7700", true)
        );

        assert!(matches!(
            member(&["remove", "n3"]),
            Ok(MemberCommand::Remove { node, .. }) if node.as_str() == "n3"
        ));
        assert!(matches!(
            member(&["promote", "n4"]),
            Ok(MemberCommand::Promote { node, .. }) if node.as_str() == "n4"
        ));
        let Ok(MemberCommand::Replace { old, new, addr, .. }) =
            member(&["replace", "n3", "n5", "10.0.0.15:7700"])
        else {
            panic!("not member replace");
        };
        assert_eq!(
            (old.as_str(), new.as_str(), addr.to_string().as_str()),
            ("n3", "n5", "10.0.0.15:7700")
        );

        assert!(member(&["add", "n4"]).is_err(), "ADDR is required");
        assert!(member(&["remove"]).is_err(), "NODE is required");
        assert!(member(&["replace", "n3", "10.0.0.15:7700"]).is_err());
        assert!(member(&["promote", "n4", "n5"]).is_err());
        assert!(member(&[]).is_err(), "a member subcommand is required");
    }

    #[test]
    fn member_bad_ids_and_addresses_are_named() {
        let e = error_text(&["add", "bad.name", "10.0.0.14:7700"]);
        assert!(e.contains("'bad.name'") && e.contains("<NODE>"), "{e}");
        assert!(e.contains("not a node id"), "{e}");
        let e = error_text(&["replace", "n3", "n_5", "10.0.0.15:7700"]);
        assert!(e.contains("<NEW>") && e.contains("not a node id"), "{e}");
        let e = error_text(&["remove", ""]);
        assert!(
            e.contains("<NODE>") && e.contains("must not be empty"),
            "{e}"
        );

        // `.invalid` never resolves (RFC 6761).
        for (bad, why) in [
            ("node4.invalid:7700", "does not resolve"),
            ("node4.invalid", "does not resolve"),
            ("10.0.0.14:99999", "is not a number from 1 to 65535"),
            ("node 4", "is not an address or a host name"),
        ] {
            let e = error_text(&["add", "n4", bad]);
            assert!(
                e.contains(&format!("'{bad}'")) && e.contains("<ADDR>"),
                "{e}"
            );
            assert!(e.contains(why), "{e}");
        }
        // A name is resolved when the command is given (IPv4 first); no port: 7700.
        for (written, addr) in [
            ("10.0.0.14", "10.0.0.14:7700"),
            ("localhost:7800", "127.0.0.1:7800"),
        ] {
            let Ok(MemberCommand::Add { addr: got, .. }) = member(&["add", "n4", written]) else {
                panic!("member add n4 {written}");
            };
            assert_eq!(got.to_string(), addr, "{written}");
        }
        for unreachable in ["0.0.0.0:7700", "[::]:7700", "10.0.0.14:0"] {
            let e = error_text(&["replace", "n3", "n5", unreachable]);
            assert!(
                e.contains("<ADDR>") && e.contains("not an address peers can reach"),
                "{e}"
            );
        }
    }

    #[test]
    fn member_list_and_force_new_cluster_parse() {
        assert!(matches!(
            member(&["list"]),
            Ok(MemberCommand::List(MemberListArgs { json: false }))
        ));
        assert!(matches!(
            member(&["list", "--json"]),
            Ok(MemberCommand::List(MemberListArgs { json: true }))
        ));
        // Parsed without the flag, and refused by `member::run` with the explanation.
        assert!(matches!(
            member(&["force-new-cluster"]),
            Ok(MemberCommand::ForceNewCluster {
                yes_i_lost_the_majority: false,
                ..
            })
        ));
        assert!(matches!(
            member(&["force-new-cluster", "--yes-i-lost-the-majority"]),
            Ok(MemberCommand::ForceNewCluster {
                yes_i_lost_the_majority: true,
                ..
            })
        ));
        assert!(
            member(&["force-new-cluster", "--yes"]).is_err(),
            "no short form"
        );
        assert!(member(&["force-new-cluster", "n1"]).is_err());
    }

    #[test]
    fn member_subcommands_take_the_global_flags() {
        let cli = parse(&[
            "--config",
            "/x.toml",
            "member",
            "add",
            "n4",
            "10.0.0.14:7700",
            "--connect",
            "10.0.0.12:7700",
        ])
        .unwrap();
        assert_eq!(cli.global.config, Some(PathBuf::from("/x.toml")));
        assert_eq!(cli.global.connect.as_deref(), Some("10.0.0.12:7700"));
        let cli = parse(&["member", "list", "--json", "--connect", "h:1"]).unwrap();
        assert_eq!(cli.global.connect.as_deref(), Some("h:1"));
    }

    /// The packaged man page and completions come from these definitions.
    #[test]
    fn man_page_and_completions_generate() {
        use quorate_agent::generate::{Generated, write};
        for kind in [
            Generated::Man,
            Generated::Bash,
            Generated::Zsh,
            Generated::Fish,
        ] {
            let mut out = Vec::new();
            write(kind, Cli::command(), "1", &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("member"), "{kind:?}");
            if kind != Generated::Man {
                assert!(text.contains("force-new-cluster"), "{kind:?}");
                assert!(text.contains("yes-i-lost-the-majority"), "{kind:?}");
            }
        }
        assert!(parse(&["--generate", "man"]).unwrap().generate.is_some());
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
