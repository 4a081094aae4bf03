//! The gate every request passes before any route ([`filter`]):
//! - **Host**: a request naming a host (the `Host` header) that is neither an IP address of
//!   the bound socket, `localhost`, nor a name given with `--api-host-name` is refused
//!   (403 `host_not_allowed`), so a DNS-rebound name cannot reach a loopback API from a page.
//! - **Tokens**: once a token is set, reads need the read token (`--api-read-token`) or the
//!   API token, and calls that change the host need the API token (401). `/`, `/healthz`,
//!   `/readyz` and the OpenAPI document stay open.
//! - **Cross-site**: a call that changes the host without an `Authorization` header must
//!   carry a content type no HTML form can send (JSON, YAML, wasm) or the header
//!   `X-Sluice-Request`, so that no page can post a form or a `no-cors` request to it (403
//!   `cross_site_refused`).

use std::net::IpAddr;
use std::sync::Arc;

use warp::http::{HeaderMap, Method, StatusCode, header};
use warp::path::FullPath;
use warp::{Filter, Rejection};

use super::auth;
use super::error::ApiError;

/// Paths served without a token.
const OPEN: [&str; 4] = ["/", "/healthz", "/readyz", "/api/v1/openapi.json"];

/// The header that marks a call as made by a program, not a form.
pub const MARKER: &str = "x-sluice-request";

/// Content types a page can send cross-site without a preflight (the CORS-safelisted ones).
const FORM_TYPES: [&str; 3] = [
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "text/plain",
];

/// Who may call the API, and by which names.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// The API token: every call that changes the host needs it (`None`: loopback only).
    pub token: Option<Arc<str>>,
    /// A token that grants reads only.
    pub read_token: Option<Arc<str>>,
    /// Host names accepted besides IP addresses and `localhost` (lower case).
    pub names: Arc<[String]>,
    /// The address the API is bound to (`None`: not known, any IP address is accepted).
    pub bound: Option<IpAddr>,
    /// The Kafka Connect face: its clients send bodyless PUT, POST and DELETE without a
    /// content type, so the cross-site rule there refuses only what a page can send (a POST
    /// with an `Origin`); a token, when set, is still needed.
    pub connect: bool,
}

/// A filter that passes the requests [`check`] lets through and rejects the others.
pub fn filter(access: Access) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let access = Arc::new(access);
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(move |method: Method, path: FullPath, headers: HeaderMap| {
            let access = access.clone();
            async move {
                check(&access, &method, path.as_str(), &headers).map_err(warp::reject::custom)
            }
        })
        .untuple_one()
}

/// Whether the request may go on to the routes.
pub fn check(
    access: &Access,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(host) = headers.get(header::HOST) {
        check_host(access, host.to_str().unwrap_or(""))?;
    }
    let authorization = text(header::AUTHORIZATION);
    let read = matches!(*method, Method::GET | Method::HEAD);
    if read {
        if OPEN.contains(&path) || (access.token.is_none() && access.read_token.is_none()) {
            return Ok(());
        }
        let read_ok = access
            .read_token
            .as_deref()
            .is_some_and(|t| auth::check(Some(t), authorization).is_ok());
        if read_ok || auth::check(access.token.as_deref(), authorization).is_ok() {
            return Ok(());
        }
        return Err(ApiError::unauthorized(
            "Reading this host needs `Authorization: Bearer <token>`: its read token \
             (--api-read-token) or its API token (--api-token).",
        ));
    }
    auth::check(access.token.as_deref(), authorization)?;
    if access.connect && !from_a_page(method, headers) {
        return Ok(());
    }
    if authorization.is_none() && headers.get(MARKER).is_none() {
        let media = text(header::CONTENT_TYPE)
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        if media.as_deref().is_none_or(|m| FORM_TYPES.contains(&m)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site_refused",
                format!(
                    "{method} {path} changes the host, so it needs a body type no web form can \
                     send (e.g. `Content-Type: application/json`) or the header \
                     `X-Sluice-Request: 1`; this keeps web pages from calling the API."
                ),
            ));
        }
    }
    Ok(())
}

/// Whether a request that changes the host could have been sent by a web page without the
/// API's consent: POST (a page sends it cross-site without a preflight) from a browser, which
/// names the page's `Origin` on every POST. PUT, PATCH and DELETE cannot be sent cross-site
/// without a CORS preflight, which this API never grants.
fn from_a_page(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::POST && headers.contains_key(header::ORIGIN)
}

/// Refuses a `Host` that is not an address of the bound socket, `localhost` or an allowed
/// name.
fn check_host(access: &Access, host: &str) -> Result<(), ApiError> {
    let name = host_name(host);
    let accepted = match name.parse::<IpAddr>() {
        Ok(ip) => access
            .bound
            .is_none_or(|bound| bound.is_unspecified() || bound == ip),
        Err(_) => {
            let name = name.to_ascii_lowercase();
            name == "localhost" || access.names.contains(&name)
        }
    };
    if accepted {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "host_not_allowed",
        format!(
            "This API does not answer to the host name `{name}` (the Host header). Call it by \
             its address or by localhost, or let the operator allow the name with \
             --api-host-name {name}."
        ),
    ))
}

/// The name part of a `Host` value: `[::1]:80` is `::1`, `a.b:80` is `a.b`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use warp::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn access() -> Access {
        Access {
            token: Some("admin".into()),
            read_token: Some("reader".into()),
            names: Arc::from(vec!["sluice.internal".to_string()]),
            bound: Some("127.0.0.1".parse().unwrap()),
            connect: false,
        }
    }

    fn status(access: &Access, method: Method, path: &str, h: &[(&'static str, &str)]) -> u16 {
        match check(access, &method, path, &headers(h)) {
            Ok(()) => 200,
            Err(e) => e.status.as_u16(),
        }
    }

    #[test]
    fn hosts_other_than_the_address_localhost_and_allowed_names_are_refused() {
        let a = access();
        let get = |host| status(&a, Method::GET, "/healthz", &[("host", host)]);
        assert_eq!(get("127.0.0.1:8080"), 200);
        assert_eq!(get("localhost:8080"), 200);
        assert_eq!(get("LOCALHOST"), 200);
        assert_eq!(get("sluice.internal:80"), 200);
        assert_eq!(get("evil.example:8080"), 403);
        assert_eq!(get("10.0.0.1:8080"), 403);
        assert_eq!(get("[::1]:8080"), 403);
        let any = Access {
            bound: Some("0.0.0.0".parse().unwrap()),
            ..access()
        };
        assert_eq!(
            status(&any, Method::GET, "/", &[("host", "10.0.0.1:8080")]),
            200
        );
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("a.b"), "a.b");
    }

    #[test]
    fn reads_need_a_token_once_one_is_set() {
        let a = access();
        let pipelines = "/api/v1/pipelines";
        assert_eq!(status(&a, Method::GET, pipelines, &[]), 401);
        let reader = [("authorization", "Bearer reader")];
        let admin = [("authorization", "Bearer admin")];
        assert_eq!(status(&a, Method::GET, pipelines, &reader), 200);
        assert_eq!(status(&a, Method::GET, pipelines, &admin), 200);
        assert_eq!(
            status(&a, Method::GET, pipelines, &[("authorization", "Bearer x")]),
            401
        );
        for open in OPEN {
            assert_eq!(status(&a, Method::GET, open, &[]), 200, "{open}");
        }
        assert_eq!(
            status(&a, Method::POST, "/api/v1/pipelines/p/pause", &reader),
            401
        );
        assert_eq!(
            status(&a, Method::POST, "/api/v1/pipelines/p/pause", &admin),
            200
        );
        let open = Access::default();
        assert_eq!(status(&open, Method::GET, pipelines, &[]), 200);
    }

    #[test]
    fn changes_without_a_token_need_a_non_form_body_or_the_marker() {
        let open = Access::default();
        let pause = "/api/v1/pipelines/p/pause";
        assert_eq!(status(&open, Method::POST, pause, &[]), 403);
        for form in ["text/plain", "multipart/form-data; boundary=x"] {
            let h = [("content-type", form)];
            assert_eq!(status(&open, Method::POST, pause, &h), 403, "{form}");
        }
        let json = [("content-type", "application/json")];
        assert_eq!(status(&open, Method::POST, pause, &json), 200);
        let yaml = [("content-type", "application/yaml")];
        assert_eq!(
            status(&open, Method::PUT, "/api/v1/pipelines/p", &yaml),
            200
        );
        assert_eq!(
            status(
                &open,
                Method::DELETE,
                "/api/v1/pipelines/p",
                &[(MARKER, "1")]
            ),
            200
        );
    }

    #[test]
    fn the_connect_face_takes_bodyless_writes_but_not_what_a_page_can_post() {
        let open = Access {
            token: None,
            read_token: None,
            connect: true,
            ..access()
        };
        let host = ("host", "127.0.0.1:8083");
        assert_eq!(
            status(&open, Method::PUT, "/connectors/t/pause", &[host]),
            200
        );
        assert_eq!(status(&open, Method::DELETE, "/connectors/t", &[host]), 200);
        assert_eq!(
            status(&open, Method::POST, "/connectors/t/restart", &[host]),
            200
        );
        let page = ("origin", "https://evil.example");
        assert_eq!(
            status(&open, Method::POST, "/connectors/t/restart", &[host, page]),
            403
        );
        let rest = Access {
            connect: false,
            ..open.clone()
        };
        assert_eq!(
            status(&rest, Method::PUT, "/connectors/t/pause", &[host]),
            403
        );
        let guarded = Access {
            connect: true,
            ..access()
        };
        assert_eq!(
            status(&guarded, Method::PUT, "/connectors/t/pause", &[host]),
            401
        );
        let basic = ("authorization", "Basic Y29ubmVjdDphZG1pbg==");
        assert_eq!(
            status(&guarded, Method::PUT, "/connectors/t/pause", &[host, basic]),
            200
        );
    }
}
