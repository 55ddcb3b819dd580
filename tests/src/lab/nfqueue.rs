//! [`DelayQueue`]: delay and jitter for the packets an `NFQUEUE` rule hands to
//! userspace, in one network namespace: each packet's verdict (accept) is given
//! `delay ± jitter` after it arrived, uniformly drawn from a seeded PRNG, so packets are
//! delayed and reordered like on a jittery link while their addresses stay untouched.
//! This kernel has no netem; NFQUEUE is built in.
//!
//! Owns: one thread per queue, moved into the node's network namespace (`setns` on
//! that thread alone), and its netlink socket bound to queue 0 there (the netlink
//! protocol of `nfnetlink_queue`, written out below: a bind command, metadata-only copy
//! mode, packet messages in, verdicts out). Packets still held when it stops are
//! accepted, not dropped.
//!
//! It must never look at or change a packet's bytes (it asks the kernel for metadata
//! only), drop a packet (the loss verb does that, in nftables), or touch a namespace
//! other than the one it was given.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{XorShift, now};

// nfnetlink_queue, from <linux/netfilter/nfnetlink_queue.h> and <linux/netlink.h>.
const NETLINK_NETFILTER: i32 = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NF_ACCEPT: u32 = 1;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// Packets the kernel holds for us at most (its default is 1024).
const QUEUE_MAXLEN: u32 = 8192;

/// What a queue did, for the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct DelayStats {
    pub packets: u64,
    /// Sum of the delays given, in microseconds (mean = sum / packets).
    pub delay_us_sum: u64,
    pub max_delay_us: u64,
    /// Packets the kernel dropped because the queue was full, or because a message to
    /// us was lost (from `/proc/net/netfilter/nfnetlink_queue` in the namespace).
    pub kernel_dropped: u64,
}

impl DelayStats {
    pub fn add(&mut self, o: &DelayStats) {
        self.packets += o.packets;
        self.delay_us_sum += o.delay_us_sum;
        self.max_delay_us = self.max_delay_us.max(o.max_delay_us);
        self.kernel_dropped += o.kernel_dropped;
    }

    pub fn mean_ms(&self) -> f64 {
        if self.packets == 0 {
            0.0
        } else {
            self.delay_us_sum as f64 / self.packets as f64 / 1000.0
        }
    }
}

/// A running delay queue; [`DelayQueue::stop`] (or drop) accepts what it holds.
pub struct DelayQueue {
    stop: Arc<AtomicBool>,
    /// Delay and jitter in microseconds, changeable while it runs.
    delay_us: Arc<AtomicU64>,
    jitter_us: Arc<AtomicU64>,
    thread: Option<JoinHandle<DelayStats>>,
}

impl DelayQueue {
    /// Binds queue 0 in the namespace `netns` (`/run/netns/NAME`) and starts delaying.
    pub fn start(
        netns: &str,
        delay: Duration,
        jitter: Duration,
        seed: u64,
    ) -> Result<DelayQueue, String> {
        let path = format!("/run/netns/{netns}");
        let ns = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let delay_us = Arc::new(AtomicU64::new(delay.as_micros() as u64));
        let jitter_us = Arc::new(AtomicU64::new(jitter.as_micros() as u64));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, delay_us, jitter_us) = (stop.clone(), delay_us.clone(), jitter_us.clone());
            let netns = netns.to_owned();
            std::thread::Builder::new()
                .name(format!("delay-{netns}"))
                .spawn(move || {
                    let sock = match enter(&ns).and_then(|()| Socket::bind_queue(0)) {
                        Ok(s) => {
                            let _ = ready_tx.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("delay queue in {netns}: {e}")));
                            return DelayStats::default();
                        }
                    };
                    run(sock, &stop, &delay_us, &jitter_us, seed)
                })
                .map_err(|e| format!("a thread: {e}"))?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(DelayQueue {
                stop,
                delay_us,
                jitter_us,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("the delay thread died".into()),
        }
    }

    /// Changes delay and jitter for packets from now on.
    pub fn set(&self, delay: Duration, jitter: Duration) {
        self.delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
        self.jitter_us
            .store(jitter.as_micros() as u64, Ordering::Relaxed);
    }

    /// Stops: accepts every packet still held, closes the socket; what it did.
    pub fn stop(mut self) -> DelayStats {
        self.halt()
    }

    fn halt(&mut self) -> DelayStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for DelayQueue {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Moves the calling thread (only it) into the network namespace `ns`.
#[allow(unsafe_code)]
fn enter(ns: &File) -> io::Result<()> {
    // SAFETY: setns(2) takes a valid open namespace fd (we hold it) and a flag; it
    // changes the calling thread's network namespace only, touching no memory.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A netlink socket of the `nfnetlink_queue` subsystem, read and written as a file.
struct Socket {
    file: File,
    queue: u16,
    seq: u32,
}

fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

impl Socket {
    #[allow(unsafe_code)]
    fn bind_queue(queue: u16) -> io::Result<Socket> {
        // SAFETY: socket(2) with constant arguments; the fd it returns is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value of it.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl and its size is passed with it.
        let rc = unsafe {
            libc::bind(
                owned.as_raw_fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        // Enough room that a burst of packet messages is not lost (ENOBUFS).
        let size: libc::c_int = 4 << 20;
        // SAFETY: SO_RCVBUFFORCE takes an int, passed by pointer with its size.
        unsafe {
            libc::setsockopt(
                owned.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let mut s = Socket {
            file: File::from(owned),
            queue,
            seq: 0,
        };
        let mut attrs = Vec::new();
        attr(&mut attrs, NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]);
        s.request(NFQNL_MSG_CONFIG, &attrs, true)?;
        let mut attrs = Vec::new();
        let mut params = 0u32.to_be_bytes().to_vec(); // copy range: nothing of the payload
        params.push(NFQNL_COPY_META);
        attr(&mut attrs, NFQA_CFG_PARAMS, &params);
        attr(
            &mut attrs,
            NFQA_CFG_QUEUE_MAXLEN,
            &QUEUE_MAXLEN.to_be_bytes(),
        );
        s.request(NFQNL_MSG_CONFIG, &attrs, true)?;
        Ok(s)
    }

    /// Sends one message of this subsystem; with `ack`, waits for the kernel's answer.
    fn request(&mut self, msg: u16, attrs: &[u8], ack: bool) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let len = 16 + 4 + attrs.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg).to_ne_bytes());
        let flags = NLM_F_REQUEST | if ack { NLM_F_ACK } else { 0 };
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family AF_UNSPEC, version 0, the queue number (big-endian).
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.queue.to_be_bytes());
        out.extend_from_slice(attrs);
        self.file.write_all(&out)?;
        if !ack {
            return Ok(());
        }
        let mut buf = vec![0u8; 8192];
        let n = self.file.read(&mut buf)?;
        for (kind, body) in messages(&buf[..n]) {
            if kind == NLMSG_ERROR && body.len() >= 4 {
                let code = i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
        }
        Ok(())
    }

    fn accept(&mut self, id: u32) -> io::Result<()> {
        let mut hdr = NF_ACCEPT.to_be_bytes().to_vec();
        hdr.extend_from_slice(&id.to_be_bytes());
        let mut attrs = Vec::new();
        attr(&mut attrs, NFQA_VERDICT_HDR, &hdr);
        self.request(NFQNL_MSG_VERDICT, &attrs, false)
    }

    /// Waits until the socket is readable or `timeout` passed.
    #[allow(unsafe_code)]
    fn readable(&self, timeout: Duration) -> bool {
        let mut fds = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: one valid pollfd and a valid timespec, both living across the call.
        let rc = unsafe { libc::ppoll(&raw mut fds, 1, &raw const ts, std::ptr::null()) };
        rc > 0 && fds.revents & libc::POLLIN != 0
    }
}

/// The (type, body after the netlink header) of each message in a datagram.
fn messages(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < 16 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[16..len]));
        let next = (len + 3) & !3;
        buf = &buf[next.min(buf.len())..];
    }
    out
}

/// The packet id of a packet message's body (nfgenmsg, then attributes).
fn packet_id(body: &[u8]) -> Option<u32> {
    let mut rest = body.get(4..)?;
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NFQA_PACKET_HDR && len >= 8 {
            return Some(u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]));
        }
        rest = &rest[((len + 3) & !3).min(rest.len())..];
    }
    None
}

fn run(
    mut sock: Socket,
    stop: &AtomicBool,
    delay_us: &AtomicU64,
    jitter_us: &AtomicU64,
    seed: u64,
) -> DelayStats {
    let mut rng = XorShift::new(seed);
    let mut held: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
    let mut stats = DelayStats::default();
    let mut buf = vec![0u8; 1 << 16];
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        while let Some(Reverse((due, id))) = held.peek().copied() {
            if due > t {
                break;
            }
            held.pop();
            let _ = sock.accept(id);
        }
        let wait = held
            .peek()
            .map_or(Duration::from_millis(20), |Reverse((due, _))| {
                due.saturating_duration_since(t)
            })
            .min(Duration::from_millis(20));
        if !sock.readable(wait) {
            continue;
        }
        let Ok(n) = sock.file.read(&mut buf) else {
            continue; // ENOBUFS: the kernel's count says what was lost
        };
        let arrived = now();
        let (d, j) = (
            delay_us.load(Ordering::Relaxed),
            jitter_us.load(Ordering::Relaxed),
        );
        for (kind, body) in messages(&buf[..n]) {
            if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
                continue;
            }
            let Some(id) = packet_id(body) else { continue };
            // Uniform in [d - j, d + j], never below zero.
            let us = (d + rng.range(0, 2 * j as usize) as u64).saturating_sub(j);
            stats.packets += 1;
            stats.delay_us_sum += us;
            stats.max_delay_us = stats.max_delay_us.max(us);
            held.push(Reverse((arrived + Duration::from_micros(us), id)));
        }
    }
    while let Some(Reverse((_, id))) = held.pop() {
        let _ = sock.accept(id);
    }
    stats.kernel_dropped = kernel_dropped();
    stats
}

/// queue_dropped + user_dropped of this thread's namespace's queues.
fn kernel_dropped() -> u64 {
    std::fs::read_to_string("/proc/thread-self/net/netfilter/nfnetlink_queue")
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            f.get(5).copied().unwrap_or(0) + f.get(6).copied().unwrap_or(0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_are_read_from_the_header_attribute() {
        let mut body = vec![2, 0, 0, 0]; // nfgenmsg
        attr(&mut body, 9, &[1, 2, 3]); // another attribute first, padded
        attr(&mut body, NFQA_PACKET_HDR, &[0, 0, 1, 2, 8, 0, 3]);
        assert_eq!(packet_id(&body), Some(258));
        assert_eq!(packet_id(&body[..6]), None);
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&0x300u16.to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(&body);
        let got = messages(&msg);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0x300);
        assert_eq!(packet_id(got[0].1), Some(258));
    }
}
