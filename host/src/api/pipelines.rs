//! The pipeline endpoints under `/api/v1/pipelines` (the route table the OpenAPI document
//! describes):
//!
//! | method and path                                     | answer                               |
//! |-----------------------------------------------------|--------------------------------------|
//! | `GET /api/v1/pipelines`                             | 200 `[{name, state, file, plugins, last_error, shadow}]` |
//! | `POST /api/v1/pipelines` (YAML or JSON spec)        | 201 pipeline; 400, 409, 415          |
//! | `GET /api/v1/pipelines/{name}`                      | 200 `{name, file, spec, status}`; 404 |
//! | `PUT /api/v1/pipelines/{name}`                      | 200 replaced, 201 created; 400, 415  |
//! | `DELETE /api/v1/pipelines/{name}`                   | 204; 404                             |
//! | `POST /api/v1/pipelines/{name}/pause`               | 202 status                           |
//! | `POST /api/v1/pipelines/{name}/resume`              | 202 status                           |
//! | `POST /api/v1/pipelines/{name}/restart`             | 202 status                           |
//! | `GET /api/v1/pipelines/{name}/offsets`              | 200 `{partitions: [{partition, offset}]}` |
//! | `PUT /api/v1/pipelines/{name}/offsets`              | 200; 409 unless paused or stopped    |
//! | `GET /api/v1/pipelines/{name}/connectors`           | 200 `[{name, kind, type, state, status}]` |
//! | `POST /api/v1/pipelines/{name}/connectors/{c}/restart` | 202 status (restarts the run)     |
//! | `POST /api/v1/pipelines:plan` `{specs: [{file, text}], complete}` | 200 plan (nothing applied) |
//! | `/api/v1/pipelines/{name}/shadow[/promote]`         | shadow runs ([`shadow`])             |
//!
//! A spec body is YAML (`application/yaml`, `text/yaml`, `application/x-yaml`) or JSON
//! (`application/json`, stored as YAML); its `name` names the pipeline. Every error is
//! JSON `{code, message, details}`; an invalid spec is 400 `invalid_spec` with
//! `details.errors: [{line, column, path, message}]`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::ApiError;
use super::state::ApiState;
use crate::manager::state::SpecErrorView;
use crate::manager::{Manager, ManagerError, OffsetsRequest, PartitionOffset};

mod shadow;

/// The spec content types a create or replace accepts.
const YAML_TYPES: [&str; 3] = ["application/yaml", "text/yaml", "application/x-yaml"];

impl From<ManagerError> for ApiError {
    fn from(error: ManagerError) -> Self {
        let message = error.to_string();
        match error {
            ManagerError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "pipeline_not_found", message)
            }
            ManagerError::NoShadow(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "shadow_not_found", message)
            }
            ManagerError::ConnectorNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "connector_not_found", message)
            }
            ManagerError::Exists(_) => {
                ApiError::new(StatusCode::CONFLICT, "pipeline_exists", message)
            }
            ManagerError::Invalid(errors) => {
                let list: Vec<SpecErrorView> = errors.0.iter().map(SpecErrorView::from).collect();
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_spec",
                    "The spec is not valid.",
                )
                .with_details(json!({ "errors": list }))
            }
            ManagerError::Refused(errors) => {
                let list: Vec<SpecErrorView> = errors.0.iter().map(SpecErrorView::from).collect();
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "refused_by_policy",
                    "The spec uses what this host does not grant to specs from the API; each \
                     error names the option the operator grants it with.",
                )
                .with_details(json!({ "errors": list }))
            }
            ManagerError::NameMismatch { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "name_mismatch", message)
            }
            ManagerError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            ManagerError::Unsupported(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "unsupported", message)
            }
            ManagerError::BadRequest(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
            }
            ManagerError::Internal(error) => ApiError::internal(format!("{error:#}")),
        }
    }
}

type Answer = Result<Response, ApiError>;

/// `body` as JSON with its credentials masked (specs, connector configs and errors hold
/// URLs and properties as written).
fn reply(status: StatusCode, body: &impl serde::Serialize) -> Answer {
    let mut json = serde_json::to_value(body).map_err(|e| ApiError::internal(e.to_string()))?;
    crate::redact::json(&mut json);
    Ok(warp::reply::with_status(warp::reply::json(&json), status).into_response())
}

/// The spec text of a request body, by content type.
fn spec_text(content_type: Option<&str>, body: &Bytes) -> Result<String, ApiError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = || {
        std::str::from_utf8(body).map(str::to_owned).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "The body is not UTF-8 text.",
            )
        })
    };
    if YAML_TYPES.contains(&media.as_str()) {
        return text();
    }
    if media == "application/json" {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("The body is not valid JSON: {e}."),
            )
        })?;
        return serde_yaml::to_string(&value).map_err(ApiError::internal);
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "A spec is sent as YAML (Content-Type: application/yaml) or JSON (application/json), \
             not `{}`.",
            if media.is_empty() {
                "no content type"
            } else {
                &media
            }
        ),
    ))
}

async fn create(manager: Manager, content_type: Option<String>, body: Bytes) -> Answer {
    let text = spec_text(content_type.as_deref(), &body)?;
    let detail = manager.create(&text).await?;
    reply(StatusCode::CREATED, &detail)
}

async fn put(name: String, manager: Manager, content_type: Option<String>, body: Bytes) -> Answer {
    let text = spec_text(content_type.as_deref(), &body)?;
    let (detail, created) = manager.put(&name, &text).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    reply(status, &detail)
}

/// `pause`, `resume` or `restart` (any other path segment is not this route).
enum Action {
    Pause,
    Resume,
    Restart,
}

impl std::str::FromStr for Action {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "pause" => Ok(Action::Pause),
            "resume" => Ok(Action::Resume),
            "restart" => Ok(Action::Restart),
            _ => Err(()),
        }
    }
}

async fn action(name: String, action: Action, manager: Manager) -> Answer {
    let status = match action {
        Action::Pause => manager.pause(&name).await?,
        Action::Resume => manager.resume(&name).await?,
        Action::Restart => manager.restart(&name).await?,
    };
    reply(StatusCode::ACCEPTED, &status)
}

/// `PUT .../offsets` body: `{partitions: [...]}` or `{reset: earliest|latest}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OffsetsBody {
    #[serde(default)]
    partitions: Option<Vec<PartitionOffset>>,
    #[serde(default)]
    reset: Option<String>,
}

fn offsets_request(body: &Bytes) -> Result<OffsetsRequest, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_offsets", message);
    let parsed: OffsetsBody = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "The body must be JSON {{\"partitions\": [{{\"partition\": 0, \"offset\": 42}}]}} or \
             {{\"reset\": \"earliest\"|\"latest\"}}: {e}."
        ))
    })?;
    match (parsed.partitions, parsed.reset.as_deref()) {
        (Some(list), None) if list.iter().all(|p| p.offset >= 0) => {
            Ok(OffsetsRequest::Partitions(list))
        }
        (Some(_), None) => Err(bad("An offset must be 0 or more.".into())),
        (None, Some("earliest")) => Ok(OffsetsRequest::Earliest),
        (None, Some("latest")) => Ok(OffsetsRequest::Latest),
        (None, Some(other)) => Err(bad(format!(
            "`reset` is `earliest` or `latest`, not `{other}`."
        ))),
        _ => Err(bad(
            "Give either `partitions` or `reset`, not both or neither.".into(),
        )),
    }
}

async fn get_offsets(name: String, manager: Manager) -> Answer {
    let partitions = manager.offsets(&name).await?;
    reply(StatusCode::OK, &json!({ "partitions": partitions }))
}

async fn put_offsets(
    name: String,
    manager: Manager,
    content_type: Option<String>,
    body: Bytes,
) -> Answer {
    let media = content_type.unwrap_or_default();
    if media.split(';').next().map(str::trim) != Some("application/json") {
        return Err(ApiError::unsupported_media_type(
            "Offsets are sent as JSON (Content-Type: application/json).",
        ));
    }
    let request = offsets_request(&body)?;
    let partitions = manager.set_offsets(&name, request).await?;
    reply(StatusCode::OK, &json!({ "partitions": partitions }))
}

async fn detail(name: String, manager: Manager) -> Answer {
    reply(StatusCode::OK, &manager.detail(&name).await?)
}

async fn delete(name: String, manager: Manager) -> Answer {
    manager.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn connectors(name: String, manager: Manager) -> Answer {
    reply(StatusCode::OK, &manager.connectors(&name).await?)
}

async fn restart_connector(name: String, connector: String, manager: Manager) -> Answer {
    reply(
        StatusCode::ACCEPTED,
        &manager.restart_connector(&name, &connector).await?,
    )
}

/// Turns a handler's result into a reply (errors as JSON).
fn respond(result: Answer) -> Response {
    result.unwrap_or_else(|e| e.into_response())
}

/// Every route of a managed host: the pipeline endpoints, `/readyz` and `/metrics`.
/// Mutating routes go through the bearer-token filter, then the body limit.
pub fn routes(manager: Manager, state: &ApiState) -> BoxedFilter<(Response,)> {
    reads(manager.clone())
        .or(writes(manager, state))
        .unify()
        .boxed()
}

fn reads(manager: Manager) -> BoxedFilter<(Response,)> {
    let manager_for_cluster = manager.clone();
    let with = warp::any().map(move || manager.clone());
    let list = warp::path!("api" / "v1" / "pipelines")
        .and(warp::get())
        .and(with.clone())
        .map(|m: Manager| respond(reply(StatusCode::OK, &m.list())));
    let get = warp::path!("api" / "v1" / "pipelines" / String)
        .and(warp::get())
        .and(with.clone())
        .then(detail)
        .map(respond);
    let offsets = warp::path!("api" / "v1" / "pipelines" / String / "offsets")
        .and(warp::get())
        .and(with.clone())
        .then(get_offsets)
        .map(respond);
    let connectors = warp::path!("api" / "v1" / "pipelines" / String / "connectors")
        .and(warp::get())
        .and(with.clone())
        .then(connectors)
        .map(respond);
    let ready = warp::path("readyz")
        .and(warp::path::end())
        .and(warp::get())
        .and(with.clone())
        .map(|m: Manager| {
            if m.ready() {
                "ready".into_response()
            } else {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_ready",
                    "Not every pipeline is running or finished; see /api/v1/pipelines.",
                )
                .into_response()
            }
        });
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(with)
        .then(|m: Manager| async move {
            let text = super::metrics::render(&m).await;
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
                .into_response()
        });
    let shadow = shadow::reads(manager_for_cluster.clone());
    list.or(get)
        .unify()
        .or(shadow)
        .unify()
        .or(super::cluster::route(manager_for_cluster))
        .unify()
        .or(offsets)
        .unify()
        .or(connectors)
        .unify()
        .or(ready)
        .unify()
        .or(metrics)
        .unify()
        .boxed()
}

fn writes(manager: Manager, state: &ApiState) -> BoxedFilter<(Response,)> {
    let shadow = shadow::writes(manager.clone(), state);
    let with = warp::any().map(move || manager.clone());
    let body = warp::body::content_length_limit(state.limits.spec_bytes).and(super::body::bytes());
    let content_type = warp::header::optional::<String>("content-type");
    let create = warp::path!("api" / "v1" / "pipelines")
        .and(warp::post())
        .and(with.clone())
        .and(content_type)
        .and(body)
        .then(create)
        .map(respond);
    let put = warp::path!("api" / "v1" / "pipelines" / String)
        .and(warp::put())
        .and(with.clone())
        .and(content_type)
        .and(body)
        .then(put)
        .map(respond);
    let delete = warp::path!("api" / "v1" / "pipelines" / String)
        .and(warp::delete())
        .and(with.clone())
        .then(delete)
        .map(respond);
    let action = warp::path!("api" / "v1" / "pipelines" / String / Action)
        .and(warp::post())
        .and(with.clone())
        .then(action)
        .map(respond);
    let offsets = warp::path!("api" / "v1" / "pipelines" / String / "offsets")
        .and(warp::put())
        .and(with.clone())
        .and(content_type)
        .and(body)
        .then(put_offsets)
        .map(respond);
    let plan = warp::path!("api" / "v1" / "pipelines:plan")
        .and(warp::post())
        .and(with.clone())
        .and(body)
        .then(plan)
        .map(respond);
    let restart =
        warp::path!("api" / "v1" / "pipelines" / String / "connectors" / String / "restart")
            .and(warp::post())
            .and(with)
            .then(restart_connector)
            .map(respond);
    create
        .or(put)
        .unify()
        .or(delete)
        .unify()
        .or(action)
        .unify()
        .or(offsets)
        .unify()
        .or(restart)
        .unify()
        .or(plan)
        .unify()
        .or(shadow)
        .unify()
        .boxed()
}

/// `POST /api/v1/pipelines:plan` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanRequest {
    specs: Vec<crate::manager::plan::PlanSpec>,
    /// The specs are the whole folder: pipelines none of them names would be deleted.
    #[serde(default = "yes")]
    complete: bool,
}

fn yes() -> bool {
    true
}

/// What applying the specs would do (200 either way; `changes` counts the changes).
async fn plan(manager: Manager, body: Bytes) -> Answer {
    let request: PlanRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("The body is not a plan request ({{\"specs\": [{{\"file\", \"text\"}}], \"complete\": true}}): {e}."),
        )
    })?;
    let plan = manager.plan(request.specs, request.complete).await;
    reply(StatusCode::OK, &plan)
}
