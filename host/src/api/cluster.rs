//! `GET /api/v1/cluster`: the hosts of this host's cluster (`sluice run --cluster`), each
//! with its API address, its pipelines, their tasks, the source partitions each task owns
//! and the consumer lag of those partitions; this host's own record is read live. A host
//! outside any cluster is a cluster of one.

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::error::ApiError;
use crate::manager::Manager;

type Response = warp::reply::Response;

/// The route.
pub fn route(manager: Manager) -> BoxedFilter<(Response,)> {
    let with = warp::any().map(move || manager.clone());
    warp::path!("api" / "v1" / "cluster")
        .and(warp::get())
        .and(with)
        .then(cluster)
        .boxed()
}

async fn cluster(manager: Manager) -> Response {
    let this = manager.host_record().await;
    let id = this.id.clone();
    let shared = manager.cluster();
    let hosts = match &shared {
        None => vec![this],
        Some(cluster) => match cluster.hosts().await {
            Ok(mut hosts) => {
                hosts.retain(|h| h.id != id);
                hosts.push(this);
                hosts.sort_by(|a, b| a.id.cmp(&b.id));
                hosts
            }
            Err(error) => {
                return ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "cluster_unavailable",
                    format!("Cannot read the cluster's host records: {error:#}."),
                )
                .into_response();
            }
        },
    };
    let body = serde_json::json!({
        "this": id,
        "clustered": shared.is_some(),
        "hosts": hosts,
    });
    warp::reply::json(&body).into_response()
}
