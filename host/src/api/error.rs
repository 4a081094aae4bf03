//! API errors: every error answer is JSON `{code, message, details}` with its status.
//! (Stand-in until the API framework branch lands; same shape.)

use serde_json::Value as Json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What happened and what to do, for a person.
    pub message: String,
    /// Structured details (or null).
    pub details: Json,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Json::Null,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Json) -> Self {
        self.details = details;
        self
    }

    /// A 500: the cause is logged, not returned.
    pub fn internal(error: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{error:#}"), "An API request failed.");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The request failed on the server; see the host's log.",
        )
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "details": self.details,
        });
        warp::reply::with_status(warp::reply::json(&body), self.status).into_response()
    }
}
