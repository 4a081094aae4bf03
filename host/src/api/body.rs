//! Request bodies read within a deadline: a client that trickles its body (a slow upload
//! meant to hold a connection) gets 408 instead of keeping its connection slot.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::error::ApiError;

/// Time a client has to send a whole body once its headers are in.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The whole body, read within [`DEADLINE`]. Put a `content_length_limit` before it.
pub fn bytes() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Copy {
    warp::body::stream().and_then(collect)
}

async fn collect<S, B>(stream: S) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let read = async move {
        let mut stream = std::pin::pin!(stream);
        let mut body = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::bad_request("bad_body", format!("The body could not be read: {e}."))
            })?;
            body.put(chunk);
        }
        Ok::<_, ApiError>(body.freeze())
    };
    match tokio::time::timeout(DEADLINE, read).await {
        Ok(result) => result.map_err(warp::reject::custom),
        Err(_) => Err(warp::reject::custom(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "The body did not arrive within {} s of the headers.",
                DEADLINE.as_secs()
            ),
        ))),
    }
}
