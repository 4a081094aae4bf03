//! `/api/v1/plugins`: list, get, upload and delete plugins. Uploads are checked and stored by
//! `install`; a plugin is named by `name`, `name@version` or `name@<requirement>`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value as Json, json};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::error::ApiError;
use super::install;
use super::state::ApiState;
use crate::wasm::Plugin;

/// The plugin routes.
pub fn routes(state: ApiState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let all = warp::path!("api" / "v1" / "plugins");
    let one = warp::path!("api" / "v1" / "plugins" / String);
    let list = all
        .and(warp::get())
        .and(state.with())
        .map(|state: ApiState| {
            let plugins: Vec<Json> = state.registry.all().map(|p| view(&state, &p)).collect();
            warp::reply::json(&plugins)
        });
    let upload = all
        .and(warp::post())
        .and(wasm_body(state.limits.plugin_bytes))
        .and(state.with())
        .and_then(upload);
    let get = one.and(warp::get()).and(state.with()).and_then(get);
    let delete = one.and(warp::delete()).and(state.with()).and_then(delete);
    list.or(upload).or(get).or(delete)
}

/// The body of an upload: `Content-Type: application/wasm` (415 otherwise), at most
/// `limit` bytes (413 otherwise).
fn wasm_body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|content_type: Option<String>| async move {
            let essence = content_type
                .as_deref()
                .and_then(|t| t.split(';').next())
                .map(|t| t.trim().to_ascii_lowercase());
            if essence.as_deref() == Some("application/wasm") {
                Ok(())
            } else {
                Err(warp::reject::custom(ApiError::unsupported_media_type(
                    format!(
                        "Upload the component as `Content-Type: application/wasm` (got {}).",
                        content_type.map_or("none".into(), |t| format!("`{t}`"))
                    ),
                )))
            }
        })
        .untuple_one()
        .and(
            warp::body::content_length_limit(limit).or_else(move |_| async move {
                Err::<(), _>(warp::reject::custom(too_large(limit)))
            }),
        )
        .and(super::body::bytes())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::payload_too_large(format!(
        "The component is larger than the host accepts ({limit} bytes, --api-max-plugin-bytes), \
         or the request has no Content-Length."
    ))
}

async fn upload(body: Bytes, state: ApiState) -> Result<warp::reply::Response, Rejection> {
    // One compile at a time: a burst of uploads queues instead of taking every core.
    let slot = state
        .compiles
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    let (status, answer) = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        install::install(&state, &body)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(warp::reply::with_status(warp::reply::json(&answer), status).into_response())
}

async fn get(id: String, state: ApiState) -> Result<warp::reply::Response, Rejection> {
    let id = decode(&id);
    let plugin = find(&state, &id)?;
    let mut body = view(&state, &plugin);
    let versions: Vec<String> = state
        .registry
        .versions(&plugin.name)
        .iter()
        .map(|p| p.version.to_string())
        .collect();
    body["versions"] = json!(versions);
    Ok(warp::reply::json(&body).into_response())
}

async fn delete(id: String, state: ApiState) -> Result<warp::reply::Response, Rejection> {
    let id = decode(&id);
    let plugin = match id.split_once('@') {
        Some((name, version)) => exact(&state, name, version)?,
        None => only_version(&state, &id)?,
    };
    install::uninstall(&state, &plugin)?;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// `name@version` exactly.
fn exact(state: &ApiState, name: &str, version: &str) -> Result<Arc<Plugin>, ApiError> {
    let parsed = semver::Version::parse(version).map_err(|e| {
        ApiError::bad_request(
            "invalid_plugin_id",
            format!("`{name}@{version}`: name one exact version, such as `{name}@0.1.0` ({e})."),
        )
    })?;
    state.registry.get(name, &parsed).ok_or_else(|| {
        ApiError::not_found(
            "plugin_not_found",
            format!("No plugin `{name}@{version}` is installed; GET /api/v1/plugins lists them."),
        )
    })
}

/// The plugin `id` names: `name` (newest), `name@1.2.3` or `name@^1.2`.
fn find(state: &ApiState, id: &str) -> Result<Arc<Plugin>, ApiError> {
    let name = id.split_once('@').map_or(id, |(n, _)| n);
    if state.registry.versions(name).is_empty() {
        return Err(ApiError::not_found(
            "plugin_not_found",
            format!("No plugin is named `{name}`; GET /api/v1/plugins lists them."),
        ));
    }
    state.registry.resolve(id).map_err(|message| {
        if message.contains("is not a version requirement") {
            ApiError::bad_request("invalid_plugin_id", format!("`{id}`: {message}."))
        } else {
            ApiError::not_found("plugin_not_found", format!("`{id}`: {message}."))
        }
    })
}

/// The only version of `name`; 409 when there are several.
fn only_version(state: &ApiState, name: &str) -> Result<Arc<Plugin>, ApiError> {
    let versions = state.registry.versions(name);
    match versions.as_slice() {
        [] => find(state, name),
        [one] => Ok(one.clone()),
        many => {
            let ids: Vec<String> = many.iter().map(|p| p.id()).collect();
            Err(ApiError::conflict(
                "ambiguous_plugin",
                format!(
                    "`{name}` has several versions ({}); name the one to delete.",
                    ids.join(", ")
                ),
            )
            .with_details(json!({ "versions": ids })))
        }
    }
}

/// The JSON description of a plugin.
pub fn view(state: &ApiState, plugin: &Plugin) -> Json {
    let as_json = |text: &str| serde_json::from_str::<Json>(text).unwrap_or(json!(text));
    json!({
        "id": plugin.id(),
        "name": plugin.name,
        "version": plugin.version.to_string(),
        "kind": plugin.kind,
        "contract": plugin.contract,
        "capabilities": plugin.capabilities,
        "description": plugin.description,
        "config_schema": as_json(&plugin.config_schema),
        "sample_config": as_json(&plugin.sample_config),
        "hash": plugin.hash,
        "size": plugin.size,
        "builtin": !install::installer(state).is_uploaded(plugin),
        "pipelines": state.manager.pipelines_using(&plugin.id()),
    })
}

/// A path segment, percent-decoded (also for the Connect face's connector names).
pub(super) fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}
