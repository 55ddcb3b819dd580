//! HAProxy's two side channels: the agent-check answer (`up 80%`, `drain`, `down`,
//! `maint`) and the `X-Haproxy-Server-State` header a balancer sends with its checks.
//!
//! Owns: the agent-check TCP server [`serve_agent_check`] and the header parser
//! [`parse_server_state`]. The answer itself is judged in `crate::assess::weight` (the
//! driver feeds it each time it reassesses, so it lands in [`ClusterView::agent_check`]).
//!
//! Must never: compute anything at connection time beyond reading the
//! snapshot, read more from a client than it needs, or let one slow client hold up others.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::admission::{self, Gate};
use crate::ratelog::RateLog;
use crate::view::ClusterView;

/// What the balancer says about this node, from `X-Haproxy-Server-State`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// The state word and check counts: `UP`, `UP 2/3`, `DOWN`, `NOLB`, `MAINT`…
    pub state: String,
    /// The balancer's name (`node=`).
    pub balancer: Option<String>,
    /// The weight it applies (`weight=`), e.g. `1/2`.
    pub weight: Option<String>,
}

/// Longest header accepted; HAProxy's is well under 200 bytes.
const MAX_STATE_HEADER: usize = 512;
/// Longest field kept; anything longer is not HAProxy's.
const MAX_STATE_FIELD: usize = 64;

/// Parses `UP 2/3; name=bck/srv2; node=lb1; weight=1/2; scur=13/22; qcur=0`. `None` for
/// anything that does not look like HAProxy's header (the value comes off the network
/// and is shown to operators, so only short printable fields are kept).
pub fn parse_server_state(header: &str) -> Option<ServerState> {
    if header.len() > MAX_STATE_HEADER || !header.chars().all(|c| c == ' ' || c.is_ascii_graphic())
    {
        return None;
    }
    let mut parts = header.split(';');
    let state = parts.next()?.trim();
    // The first word is HAProxy's upper-case state name (UP, DOWN, NOLB, MAINT, DRAIN).
    let word = state.split(' ').next()?;
    if word.len() < 2
        || !word.bytes().all(|b| b.is_ascii_uppercase())
        || state.len() > MAX_STATE_FIELD
    {
        return None;
    }
    let mut balancer = None;
    let mut weight = None;
    for part in parts {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        let v = v.trim();
        if v.is_empty() || v.len() > MAX_STATE_FIELD {
            continue;
        }
        match k.trim() {
            "node" => balancer = Some(v.to_owned()),
            "weight" => weight = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(ServerState {
        state: state.to_owned(),
        balancer,
        weight,
    })
}

/// A client that does not take its few bytes within this long is dropped.
const AGENT_WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for the client's close after answering.
const AGENT_LINGER: Duration = Duration::from_secs(1);
/// At most this much of what a client sends (HAProxy's optional `agent-send`) is read
/// and discarded.
const AGENT_DISCARD_MAX: usize = 1024;

/// Serves HAProxy's agent-check protocol: on each connection, write the current
/// [`ClusterView::agent_check`] and a newline, then close. Every connection is accepted
/// and given a slot or reset at once, by the HTTP port's rule with
/// [`admission::AGENT_CHECK`]'s numbers (a share kept for `http.allow`, a cap per
/// address outside it), so idle connections from elsewhere cannot keep the balancer's
/// waiting. Runs until the listener fails.
pub async fn serve_agent_check(
    listener: tokio::net::TcpListener,
    view: watch::Receiver<Arc<ClusterView>>,
) {
    let mut gate = Gate::new(admission::AGENT_CHECK);
    let log = RateLog::new();
    loop {
        let (mut stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("agent-check accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // The answer is fixed at accept time from the snapshot; nothing waits on it.
        let (trusted, line) = {
            let v = view.borrow();
            (
                admission::allowed(&v, remote.ip()),
                format!("{}\n", v.agent_check),
            )
        };
        let slot = match gate.admit(remote.ip(), trusted) {
            Ok(slot) => slot,
            Err(why) => {
                log.warn(admission::refusal_kind(why), || {
                    admission::refusal_line("agent-check", remote, why, gate.slots())
                });
                let _ = stream.set_zero_linger();
                continue;
            }
        };
        tokio::spawn(async move {
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            let wrote = tokio::time::timeout(AGENT_WRITE_TIMEOUT, async {
                stream.write_all(line.as_bytes()).await?;
                stream.shutdown().await
            })
            .await;
            if matches!(wrote, Ok(Ok(()))) {
                // Closing with unread input makes the kernel send a reset, which can
                // destroy the answer before the balancer reads it. So take (and drop)
                // what the client sent until it closes, bounded in bytes and time.
                let _ = tokio::time::timeout(AGENT_LINGER, async {
                    let mut buf = [0u8; 256];
                    let mut taken = 0;
                    while taken < AGENT_DISCARD_MAX {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => taken += n,
                        }
                    }
                })
                .await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_state_parses() {
        let full = "UP 2/3; name=bck/srv2; node=lb1; weight=1/2; scur=13/22; qcur=0";
        // (header, Some((state, balancer, weight)))
        type Want = Option<(&'static str, Option<&'static str>, Option<&'static str>)>;
        let table: &[(&str, Want)] = &[
            (full, Some(("UP 2/3", Some("lb1"), Some("1/2")))),
            ("UP", Some(("UP", None, None))),
            ("  DOWN ; node=lb2", Some(("DOWN", Some("lb2"), None))),
            (
                "MAINT; weight=0/1; node=",
                Some(("MAINT", None, Some("0/1"))),
            ),
            (
                "NOLB 1/2; junk; node=x",
                Some(("NOLB 1/2", Some("x"), None)),
            ),
            ("", None),
            ("   ", None),
            (";node=lb1", None),
            ("up", None),
            ("hello world", None),
            ("U", None),
            ("UP\n; node=lb1", None),
            ("UP; node=l\u{e9}", None),
        ];
        for (header, want) in table {
            let got = parse_server_state(header);
            let want = want.map(|(s, b, w)| ServerState {
                state: s.into(),
                balancer: b.map(Into::into),
                weight: w.map(Into::into),
            });
            assert_eq!(got, want, "{header:?}");
        }
        assert_eq!(
            parse_server_state(&format!("UP; node={}", "a".repeat(600))),
            None
        );
        let long_field = format!("UP; node={}", "a".repeat(100));
        assert_eq!(
            parse_server_state(&long_field).map(|s| s.balancer),
            Some(None)
        );
    }

    fn view_answering(answer: &str) -> ClusterView {
        let mut v = crate::http::routes::tests::view(true, true, vec![]);
        v.agent_check = answer.into();
        v
    }

    #[tokio::test(flavor = "current_thread")]
    async fn agent_check_answers_and_slow_clients_do_not_block() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = watch::channel(Arc::new(view_answering("up 70%")));
        tokio::spawn(serve_agent_check(listener, rx));
        // A client that connects and never reads nor closes.
        let _idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        for want in ["up 70%\n", "drain\n"] {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            // HAProxy's optional agent-send string.
            c.write_all(b"hello\n").await.unwrap();
            let mut got = String::new();
            tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut got))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got, want);
            tx.send_replace(Arc::new(view_answering("drain")));
        }
    }

    /// Idle connections from an address outside `http.allow` hold its share of the
    /// agent-check port and no more: the next is reset, and the balancer (in
    /// `http.allow`) is answered meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn agent_check_caps_idle_connections_per_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut v = view_answering("up 90%");
        v.http_allow = vec!["127.0.0.2/32".parse().unwrap()].into();
        let (_tx, rx) = watch::channel(Arc::new(v));
        tokio::spawn(serve_agent_check(listener, rx));
        let from = |ip: [u8; 4]| async move {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind(std::net::SocketAddr::from((ip, 0))).unwrap();
            s.connect(addr).await.unwrap()
        };
        let read = |mut c: tokio::net::TcpStream| async move {
            let mut got = Vec::new();
            let r = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got));
            let _ = r.await.expect("the server kept the connection open");
            String::from_utf8_lossy(&got).into_owned()
        };
        // Held open, never read: each holds its slot for the linger.
        let mut idle = Vec::new();
        for _ in 0..admission::AGENT_CHECK.per_source {
            idle.push(from([127, 0, 0, 1]).await);
        }
        assert_eq!(
            read(from([127, 0, 0, 1]).await).await,
            "",
            "one too many answered"
        );
        assert_eq!(read(from([127, 0, 0, 2]).await).await, "up 90%\n");
        drop(idle);
    }
}
