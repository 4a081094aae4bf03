//! The Kafka Connect–compatible REST face of the host (`sluice run --connect-api ADDR`), so
//! that Connect clients (kcctl, Connect UIs, Terraform providers, Python clients) manage
//! pipelines unchanged. A pipeline is a connector of class [`config::CLASS`]; its config map
//! is described in [`config`] and docs/connect.md. It is a second face of the same manager as
//! `/api/v1`, on its own listener (Connect's `GET /` is version info, not the dashboard),
//! behind the same guard (tokens, Host names, cross-site rule) and body limits.
//!
//! | method and path                                  | answer                                |
//! |--------------------------------------------------|---------------------------------------|
//! | `GET /`                                          | 200 `{version, commit, kafka_cluster_id}` |
//! | `GET /connectors[?expand=status&expand=info]`     | 200 names, or `{name: {status, info}}` |
//! | `POST /connectors` `{name, config}`               | 201 info; 409 exists; 400             |
//! | `GET /connectors/{name}`                          | 200 info                              |
//! | `GET`/`PUT /connectors/{name}/config`             | 200 config / 201 created, 200 updated |
//! | `GET /connectors/{name}/status`                   | 200 state of the connector and tasks  |
//! | `PUT /connectors/{name}/pause`, `/resume`         | 202                                   |
//! | `PUT /connectors/{name}/stop`                     | 204                                   |
//! | `POST /connectors/{name}/restart[?includeTasks&onlyFailed]` | 204, or 202 with the states |
//! | `GET /connectors/{name}/tasks`                    | 200 `[{id, config}]`                  |
//! | `GET /connectors/{name}/tasks/{id}/status`        | 200 `{id, state, worker_id}`          |
//! | `POST /connectors/{name}/tasks/{id}/restart`      | 204 (restarts the pipeline's run)     |
//! | `GET /connectors/{name}/topics`                   | 200 `{name: {topics}}`                |
//! | `GET`/`PATCH`/`DELETE /connectors/{name}/offsets` | 200; changes only when stopped (400)  |
//! | `DELETE /connectors/{name}`                       | 204                                   |
//! | `GET /connector-plugins[?connectorsOnly=false]`   | 200 `[{class, type, version}]`        |
//!
//! Errors are Connect's `{"error_code": 404, "message": "..."}`.

pub mod config;
mod handlers;
pub mod views;

use std::convert::Infallible;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::error::{ApiError, from_rejection};
use super::plugins::decode;
use super::state::ApiState;
use handlers::Connect;

/// A handler's answer.
type Answer = Result<Response, ApiError>;

/// Every route of the Connect face; `worker` is the address it is served on (Connect's
/// `worker_id`).
pub fn routes(state: ApiState, worker: String) -> BoxedFilter<(Response,)> {
    let limit = state.limits.spec_bytes;
    let guard = super::guard::filter(state.access.clone());
    let connect = Connect::new(state, worker);
    let with = warp::any().map(move || connect.clone());
    let body = warp::body::content_length_limit(limit).and(super::body::bytes());
    let name = || warp::path::param::<String>().map(|n: String| decode(&n));
    let query = || warp::query::raw().or(warp::any().map(String::new)).unify();
    let root = warp::path::end()
        .and(warp::get())
        .and(with.clone())
        .map(|c: Connect| c.root());
    let list = warp::path!("connectors")
        .and(warp::get())
        .and(query())
        .and(with.clone())
        .then(|q: String, c: Connect| async move { c.list(&q).await });
    let create = warp::path!("connectors")
        .and(warp::post())
        .and(body)
        .and(with.clone())
        .then(|b, c: Connect| async move { c.create(b).await });
    let connector = warp::path("connectors").and(name());
    let get = connector
        .and(warp::path::end())
        .and(warp::get())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.info(&n).await.map(|i| json(&i)) });
    let delete = connector
        .and(warp::path::end())
        .and(warp::delete())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.delete(&n).await });
    let get_config = connector
        .and(warp::path!("config"))
        .and(warp::get())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.info(&n).await.map(|i| json(&i.config)) });
    let put_config = connector
        .and(warp::path!("config"))
        .and(warp::put())
        .and(body)
        .and(with.clone())
        .then(|n: String, b, c: Connect| async move { c.put_config(&n, b).await });
    let status = connector
        .and(warp::path!("status"))
        .and(warp::get())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.status(&n).await.map(|s| json(&s)) });
    let action = connector
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::put())
        .and(with.clone())
        .then(|n: String, a: String, c: Connect| async move { c.action(&n, &a).await });
    let restart = connector
        .and(warp::path!("restart"))
        .and(warp::post())
        .and(query())
        .and(with.clone())
        .then(|n: String, q: String, c: Connect| async move { c.restart(&n, &q).await });
    let tasks = connector
        .and(warp::path!("tasks"))
        .and(warp::get())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.tasks(&n).await });
    let task_status = connector
        .and(warp::path!("tasks" / usize / "status"))
        .and(warp::get())
        .and(with.clone())
        .then(|n: String, t, c: Connect| async move { c.task_status(&n, t).await });
    let task_restart = connector
        .and(warp::path!("tasks" / usize / "restart"))
        .and(warp::post())
        .and(with.clone())
        .then(|n: String, t, c: Connect| async move { c.task_restart(&n, t).await });
    let topics = connector
        .and(warp::path!("topics"))
        .and(warp::get())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.topics(&n).await });
    let offsets = connector
        .and(warp::path!("offsets"))
        .and(warp::get())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.offsets(&n).await });
    let alter_offsets = connector
        .and(warp::path!("offsets"))
        .and(warp::patch())
        .and(body)
        .and(with.clone())
        .then(|n: String, b, c: Connect| async move { c.alter_offsets(&n, b).await });
    let reset_offsets = connector
        .and(warp::path!("offsets"))
        .and(warp::delete())
        .and(with.clone())
        .then(|n: String, c: Connect| async move { c.reset_offsets(&n).await });
    let plugins = warp::path!("connector-plugins")
        .and(warp::get())
        .and(query())
        .and(with)
        .map(|q: String, c: Connect| c.plugins(&q));
    // Each route boxed: one long `or` chain of warp filters takes rustc minutes to type.
    let routes: Vec<BoxedFilter<(Answer,)>> = vec![
        root.boxed(),
        list.boxed(),
        create.boxed(),
        get.boxed(),
        delete.boxed(),
        get_config.boxed(),
        put_config.boxed(),
        status.boxed(),
        action.boxed(),
        restart.boxed(),
        tasks.boxed(),
        task_status.boxed(),
        task_restart.boxed(),
        topics.boxed(),
        offsets.boxed(),
        alter_offsets.boxed(),
        reset_offsets.boxed(),
        plugins.boxed(),
    ];
    let all = routes
        .into_iter()
        .reduce(|a, b| a.or(b).unify().boxed())
        .expect("routes")
        .map(|answer: Result<Response, ApiError>| answer.unwrap_or_else(error));
    guard.and(all).recover(recover).unify().boxed()
}

/// A JSON 200.
fn json(body: &impl serde::Serialize) -> Response {
    warp::reply::json(body).into_response()
}

/// A status without a body.
fn empty(status: StatusCode) -> Response {
    warp::reply::with_status(warp::reply(), status).into_response()
}

/// Connect's error body for an API error.
fn error(error: ApiError) -> Response {
    let status = error.status;
    let message = crate::redact::text(&error.message);
    let body = views::ErrorMessage {
        error_code: status.as_u16(),
        message,
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let mut api = from_rejection(&rejection);
    if api.code == "not_found" {
        api.message = "Not found: this is the Kafka Connect REST API of a sluice host (GET \
                       /connectors lists its pipelines; /api/v1 is on its --api address)."
            .into();
    }
    Ok(error(api))
}
