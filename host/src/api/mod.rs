//! The host's HTTP server (warp): the live dashboard at `/`, the live event stream of each
//! pipeline (server-sent events) at `/api/v1/pipelines/{name}/live`, the list of pipelines,
//! and `/healthz`. Errors are JSON `{code, message, details}`.

use std::convert::Infallible;
use std::net::SocketAddr;

use futures::StreamExt;
use serde::Serialize;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::sinks::live::LiveHub;

mod error;
mod metrics;
pub mod pipelines;
mod status;
mod tokio_stream_shim;

pub use error::ApiError;

use crate::manager::Manager;

/// Largest spec or offsets body accepted (bytes).
pub const SPEC_BODY_LIMIT: u64 = 1 << 20;

const DASHBOARD: &str = include_str!("dashboard.html");

/// Every route.
pub fn routes(hub: LiveHub) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let dashboard = warp::path::end()
        .and(warp::get())
        .map(|| warp::reply::html(DASHBOARD));
    let health = warp::path("healthz").and(warp::path::end()).map(|| "ok");
    let with_hub = warp::any().map(move || hub.clone());
    let list = warp::path!("api" / "v1" / "pipelines")
        .and(warp::get())
        .and(with_hub.clone())
        .map(|hub: LiveHub| warp::reply::json(&hub.pipelines()));
    let ready = warp::path("readyz").and(warp::path::end()).map(|| "ready");
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(with_hub.clone())
        .map(|hub: LiveHub| {
            let text = status::metrics(&hub);
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
        });
    let get = warp::path!("api" / "v1" / "pipelines" / String)
        .and(warp::get())
        .and(with_hub.clone())
        .map(
            |name: String, hub: LiveHub| match status::pipeline(&hub, &name) {
                Some(body) => warp::reply::with_status(warp::reply::json(&body), StatusCode::OK),
                None => unknown(&name),
            },
        );
    let live = warp::path!("api" / "v1" / "pipelines" / String / "live")
        .and(warp::get())
        .and(with_hub)
        .and_then(live);
    let routes = dashboard.or(health).or(ready).or(metrics);
    routes.or(list).or(get).or(live).recover(recover)
}

/// The body of a mutating request, at most [`SPEC_BODY_LIMIT`] bytes (413 over it).
fn guarded_body() -> impl Filter<Extract = (bytes::Bytes,), Error = Rejection> + Clone + Send + Sync + 'static {
    warp::header::optional::<u64>("content-length")
        .and_then(|length: Option<u64>| async move {
            if length.unwrap_or(0) > SPEC_BODY_LIMIT {
                Err(warp::reject::payload_too_large())
            } else {
                Ok(())
            }
        })
        .untuple_one()
        .and(warp::body::bytes())
}

/// Every route of a host whose pipelines `manager` runs: the dashboard, health, readiness,
/// metrics, the pipeline endpoints and each pipeline's live stream.
pub fn managed_routes(
    manager: Manager,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let hub = manager.host().live.clone();
    let with = {
        let manager = manager.clone();
        warp::any().map(move || manager.clone())
    };
    let dashboard = warp::path::end()
        .and(warp::get())
        .map(|| warp::reply::html(DASHBOARD));
    let health = warp::path("healthz").and(warp::path::end()).map(|| "ok");
    let ready = warp::path("readyz")
        .and(warp::path::end())
        .and(with.clone())
        .map(|m: Manager| {
            if m.ready() {
                warp::reply::with_status(warp::reply::json(&"ready"), StatusCode::OK)
            } else {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_ready",
                    "Not every pipeline is running or finished; see /api/v1/pipelines.",
                )
            }
        });
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(with)
        .then(|m: Manager| async move {
            let text = metrics::render(&m).await;
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
        });
    let live = warp::path!("api" / "v1" / "pipelines" / String / "live")
        .and(warp::get())
        .and(warp::any().map(move || hub.clone()))
        .and_then(live);
    let pipelines = pipelines::reads(manager.clone()).or(pipelines::writes(manager, guarded_body()));
    dashboard
        .or(health)
        .or(ready)
        .or(metrics)
        .or(live)
        .or(pipelines)
        .recover(recover)
}

/// Serves [`managed_routes`] on `addr` until the process ends; returns the bound address.
pub async fn serve_managed(addr: SocketAddr, manager: Manager) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("Cannot listen on {addr}: {e}. Choose a free address with --api.")
    })?;
    let bound = listener.local_addr()?;
    tokio::spawn(warp::serve(managed_routes(manager)).incoming(listener).run());
    tracing::info!(
        "Serving the dashboard on http://{bound}/ and the API under http://{bound}/api/v1/."
    );
    Ok(bound)
}

/// Serves `routes` on `addr` until the process ends; returns the bound address.
pub async fn serve(addr: SocketAddr, hub: LiveHub) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("Cannot listen on {addr}: {e}. Choose a free address with --listen.")
    })?;
    let bound = listener.local_addr()?;
    tokio::spawn(warp::serve(routes(hub)).incoming(listener).run());
    tracing::info!(
        "Serving the dashboard on http://{bound}/ and the API under http://{bound}/api/v1/."
    );
    Ok(bound)
}

async fn live(name: String, hub: LiveHub) -> Result<Box<dyn Reply>, Rejection> {
    let Some((recent, rx)) = hub.subscribe(&name) else {
        return Ok(Box::new(unknown(&name)));
    };
    let recent = futures::stream::iter(recent);
    let next = tokio_stream_shim::stream(rx);
    let events = recent.chain(next).map(|text| {
        Ok::<_, Infallible>(
            warp::sse::Event::default()
                .event("message")
                .data(text.to_string()),
        )
    });
    Ok(Box::new(warp::sse::reply(
        warp::sse::keep_alive().stream(events),
    )))
}

fn unknown(name: &str) -> warp::reply::WithStatus<warp::reply::Json> {
    error(
        StatusCode::NOT_FOUND,
        "pipeline_not_found",
        &format!("No pipeline is named `{name}`."),
    )
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    details: serde_json::Value,
}

fn error(
    status: StatusCode,
    code: &str,
    message: &str,
) -> warp::reply::WithStatus<warp::reply::Json> {
    let body = ErrorBody {
        code,
        message,
        details: serde_json::Value::Null,
    };
    warp::reply::with_status(warp::reply::json(&body), status)
}

async fn recover(rejection: Rejection) -> Result<impl Reply, Infallible> {
    if rejection.is_not_found() {
        return Ok(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such endpoint.",
        ));
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed here.",
        ));
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is over the size limit.",
        ));
    }
    tracing::warn!(?rejection, "An API request was rejected.");
    Ok(error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "The request could not be handled.",
    ))
}
