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

/// Serves the routes of `state` on `addr` until the process ends; returns the bound address.
pub async fn serve(addr: SocketAddr, mut state: ApiState) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("Cannot listen on {addr}: {e}. Choose a free address with --api.")
    })?;
    let bound = listener.local_addr()?;
    state.access.bound = Some(bound.ip());
    let limits = state.server;
    let routes = super::routes(state);
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
    tracing::info!(
        "Serving the dashboard on http://{bound}/ and the API under http://{bound}/api/v1/."
    );
    Ok(bound)
}
