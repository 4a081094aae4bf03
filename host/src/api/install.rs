//! The REST face of [`crate::wasm::install`]: an upload's answer (201 new, 200 already
//! installed, with the upload's figures) and the status and code of each [`InstallError`].

use serde_json::{Value as Json, json};
use warp::http::StatusCode;

use super::error::ApiError;
use super::plugins::view;
use super::state::ApiState;
use crate::wasm::{InstallError, Installed, Installer, LoadError, Plugin};

/// The installer of the host behind `state`.
pub fn installer(state: &ApiState) -> Installer<'_> {
    Installer {
        engine: &state.engine,
        registry: &state.registry,
        dir: state.plugin_dir(),
    }
}

/// Installs `bytes`; the status and the plugin's description with the upload's figures.
pub fn install(state: &ApiState, bytes: &[u8]) -> Result<(StatusCode, Json), ApiError> {
    let Installed {
        plugin,
        created,
        cached,
        compile_ms,
        usable_ms,
        init,
    } = installer(state).install(bytes)?;
    let mut body = view(state, &plugin);
    body["cached"] = json!(cached);
    if !created {
        return Ok((StatusCode::OK, body));
    }
    let round = |ms: f64| (ms * 1000.0).round() / 1000.0;
    body["compile_ms"] = json!(round(compile_ms));
    body["usable_ms"] = json!(round(usable_ms));
    if let Some(init) = init {
        let input: Vec<Json> = init
            .input
            .iter()
            .map(|f| json!({ "name": f.name, "type": format!("{:?}", f.ty).to_lowercase() }))
            .collect();
        body["init"] = json!({ "config": init.config, "input": input,
            "accepted": init.accepted, "message": init.message });
    }
    Ok((StatusCode::CREATED, body))
}

/// Removes an uploaded plugin no pipeline uses.
pub fn uninstall(state: &ApiState, plugin: &std::sync::Arc<Plugin>) -> Result<(), ApiError> {
    let users = state.manager.pipelines_using(&plugin.id());
    Ok(installer(state).uninstall(plugin, users)?)
}

impl From<InstallError> for ApiError {
    fn from(error: InstallError) -> Self {
        let message = format!("{error}.");
        match error {
            InstallError::Refused(load) => refusal(load),
            InstallError::VersionExists {
                id,
                installed_hash,
                uploaded_hash,
            } => ApiError::conflict("plugin_version_exists", message).with_details(
                json!({ "id": id, "installed_hash": installed_hash, "uploaded_hash": uploaded_hash }),
            ),
            InstallError::InitTrapped { config, .. } => {
                ApiError::unprocessable("init_trapped", message)
                    .with_details(json!({ "config": config }))
            }
            InstallError::Incompatible(_) => ApiError::unprocessable("incompatible_plugin", message),
            InstallError::Io { .. } => ApiError::internal(message),
            InstallError::Builtin(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "builtin_plugin",
                format!("{} through the API.", message.trim_end_matches('.')),
            ),
            InstallError::InUse { pipelines, .. } => ApiError::conflict("plugin_in_use", message)
                .with_details(json!({ "pipelines": pipelines })),
        }
    }
}

/// The API error of a refused upload.
fn refusal(error: LoadError) -> ApiError {
    let (status, code) = match &error {
        LoadError::NotWasm => (StatusCode::BAD_REQUEST, "not_wasm"),
        LoadError::CoreModule => (StatusCode::BAD_REQUEST, "core_module"),
        LoadError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_component"),
        LoadError::Denied(_) => (StatusCode::UNPROCESSABLE_ENTITY, "denied_import"),
        LoadError::Incompatible(_) => (StatusCode::UNPROCESSABLE_ENTITY, "incompatible_plugin"),
        LoadError::UnknownWorld(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_world"),
        LoadError::Metadata(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_metadata"),
    };
    let message = match &error {
        LoadError::NotWasm | LoadError::CoreModule | LoadError::Invalid(_) => {
            format!("The upload is {error}.")
        }
        _ => format!("The plugin is refused: {error}."),
    };
    ApiError::new(status, code, message)
}
