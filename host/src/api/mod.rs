//! The host's HTTP server (warp): the live dashboard at `/`, the live event stream of each
//! pipeline (server-sent events) at `/api/v1/pipelines/{name}/live` and its results view at
//! `/api/v1/pipelines/{name}/results`, the list of pipelines,
//! the plugin endpoints, the OpenAPI document and `/healthz`. Errors are JSON
//! `{code, message, details}` ([`ApiError`], [`recover`]); every request passes
//! [`guard`] (Host, tokens, cross-site) first; [`server`] serves the routes with a
//! connection cap and deadlines; shared handler state is [`ApiState`].

use std::convert::Infallible;

use futures::StreamExt;
use warp::{Filter, Rejection, Reply};

use crate::live::LiveHub;

mod allowed;
pub mod auth;
mod body;
mod cluster;
mod config;
pub mod connect;
mod error;
pub mod guard;
mod install;
mod metrics;
pub mod pipelines;
mod plugins;
pub mod server;
mod state;
mod tokio_stream_shim;

pub use config::{ApiArgs, start, start_face};
pub use error::{ApiError, from_rejection, recover};
pub use server::Face;
pub use state::{ApiState, BodyLimits};

const DASHBOARD: &str = include_str!("dashboard.html");

/// The OpenAPI 3.0 document of every endpoint.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route.
pub fn routes(state: ApiState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let hub = state.live.clone();
    let dashboard = warp::path::end()
        .and(warp::get())
        .map(|| warp::reply::html(DASHBOARD));
    let health = warp::path!("healthz").and(warp::get()).map(|| "ok");
    let with_hub = warp::any().map(move || hub.clone());
    let live = warp::path!("api" / "v1" / "pipelines" / String / "live")
        .and(warp::get())
        .and(with_hub.clone())
        .and_then(live);
    let results = warp::path!("api" / "v1" / "pipelines" / String / "results")
        .and(warp::get())
        .and(warp::query::<ResultsQuery>())
        .and(with_hub)
        .map(results);
    let openapi = warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .map(|| warp::reply::with_header(OPENAPI, "content-type", "application/json"));
    let managed = pipelines::routes(state.manager.clone(), &state);
    let guard = guard::filter(state.access.clone());
    let all = dashboard
        .or(health)
        .or(openapi)
        .or(live)
        .or(results)
        .or(managed)
        .or(plugins::routes(state))
        .or(allowed::fallback());
    guard.and(all).recover(recover)
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

/// `?top=&windows=` of `/results`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultsQuery {
    /// How many of the busiest keys get their recent windows (5).
    top: Option<usize>,
    /// How many recent windows each of them gets (60).
    windows: Option<usize>,
}

/// The pipeline's results view: the latest window of every key and the recent windows of
/// the busiest ones, for a dashboard that opens after the data was processed.
fn results(name: String, query: ResultsQuery, hub: LiveHub) -> Box<dyn Reply> {
    let top = query.top.unwrap_or(5).min(1000);
    let windows = query
        .windows
        .unwrap_or(60)
        .min(crate::live::view::KEEP_WINDOWS);
    match hub.results(&name, top, windows) {
        Some(view) => Box::new(warp::reply::json(&view)),
        None => Box::new(unknown(&name)),
    }
}

fn unknown(name: &str) -> ApiError {
    ApiError::not_found(
        "pipeline_not_found",
        format!("No pipeline is named `{name}`."),
    )
}
