//! Token authentication of mutating endpoints (`Bearer <token>`, or HTTP Basic with the
//! token as the password for Kafka Connect clients), and the rule that an API without a
//! token listens on loopback only.

use std::net::SocketAddr;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use warp::{Filter, Rejection};

use super::error::ApiError;

/// A filter that passes when no token is configured, or when the request carries
/// `Authorization: Bearer <token>` (compared in constant time); otherwise rejects with 401.
/// Put it after the path and method filters of every mutating route.
pub fn mutating(token: Option<Arc<str>>) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and_then(move |header: Option<String>| {
            let token = token.clone();
            async move {
                match check(token.as_deref(), header.as_deref()) {
                    Ok(()) => Ok(()),
                    Err(error) => Err(warp::reject::custom(error)),
                }
            }
        })
        .untuple_one()
}

/// Whether `header` (the `Authorization` value) grants access under `token`.
pub fn check(token: Option<&str>, header: Option<&str>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    let Some(header) = header else {
        return Err(ApiError::unauthorized(
            "This call changes the host and needs `Authorization: Bearer <token>` (the \
             host's --api-token).",
        ));
    };
    let presented = presented(header).unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "The bearer token is not the host's API token.",
        ))
    }
}

/// The token of `Bearer <token>`, or the password of `Basic base64(<user>:<token>)` (what
/// Kafka Connect clients send; the user name is not checked).
fn presented(header: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, value) = header.trim().split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(value.trim().to_owned()),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()?;
            let pair = String::from_utf8(decoded).ok()?;
            Some(pair.split_once(':')?.1.to_owned())
        }
        _ => None,
    }
}

/// Refuses to serve an unauthenticated API on a non-loopback address; logs how the API is
/// protected.
pub fn check_bind(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    match token {
        Some(_) => {
            tracing::info!("The API needs a bearer token for every call that changes the host.");
            Ok(())
        }
        None if addr.ip().is_loopback() => {
            tracing::warn!(
                "The API is unauthenticated (no --api-token or SLUICE_API_TOKEN), so it is \
                 bound to the loopback address {addr} only."
            );
            Ok(())
        }
        None => Err(format!(
            "--api {addr} is not a loopback address and no API token is set: anyone on the \
             network could change the host. Set --api-token (or SLUICE_API_TOKEN), or bind \
             to 127.0.0.1."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_only_when_configured() {
        assert!(check(None, None).is_ok());
        assert!(check(Some("s3cret"), Some("Bearer s3cret")).is_ok());
        // Connect clients: Basic with the token as the password (base64 of `connect:s3cret`).
        assert!(check(Some("s3cret"), Some("Basic Y29ubmVjdDpzM2NyZXQ=")).is_ok());
        assert!(check(Some("s3cret"), Some("Basic Y29ubmVjdDpzM2NyZQ==")).is_err());
        assert_eq!(check(Some("s3cret"), None).unwrap_err().status, 401);
        assert_eq!(
            check(Some("s3cret"), Some("Bearer s3cre"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            check(Some("s3cret"), Some("Basic s3cret"))
                .unwrap_err()
                .status,
            401
        );
    }

    #[test]
    fn an_unauthenticated_api_binds_to_loopback_only() {
        assert!(check_bind("127.0.0.1:80".parse().unwrap(), None).is_ok());
        assert!(check_bind("[::1]:80".parse().unwrap(), None).is_ok());
        let err = check_bind("0.0.0.0:80".parse().unwrap(), None).unwrap_err();
        assert!(err.contains("--api-token"), "{err}");
        assert!(check_bind("0.0.0.0:80".parse().unwrap(), Some("t")).is_ok());
    }
}
