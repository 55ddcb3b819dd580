//! Reading and writing operator-channel frames on QUIC streams, with the size cap checked
//! from the length prefix before anything is allocated.

use proto::ctl::{CtlRequest, CtlResponse};
use proto::{DecodeError, FRAME_HEADER_LEN};

/// Why a frame could not be read or written. Says what happened on the stream; the
/// caller adds which peer or address it was.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("the stream ended before a whole frame")]
    Truncated,
    #[error("stream: {0}")]
    Read(String),
    #[error("stream: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("cannot encode: {0}")]
    Encode(#[from] proto::EncodeError),
}

impl From<quinn::ReadExactError> for WireError {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::FinishedEarly(_) => Self::Truncated,
            quinn::ReadExactError::ReadError(e) => Self::Read(e.to_string()),
        }
    }
}

/// Reads one frame body of at most `cap` bytes. `Ok(None)` if the stream ended cleanly
/// before the first byte.
async fn read_body(recv: &mut quinn::RecvStream, cap: usize) -> Result<Option<Vec<u8>>, WireError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = proto::frame_body_len(header)?;
    if len > cap {
        return Err(DecodeError::TooLarge { len, cap }.into());
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// The agent reads a request of at most [`proto::ctl::MAX_REQUEST_BYTES`].
pub async fn read_request(recv: &mut quinn::RecvStream) -> Result<CtlRequest, WireError> {
    let body = read_body(recv, proto::ctl::MAX_REQUEST_BYTES)
        .await?
        .ok_or(WireError::Truncated)?;
    Ok(proto::ctl::decode_request(&body)?)
}

/// The tool reads an answer: `Ok(None)` when the agent finished the stream.
pub async fn read_response(recv: &mut quinn::RecvStream) -> Result<Option<CtlResponse>, WireError> {
    match read_body(recv, proto::MAX_FRAME).await? {
        Some(body) => Ok(Some(proto::ctl::decode_response(&body)?)),
        None => Ok(None),
    }
}

pub async fn write_request(send: &mut quinn::SendStream, r: &CtlRequest) -> Result<(), WireError> {
    send.write_all(&proto::ctl::encode_request(r)?).await?;
    Ok(())
}

pub async fn write_response(
    send: &mut quinn::SendStream,
    r: &CtlResponse,
) -> Result<(), WireError> {
    send.write_all(&proto::ctl::encode_response(r)?).await?;
    Ok(())
}
