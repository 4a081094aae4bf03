//! The webhook's one route: checks a request (path, method, content type, size, records,
//! rate), hands its records on, and answers `200 {"accepted": n, "first_offset": o}` once
//! the runtime has committed past its last record; anything else is a JSON error
//! `{code, message}` with the matching status ([`RequestError::status`]): `not_found`,
//! `method_not_allowed`, `body_too_large`, `too_many_records`, `unsupported_media_type`,
//! `unreadable_body`, `empty_body`, `not_utf8`, `invalid_json`, `rate_limited`,
//! `not_acknowledged`, `unavailable`.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::{Reply, Response};

use super::ingest::{HandOffError, Ingest, RateError};
use super::records::{self, BodyKind, RecordsError};

/// What the route needs.
pub struct Route {
    /// The one path that takes records.
    pub path: String,
    /// Largest accepted body.
    pub max_body_bytes: u64,
    /// How long a request waits for its records to be written.
    pub ack_timeout: Duration,
    /// Where records go.
    pub ingest: Arc<Ingest>,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// 404.
    #[error("no records are taken at `{0}`")]
    NotFound(String),
    /// 405.
    #[error("method {0} is not allowed; POST the records")]
    MethodNotAllowed(Method),
    /// 413: the body is too large.
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// 413: more records than the rate limit allows in a second.
    #[error("the request holds more records than the {per_second} allowed per second")]
    TooManyRecords { per_second: u64 },
    /// 415.
    #[error("content type {0} is not supported; use text/plain, text/csv or application/json")]
    UnsupportedType(String),
    /// 400: the body could not be read.
    #[error("the body could not be read: {0}")]
    BodyRead(String),
    /// 400: the body holds no usable records.
    #[error("{0}")]
    Records(#[from] RecordsError),
    /// 429.
    #[error("over the rate limit; retry after {0} s")]
    RateLimited(u64),
    /// 503: no acknowledgement in time.
    #[error(
        "the records were not written within {0:?}; they were accepted and may still be \
         processed, so retrying may duplicate them"
    )]
    NotAcknowledged(Duration),
    /// 503: the records could not be handed on.
    #[error("{0}; records already accepted may still be processed")]
    HandOff(#[from] HandOffError),
}

impl RequestError {
    /// The HTTP status and the machine-readable code.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            RequestError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            RequestError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            RequestError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            RequestError::TooManyRecords { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_many_records")
            }
            RequestError::UnsupportedType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            RequestError::BodyRead(_) => (StatusCode::BAD_REQUEST, "unreadable_body"),
            RequestError::Records(RecordsError::Empty) => (StatusCode::BAD_REQUEST, "empty_body"),
            RequestError::Records(RecordsError::NotUtf8 { .. }) => {
                (StatusCode::BAD_REQUEST, "not_utf8")
            }
            RequestError::Records(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            RequestError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            RequestError::NotAcknowledged(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "not_acknowledged")
            }
            RequestError::HandOff(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let body = serde_json::json!({ "code": code, "message": self.to_string() });
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), status).into_response();
        let headers = response.headers_mut();
        match self {
            RequestError::MethodNotAllowed(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            RequestError::RateLimited(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}

/// The filter serving every request.
pub fn routes(
    route: Arc<Route>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |method, path: warp::path::FullPath, headers, body| {
            let route = Arc::clone(&route);
            async move { respond(&route, method, path.as_str(), &headers, body).await }
        })
}

async fn respond<S, B>(
    route: &Route,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: S,
) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    match accept(route, method, path, headers, body).await {
        Ok((accepted, first_offset)) => {
            let body = serde_json::json!({ "accepted": accepted, "first_offset": first_offset });
            warp::reply::json(&body).into_response()
        }
        Err(error) => {
            tracing::debug!(%error, "A webhook request was refused.");
            error.into_response()
        }
    }
}

/// Checks a request and hands its records on; returns the record count and first offset.
async fn accept<S, B>(
    route: &Route,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: S,
) -> Result<(usize, i64), RequestError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    if path != route.path {
        return Err(RequestError::NotFound(path.to_owned()));
    }
    if method != Method::POST {
        return Err(RequestError::MethodNotAllowed(method));
    }
    let kind = body_kind(headers)?;
    let body = read_body(headers, body, route.max_body_bytes).await?;
    let records = records::parse(kind, &body)?;
    route.ingest.admit(records.len()).map_err(|e| match e {
        RateError::RetryAfter(seconds) => RequestError::RateLimited(seconds),
        RateError::TooMany { per_second } => RequestError::TooManyRecords { per_second },
    })?;
    let handed_on = async {
        let (first, last) = route.ingest.append(&records).await?;
        route.ingest.acknowledged(last).await?;
        Ok::<_, HandOffError>(first)
    };
    match tokio::time::timeout(route.ack_timeout, handed_on).await {
        Ok(Ok(first)) => Ok((records.len(), first)),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => {
            tracing::warn!(
                records = records.len(),
                "A webhook request was not acknowledged in time and got 503; its records may \
                 still be processed."
            );
            Err(RequestError::NotAcknowledged(route.ack_timeout))
        }
    }
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, RequestError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(RequestError::UnsupportedType("(none)".into()));
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    BodyKind::of(&text).ok_or_else(|| RequestError::UnsupportedType(text.into_owned()))
}

/// Reads the body, refusing it as soon as it is known to exceed `limit`.
async fn read_body<S, B>(headers: &HeaderMap, body: S, limit: u64) -> Result<Vec<u8>, RequestError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RequestError::TooLarge { limit });
    }
    let mut body = std::pin::pin!(body);
    let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| RequestError::BodyRead(e.to_string()))?;
        if (out.len() + chunk.remaining()) as u64 > limit {
            return Err(RequestError::TooLarge { limit });
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(out)
}
