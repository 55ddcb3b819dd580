//! QUIC plumbing shared by the peer links and the operator channel: the transport
//! settings of each kind of connection, the length-prefixed frame codec over streams,
//! close codes and how a close reads, and the reconnect [`Backoff`].
//!
//! Owns the bytes and timings both ALPNs put on a connection, so `quorate-peer/1` and
//! `quorate-ctl/1` cannot drift apart in how they frame, cap, close or retry. It must
//! never decide whom to talk to or what a message means (that is the peer links' and the
//! operator channel's business), read a clock, or draw randomness it was not handed.
//! Frames are capped from their length prefix before anything is allocated, and each kind
//! of peer stream ([`PeerStream`]) takes one frame type under its own cap: what a peer
//! sends unasked (a hello, a state request) is read under [`proto::MAX_HELLO`], only a
//! state we asked for under [`proto::MAX_FRAME`].

use std::sync::Arc;
use std::time::Duration;

use proto::ctl::{CtlRequest, CtlResponse};
use proto::{CloseCode, DecodeError, FRAME_HEADER_LEN, Frame, Hello, NodeState};

/// QUIC transport settings for one kind of connection.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub keep_alive: Duration,
    /// Silence after which a connection is dead.
    pub idle_timeout: Duration,
    /// Bidirectional streams the other side may open at once.
    pub max_bidi_streams: u8,
    /// Datagram send and receive buffers; `None`: quinn's defaults.
    pub datagram_buffers: Option<DatagramBuffers>,
    /// The round-trip time assumed before one is measured; `None`: quinn's default.
    pub initial_rtt: Option<Duration>,
}

/// How many bytes of datagrams may wait to be sent, and to be read.
#[derive(Debug, Clone, Copy)]
pub struct DatagramBuffers {
    pub send: usize,
    pub receive: usize,
}

/// The agent's endpoint: peer links, and the operator connections it accepts.
pub const PEER: Transport = Transport {
    keep_alive: Duration::from_secs(1),
    idle_timeout: Duration::from_secs(5),
    max_bidi_streams: 8,
    // Heartbeats are worthless once stale: keep the send queue short so an old one is
    // dropped rather than sent late.
    datagram_buffers: Some(DatagramBuffers {
        send: 16 * 1024,
        receive: 64 * 1024,
    }),
    initial_rtt: Some(Duration::from_millis(50)),
};

/// An operator tool's connection to an agent: it opens streams, the agent opens none.
pub const OPERATOR_CLIENT: Transport = Transport {
    keep_alive: Duration::from_secs(1),
    idle_timeout: Duration::from_secs(5),
    max_bidi_streams: 0,
    datagram_buffers: None,
    initial_rtt: None,
};

impl Transport {
    /// The settings as quinn takes them.
    pub fn config(&self) -> Arc<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        t.keep_alive_interval(Some(self.keep_alive));
        let idle_ms = u32::try_from(self.idle_timeout.as_millis()).unwrap_or(u32::MAX);
        t.max_idle_timeout(Some(quinn::VarInt::from_u32(idle_ms).into()));
        t.max_concurrent_uni_streams(0u8.into());
        t.max_concurrent_bidi_streams(self.max_bidi_streams.into());
        if let Some(buffers) = self.datagram_buffers {
            t.datagram_send_buffer_size(buffers.send);
            t.datagram_receive_buffer_size(Some(buffers.receive));
        }
        if let Some(rtt) = self.initial_rtt {
            t.initial_rtt(rtt);
        }
        Arc::new(t)
    }
}

/// Closes `conn` with an application close code and a reason the other side can log.
pub fn close(conn: &quinn::Connection, code: CloseCode, reason: &str) {
    conn.close(quinn::VarInt::from_u32(code as u32), reason.as_bytes());
}

/// The close code the other side gave, if it closed the connection with one of ours.
pub fn close_code(e: &quinn::ConnectionError) -> Option<CloseCode> {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => {
            CloseCode::from_u64(c.error_code.into_inner())
        }
        _ => None,
    }
}

/// A peer link's close reason, for the agent's log: the code's name and the reason.
pub fn describe_close(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason);
            match close_code(e) {
                Some(code) => format!("{code:?}: {reason}"),
                None => reason.into_owned(),
            }
        }
        other => other.to_string(),
    }
}

/// A close reason as an operator should read it.
pub fn describe_close_to_operator(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason);
            match close_code(e) {
                Some(CloseCode::Goodbye) => format!("the agent is stopping ({reason})"),
                Some(_) | None => reason.into_owned(),
            }
        }
        quinn::ConnectionError::ConnectionClosed(c) => {
            format!("{c} (a certificate the agent does not accept?)")
        }
        quinn::ConnectionError::TimedOut => "no answer (timed out)".into(),
        other => other.to_string(),
    }
}

/// Why a frame could not be read or written. Says what happened on the stream; the
/// caller adds which peer or address it was.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("the stream ended before a whole frame")]
    Truncated,
    #[error("stream: {0}")]
    Read(String),
    #[error("stream: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("cannot encode: {0}")]
    Encode(#[from] proto::EncodeError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A frame of a type that does not belong on the stream it came on.
    #[error("{got} on {on}, where only {} belongs", on.carries())]
    Unexpected { got: &'static str, on: PeerStream },
}

impl From<quinn::ReadExactError> for FrameError {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::FinishedEarly(_) => Self::Truncated,
            quinn::ReadExactError::ReadError(e) => Self::Read(e.to_string()),
        }
    }
}

/// Reads one frame body of at most `cap` bytes. `Ok(None)` if the stream ended cleanly
/// before the first byte.
async fn read_body(
    recv: &mut quinn::RecvStream,
    cap: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    // Judged against this stream's cap first, so an oversized hello is refused naming
    // the hello's limit, not the frame cap.
    let claimed = u32::from_be_bytes(header) as usize;
    if claimed > cap {
        return Err(DecodeError::TooLarge { len: claimed, cap }.into());
    }
    let len = proto::frame_body_len(header)?;
    // Grown as bytes arrive, never allocated from the claimed length: a sender that
    // claims a megabyte and sends nothing costs this side nothing.
    let mut body = Vec::with_capacity(len.min(FIRST_ALLOCATION));
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(FrameError::Truncated),
            Err(e) => return Err(FrameError::Read(e.to_string())),
        }
    }
    Ok(Some(body))
}

/// What a frame body's buffer starts at (most frames fit): it grows only as bytes come.
const FIRST_ALLOCATION: usize = 4 * 1024;

/// The kinds of stream on a peer link (`quorate-peer/1`): each carries one frame of one
/// type, under its own size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStream {
    /// The first stream of a connection, both ways: a [`Frame::Hello`].
    Hello,
    /// A stream the other side opens later: a [`Frame::StateRequest`].
    Request,
    /// The answer on a stream this side opened to fetch a state: a [`Frame::State`].
    Answer,
}

impl PeerStream {
    /// The largest frame body read on it. A peer that was not asked for anything gets
    /// [`proto::MAX_HELLO`]; only an answer to our own request may be a full frame.
    pub const fn cap(self) -> usize {
        match self {
            Self::Hello | Self::Request => proto::MAX_HELLO,
            Self::Answer => proto::MAX_FRAME,
        }
    }

    /// The one frame type it carries, as a log line names it.
    pub const fn carries(self) -> &'static str {
        match self {
            Self::Hello => "a hello",
            Self::Request => "a state request",
            Self::Answer => "a state",
        }
    }
}

impl std::fmt::Display for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hello => "the hello stream",
            Self::Request => "a request stream",
            Self::Answer => "a state fetch's answer",
        })
    }
}

/// A frame as a log line names it.
pub fn frame_name(f: &Frame) -> &'static str {
    match f {
        Frame::Hello(_) => "a hello",
        Frame::StateRequest => "a state request",
        Frame::State(_) => "a state",
    }
}

/// What one kind of [`PeerStream`] carries, taken out of a decoded frame.
pub trait OnStream: Sized {
    const STREAM: PeerStream;

    /// The message, or the name of the frame when it is of another type.
    fn take(frame: Frame) -> Result<Self, &'static str>;
}

impl OnStream for Hello {
    const STREAM: PeerStream = PeerStream::Hello;
    fn take(frame: Frame) -> Result<Self, &'static str> {
        match frame {
            Frame::Hello(h) => Ok(h),
            other => Err(frame_name(&other)),
        }
    }
}

/// [`Frame::StateRequest`], which has no fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRequest;

impl OnStream for StateRequest {
    const STREAM: PeerStream = PeerStream::Request;
    fn take(frame: Frame) -> Result<Self, &'static str> {
        match frame {
            Frame::StateRequest => Ok(StateRequest),
            other => Err(frame_name(&other)),
        }
    }
}

impl OnStream for NodeState {
    const STREAM: PeerStream = PeerStream::Answer;
    fn take(frame: Frame) -> Result<Self, &'static str> {
        match frame {
            Frame::State(s) => Ok(s),
            other => Err(frame_name(&other)),
        }
    }
}

/// `frame` as what `T`'s stream carries, or [`FrameError::Unexpected`].
pub fn expect<T: OnStream>(frame: Frame) -> Result<T, FrameError> {
    T::take(frame).map_err(|got| FrameError::Unexpected { got, on: T::STREAM })
}

/// Reads the one frame `T`'s kind of stream carries: at most its [cap](PeerStream::cap),
/// of its type only.
pub async fn read_peer<T: OnStream>(recv: &mut quinn::RecvStream) -> Result<T, FrameError> {
    let body = read_body(recv, T::STREAM.cap())
        .await?
        .ok_or(FrameError::Truncated)?;
    expect(proto::decode_frame_body(&body)?)
}

pub async fn write_frame(send: &mut quinn::SendStream, frame: &Frame) -> Result<(), FrameError> {
    send.write_all(&proto::encode_frame(frame)?).await?;
    Ok(())
}

/// The agent reads an operator's request of at most [`proto::ctl::MAX_REQUEST_BYTES`].
pub async fn read_request(recv: &mut quinn::RecvStream) -> Result<CtlRequest, FrameError> {
    let body = read_body(recv, proto::ctl::MAX_REQUEST_BYTES)
        .await?
        .ok_or(FrameError::Truncated)?;
    Ok(proto::ctl::decode_request(&body)?)
}

/// The tool reads an answer: `Ok(None)` when the agent finished the stream.
pub async fn read_response(
    recv: &mut quinn::RecvStream,
) -> Result<Option<CtlResponse>, FrameError> {
    match read_body(recv, proto::MAX_FRAME).await? {
        Some(body) => Ok(Some(proto::ctl::decode_response(&body)?)),
        None => Ok(None),
    }
}

pub async fn write_request(send: &mut quinn::SendStream, r: &CtlRequest) -> Result<(), FrameError> {
    send.write_all(&proto::ctl::encode_request(r)?).await?;
    Ok(())
}

pub async fn write_response(
    send: &mut quinn::SendStream,
    r: &CtlResponse,
) -> Result<(), FrameError> {
    send.write_all(&proto::ctl::encode_response(r)?).await?;
    Ok(())
}

/// Runs `f` with a deadline.
pub async fn timeout<T>(
    d: Duration,
    f: impl Future<Output = Result<T, FrameError>>,
) -> Result<T, FrameError> {
    tokio::time::timeout(d, f)
        .await
        .map_err(|_| FrameError::Timeout(d))?
}

/// A wait of `d`, drawn from `[d/2, d]` with the caller's random source, so that many
/// parties retrying after one event do not retry in step.
pub fn jitter<R: rand::Rng + ?Sized>(d: Duration, rng: &mut R) -> Duration {
    let fraction: f64 = rng.random();
    d / 2 + d.mul_f64(fraction.clamp(0.0, 1.0) / 2.0)
}

/// When to try again after a connection failed: starts at `min`, doubles on every
/// failure up to `max`, and each delay is [jittered](jitter) with the caller's random
/// source. [`reset`](Self::reset) after a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 5 s: an operator tool reconnecting.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    /// `min` is raised to 1 ms and `max` to `min`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        let max = max.max(min);
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The wait before the next attempt (call once per failure).
    pub fn next_delay<R: rand::Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let d = self.next;
        // Never above max: the ceiling is the smaller of the two (console's slip was max()).
        self.next = (self.next * 2).min(self.max);
        jitter(d, rng)
    }

    /// A connection worked: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rand::SeedableRng as _;
    use rand::rngs::SmallRng;

    use super::*;

    /// A random source that always gives the same fraction.
    struct Fixed(u64);

    impl rand::RngCore for Fixed {
        fn next_u32(&mut self) -> u32 {
            (self.0 >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }

    fn hello() -> Hello {
        Hello {
            cluster: proto::ClusterName::new("c".to_owned()).unwrap(),
            node: proto::NodeId::new("n1").unwrap(),
            incarnation: proto::Incarnation(1),
            advertise: "10.0.0.1:7700".into(),
            mode: proto::Mode::Member,
        }
    }

    fn state() -> NodeState {
        NodeState::new(
            proto::NodeId::new("n1").unwrap(),
            proto::Incarnation(1),
            "10.0.0.1:7700".into(),
            proto::Mode::Member,
            0,
            proto::WallMicros(0),
        )
    }

    #[test]
    fn each_peer_stream_takes_only_its_own_frame_type() {
        let frames = || {
            [
                Frame::Hello(hello()),
                Frame::StateRequest,
                Frame::State(state()),
            ]
        };
        // Which frame each stream takes: the diagonal, nothing else.
        for (i, frame) in frames().into_iter().enumerate() {
            let got = frame_name(&frame);
            let hello = expect::<Hello>(frame.clone());
            let request = expect::<StateRequest>(frame.clone());
            let answer = expect::<NodeState>(frame);
            assert_eq!(
                [hello.is_ok(), request.is_ok(), answer.is_ok()],
                [i == 0, i == 1, i == 2],
                "{got}"
            );
            for (e, on) in [
                (hello.err(), PeerStream::Hello),
                (request.err(), PeerStream::Request),
                (answer.err(), PeerStream::Answer),
            ] {
                if let Some(e) = e {
                    assert!(
                        matches!(e, FrameError::Unexpected { got: g, on: o } if g == got && o == on),
                        "{e:?}"
                    );
                }
            }
        }
        let e = expect::<Hello>(Frame::State(state())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a state on the hello stream, where only a hello belongs"
        );
        // What a peer sends unasked is read under the hello cap; only an answer we asked
        // for may fill a frame. A maximal hello fits with room to spare.
        assert_eq!(PeerStream::Hello.cap(), proto::MAX_HELLO);
        assert_eq!(PeerStream::Request.cap(), proto::MAX_HELLO);
        assert_eq!(PeerStream::Answer.cap(), proto::MAX_FRAME);
        let longest = "a".repeat(63);
        let big = Hello {
            cluster: proto::ClusterName::new(longest.clone()).unwrap(),
            node: proto::NodeId::new(&longest).unwrap(),
            incarnation: proto::Incarnation(u64::MAX),
            advertise: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535".into(),
            mode: proto::Mode::Witness,
        };
        let len = proto::encode_frame(&Frame::Hello(big)).unwrap().len() - FRAME_HEADER_LEN;
        assert!(len * 4 < proto::MAX_HELLO, "a maximal hello is {len} bytes");
    }

    #[test]
    fn backoff_doubles_to_the_ceiling_with_jitter_and_resets() {
        let ms = Duration::from_millis;
        // The lowest draw: half of each step.
        let mut b = Backoff::default();
        let low: Vec<Duration> = (0..9).map(|_| b.next_delay(&mut Fixed(0))).collect();
        assert_eq!(
            low,
            [50, 100, 200, 400, 800, 1600, 2500, 2500, 2500].map(ms)
        );
        // The highest draw: the whole step, never above the ceiling.
        let mut b = Backoff::default();
        let high: Vec<Duration> = (0..8).map(|_| b.next_delay(&mut Fixed(u64::MAX))).collect();
        for (d, want) in high
            .iter()
            .zip([100, 200, 400, 800, 1600, 3200, 5000, 5000])
        {
            assert!(
                *d <= ms(want) && *d > ms(want) * 99 / 100,
                "{d:?} vs {want}"
            );
        }
        b.reset();
        assert!(b.next_delay(&mut Fixed(0)) == ms(50));
        // Any seed stays within [d/2, d] of each step.
        let mut rng = SmallRng::seed_from_u64(0x5EED);
        let mut b = Backoff::new(ms(10), ms(80));
        for step in [10, 20, 40, 80, 80, 80] {
            let d = b.next_delay(&mut rng);
            assert!(d >= ms(step) / 2 && d <= ms(step), "{d:?} for {step}");
        }
        // Degenerate settings stay sane.
        let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert!(b.next_delay(&mut Fixed(u64::MAX)) <= ms(1));
    }
}
