//! The agent as a systemd service, at the level of the notification protocol: what it
//! sends to `NOTIFY_SOCKET` (READY, STATUS, WATCHDOG, STOPPING) and when, and its log
//! formats. A unix datagram socket of the test's own plays systemd's end; the real
//! systemd is exercised by the packaging tests (`packaging/tests/nspawn-service.sh`).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use quorate_tests::cluster::TestCluster;

/// Reads what the agent sent until `until` holds for the collected messages, or
/// `timeout`.
fn collect(
    socket: &UnixDatagram,
    timeout: Duration,
    until: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = quorate_tests::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while quorate_tests::now() < deadline && !until(&got) {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

fn notify_socket(dir: &std::path::Path, name: &str) -> UnixDatagram {
    let socket = UnixDatagram::bind(dir.join(name)).expect("bind a notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    socket
}

#[test]
fn ready_after_a_majority_then_status_watchdog_and_stopping() {
    let mut c = TestCluster::builder(3).build();
    let dir = tempfile::tempdir().expect("a temp dir");
    let sockets: Vec<UnixDatagram> = (0..3)
        .map(|i| {
            let name = format!("notify-{i}");
            let s = notify_socket(dir.path(), &name);
            let path = dir.path().join(&name);
            c.set_env(i, "NOTIFY_SOCKET", path.to_str().expect("UTF-8 path"));
            // Pings every 200 ms.
            c.set_env(i, "WATCHDOG_USEC", "400000");
            s
        })
        .collect();

    // n1 alone: no majority, so READY waits one election timeout, then comes anyway (a
    // lone first node must start), saying it is not primary.
    c.start(0);
    let started = quorate_tests::now();
    let first = collect(&sockets[0], Duration::from_secs(10), |m| {
        m.iter().any(|m| m.contains("READY=1"))
    });
    let waited = started.elapsed();
    let ready = first
        .iter()
        .find(|m| m.contains("READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 from a lone node: {first:?}\n{}", c.log(0)));
    assert!(
        ready.contains("STATUS=") && ready.contains("1/3 voters alive"),
        "{ready:?}"
    );
    assert!(
        waited >= Duration::from_millis(400),
        "READY after {waited:?}, before one election timeout, without a majority"
    );

    // The others join: n1's status line follows the election (whoever wins it).
    c.start(1);
    c.start(2);
    let elected = |m: &String| {
        (m.contains("STATUS=primary, term ") || m.contains("STATUS=secondary, term "))
            && !m.contains(", term 0,")
            && m.contains("3/3 voters alive")
    };
    let later = collect(&sockets[0], Duration::from_secs(10), |m| {
        m.iter().any(elected)
    });
    assert!(
        later.iter().any(elected),
        "no status after the election: {later:?}"
    );

    // n2 heard a majority at once: READY without waiting out an election timeout is
    // fine, and it must come; then the watchdog keeps pinging from the driver loop.
    let n2 = collect(&sockets[1], Duration::from_secs(10), |m| {
        m.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 5
    });
    assert!(n2.iter().any(|m| m.contains("READY=1")), "{n2:?}");
    assert!(
        n2.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 5,
        "{n2:?}"
    );

    // A stopped (SIGSTOP) agent stops pinging: systemd's watchdog would restart it.
    c.signal(1, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(100));
    let _ = collect(&sockets[1], Duration::from_millis(200), |_| false);
    let stopped = collect(&sockets[1], Duration::from_millis(800), |_| false);
    c.signal(1, libc::SIGCONT);
    assert!(
        !stopped.iter().any(|m| m.contains("WATCHDOG=1")),
        "pings while stopped: {stopped:?}"
    );

    // SIGTERM: STOPPING=1 before it hands over and exits. (Read what n1 sent meanwhile
    // first: like systemd, the test must keep up, or the socket's short queue fills.)
    let _ = collect(&sockets[0], Duration::from_millis(300), |_| false);
    let status = c.term(0);
    assert!(status.success(), "{status:?}");
    let bye = collect(&sockets[0], Duration::from_secs(2), |m| {
        m.iter().any(|m| m.contains("STOPPING=1"))
    });
    assert!(bye.iter().any(|m| m.contains("STOPPING=1")), "{bye:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut c = TestCluster::builder(1).build();
    c.set_wrapper(0, &["sh", "-c", "exec \"$@\" --log-format json", "sh"]);
    c.start(0);
    let deadline = quorate_tests::now() + Duration::from_secs(10);
    while quorate_tests::now() < deadline && !c.log(0).contains("started") {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = c.log(0);
    let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with("====")).collect();
    assert!(!lines.is_empty(), "no log lines");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
    assert!(log.contains("\"level\":\"INFO\""), "{log}");
}
