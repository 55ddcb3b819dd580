//! Length-prefixed frames on QUIC streams, with the size cap checked before allocating.

use std::time::Duration;

use proto::{DecodeError, FRAME_HEADER_LEN, Frame};

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("stream: {0}")]
    Read(#[from] quinn::ReadExactError),
    #[error("stream: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("stream closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    #[error("cannot encode: {0}")]
    Encode(#[from] proto::EncodeError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

pub async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Frame, FrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    recv.read_exact(&mut header).await?;
    let len = proto::frame_body_len(header)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(proto::decode_frame_body(&body)?)
}

pub async fn write_frame(send: &mut quinn::SendStream, frame: &Frame) -> Result<(), FrameError> {
    let bytes = proto::encode_frame(frame)?;
    send.write_all(&bytes).await?;
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
