//! `/health` throughput (issue 13): wrk against one agent whose app check hangs, and
//! against a minimal hyper server answering a constant in the same run, so the figure
//! means something on a noisy host (the ratio is what to compare).
//!
//! ```text
//! apt-get install wrk
//! cargo build --release --workspace --bins
//! cargo bench -p quorate-tests --bench http_rps
//! QUORATE_BENCH_TRIALS=5 QUORATE_BENCH_SECS=10 cargo bench -p quorate-tests --bench http_rps
//! ```
//!
//! The baseline is built like the agent's HTTP server: the same hyper, the same
//! connection settings (timer, 2 s header timeout, 16 KiB buffers), one current-thread
//! runtime on a thread of its own; it answers what the agent answers (a 503 with the same
//! headers and a body of the same size) without looking at anything. Trials alternate
//! baseline and agent; the table gives each run and the medians. wrk runs one thread
//! and 16 keep-alive connections (`-t1 -c16 --latency`) from loopback, inside the
//! agent's `http.allow` (the default).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use quorate_tests::bench;

const SETTLE: Duration = Duration::from_secs(30);

/// What the agent answers on `/health` in this bench (a 503: its app check hangs).
const BODY: &[u8] = b"{\"cluster\":\"bars\",\"node\":\"n1\",\"reasons\":[\"app\"],\"role\":\"primary\",\"status\":\"fail\",\"term\":1}\n";

/// One wrk run.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

/// A duration as wrk prints it: `123.45us`, `1.23ms`, `2.00s`.
fn wrk_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

fn parse_wrk(out: &str) -> Option<Run> {
    let mut run = Run::default();
    for line in out.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(d)) => run.p50 = wrk_duration(d)?,
            (Some("99%"), Some(d)) => run.p99 = wrk_duration(d)?,
            (Some("Requests/sec:"), Some(n)) => run.rps = n.parse().ok()?,
            (Some("Socket"), Some("errors:")) => {
                run.errors = line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    (run.rps > 0.0).then_some(run)
}

fn wrk(addr: SocketAddr, secs: u64) -> Option<Run> {
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{secs}s"), "--latency"])
        .arg(format!("http://{addr}/health"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let run = parse_wrk(&text);
    if run.is_none() {
        println!("wrk said: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    run
}

/// The baseline: a hyper server on its own thread and current-thread runtime, set up
/// like the agent's, answering a constant.
fn baseline() -> SocketAddr {
    let std = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the baseline server");
    let addr = std.local_addr().expect("its address");
    std.set_nonblocking(true).expect("non-blocking");
    std::thread::Builder::new()
        .name("baseline-http".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std).expect("a listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(|_req| async {
                            let mut r = Response::new(Full::new(Bytes::from_static(BODY)));
                            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            let h = r.headers_mut();
                            h.insert(
                                HeaderName::from_static("x-quorate-node"),
                                HeaderValue::from_static("n1"),
                            );
                            h.insert(
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("application/json"),
                            );
                            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                            Ok::<_, Infallible>(r)
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(2))
                            .max_buf_size(16 * 1024)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        })
        .expect("the baseline thread");
    addr
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    if !bench::is_bench_run() {
        return;
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("| /health req/s | skipped: wrk is not installed (apt-get install wrk) |");
        return;
    }
    let trials = bench::trials(3);
    let secs: u64 = std::env::var("QUORATE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let Some(c) = bench::hung_app_cluster(1, SETTLE) else {
        println!("| /health req/s | skipped: the app check never hung |");
        return;
    };
    let agent = c.http_addr(0);
    let base = baseline();
    let load_before = loadavg();
    println!("| server | run | req/s | p50 ms | p99 ms | socket errors |");
    println!("|---|---|---|---|---|---|");
    let mut rows: [(&str, SocketAddr, Vec<Run>); 2] = [
        ("minimal hyper server (baseline)", base, Vec::new()),
        ("agent, app check hung", agent, Vec::new()),
    ];
    for t in 0..trials {
        for (name, addr, runs) in &mut rows {
            let Some(run) = wrk(*addr, secs) else {
                println!("| {name} | {} | wrk failed | | | |", t + 1);
                continue;
            };
            println!(
                "| {name} | {} | {:.0} | {} | {} | {} |",
                t + 1,
                run.rps,
                ms(run.p50),
                ms(run.p99),
                run.errors
            );
            runs.push(run);
        }
    }
    let med = |runs: &Vec<Run>, f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let mut medians = Vec::new();
    for (name, _, runs) in &rows {
        let rps = med(runs, |r| r.rps);
        let p99 = med(runs, |r| r.p99.as_secs_f64() * 1000.0);
        let p50 = med(runs, |r| r.p50.as_secs_f64() * 1000.0);
        println!("| {name} | median | {rps:.0} | {p50:.3} | {p99:.3} | |");
        medians.push((rps, p99));
    }
    if let [(b_rps, b_p99), (a_rps, a_p99)] = medians[..] {
        println!(
            "\nagent / baseline: {:.2} × the requests per second, {:.2} × the p99 \
             (target: ≥ 50 000 req/s and p99 ≤ 1 ms); {trials} × {secs} s each; load \
             average {load_before} before, {} after, on {} CPUs",
            a_rps / b_rps,
            a_p99 / b_p99,
            loadavg(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
    }
}
