//! API errors: [`ApiError`] (a status, a stable `code`, a message a user can act on, and
//! structured `details`), served as JSON `{code, message, details}`, and [`recover`], which
//! turns every rejection, warp's own included, into that shape.

use std::convert::Infallible;

use serde_json::{Value as Json, json};
use warp::filters::body::BodyDeserializeError;
use warp::http::StatusCode;
use warp::reject::{
    InvalidHeader, InvalidQuery, LengthRequired, MethodNotAllowed, MissingHeader, PayloadTooLarge,
    UnsupportedMediaType,
};
use warp::{Rejection, Reply};

/// An error answer of the API. Return it from a handler as `Err(error.into())` (it is a
/// warp rejection) or as a reply (`error.into_response()`); both give the same JSON.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable, machine-readable code (`plugin_not_found`).
    pub code: &'static str,
    /// What went wrong, in words a user can act on.
    pub message: String,
    /// Structured details (`null` when there are none).
    pub details: Json,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    /// An error with `status`, `code` and `message`, without details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Json::Null,
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Json) -> Self {
        self.details = details;
        self
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: the request was well formed but its content is refused.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 413.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 500: logs `error` (with its chain) and answers a generic message without internals.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(error = %error, "An API request failed inside the host.");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The host failed to handle the request; the reason is in its log.",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Json {
        let mut details = self.details.clone();
        crate::redact::json(&mut details);
        json!({
            "code": self.code,
            "message": crate::redact::text(&self.message),
            "details": details,
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl Reply for ApiError {
    fn into_response(self) -> warp::reply::Response {
        let status = self.status;
        warp::reply::with_status(warp::reply::json(&self.body()), status).into_response()
    }
}

/// Turns any rejection into a JSON error with the right status.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    Ok(from_rejection(&rejection).into_response())
}

/// The [`ApiError`] a rejection stands for.
pub fn from_rejection(rejection: &Rejection) -> ApiError {
    if let Some(error) = rejection.find::<ApiError>() {
        return error.clone();
    }
    if rejection.is_not_found() {
        return ApiError::not_found("not_found", "No such endpoint.");
    }
    if let Some(error) = known(rejection) {
        return error;
    }
    if rejection.find::<MethodNotAllowed>().is_some() {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This endpoint does not accept that HTTP method; the OpenAPI document at \
             /api/v1/openapi.json lists the methods of each endpoint.",
        );
    }
    tracing::warn!(
        ?rejection,
        "An API request was rejected for an unexpected reason."
    );
    ApiError::bad_request("bad_request", "The request could not be read.")
}

/// warp's own rejections other than 404 and 405.
fn known(rejection: &Rejection) -> Option<ApiError> {
    if rejection.find::<PayloadTooLarge>().is_some() {
        return Some(ApiError::payload_too_large(
            "The request body is larger than this endpoint accepts (see --api-max-spec-bytes \
             and --api-max-plugin-bytes).",
        ));
    }
    if rejection.find::<LengthRequired>().is_some() {
        return Some(ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "Send the body with a Content-Length header.",
        ));
    }
    if rejection.find::<UnsupportedMediaType>().is_some() {
        return Some(ApiError::unsupported_media_type(
            "The request's Content-Type is not one this endpoint accepts.",
        ));
    }
    if let Some(error) = rejection.find::<BodyDeserializeError>() {
        let message = format!("The body is not valid JSON of the expected shape: {error}.");
        return Some(ApiError::bad_request("invalid_body", message));
    }
    if let Some(header) = rejection.find::<MissingHeader>() {
        let message = format!("The request needs the header `{}`.", header.name());
        return Some(ApiError::bad_request("missing_header", message));
    }
    if let Some(header) = rejection.find::<InvalidHeader>() {
        let message = format!("The header `{}` has an invalid value.", header.name());
        return Some(ApiError::bad_request("invalid_header", message));
    }
    if rejection.find::<InvalidQuery>().is_some() {
        return Some(ApiError::bad_request(
            "invalid_query",
            "The query string is not valid for this endpoint.",
        ));
    }
    None
}
