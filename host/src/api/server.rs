//! The API's HTTP/1.1 server: an accept loop over the routes with a connection cap (a
//! connection past it waits in the listen queue until one ends) and a deadline on request
//! headers (slow-header clients are cut off). Request bodies have their own deadline
//! ([`super::body`]); live streams drop readers that fall behind
//! ([`super::tokio_stream_shim`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::ApiState;

/// Connection cap and timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once (`--api-max-connections`).
    pub connections: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: 256,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Which face of the host a listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// The dashboard and `/api/v1` (`--api`).
    Rest,
    /// The Kafka Connect REST API (`--connect-api`).
    Connect,
}

/// Serves the routes of `state` on `addr` until the process ends; returns the bound address.
pub async fn serve(addr: SocketAddr, state: ApiState) -> anyhow::Result<SocketAddr> {
    serve_face(addr, state, Face::Rest).await
}

/// Serves `face` of `state` on `addr` until the process ends; returns the bound address.
pub async fn serve_face(
    addr: SocketAddr,
    mut state: ApiState,
    face: Face,
) -> anyhow::Result<SocketAddr> {
    let option = match face {
        Face::Rest => "--api",
        Face::Connect => "--connect-api",
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("Cannot listen on {addr}: {e}. Choose a free address with {option}.")
    })?;
    let bound = listener.local_addr()?;
    state.access.bound = Some(bound.ip());
    state.access.connect = face == Face::Connect;
    let limits = state.server;
    let routes: BoxedFilter<(Response,)> = match face {
        Face::Rest => super::routes(state).map(Reply::into_response).boxed(),
        Face::Connect => super::connect::routes(state, bound.to_string()),
    };
    let slots = Arc::new(Semaphore::new(limits.connections.max(1)));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("The API could not accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let service = TowerToHyperService::new(warp::service(routes.clone()));
            tokio::spawn(async move {
                let _slot = slot;
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(error) = connection.await {
                    tracing::debug!("An API connection ended with an error: {error}");
                }
            });
        }
    });
    match face {
        Face::Rest => tracing::info!(
            "Serving the dashboard on http://{bound}/ and the API under http://{bound}/api/v1/."
        ),
        Face::Connect => {
            tracing::info!("Serving the Kafka Connect REST API on http://{bound}/.")
        }
    }
    Ok(bound)
}
