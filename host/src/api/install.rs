//! Installing an uploaded plugin: check the bytes (`wasm::precheck`, compile through the
//! engine's compile cache, `wasm::inspect`), run `init` with the plugin's sample config in the
//! sandbox, store the file by content hash under `<state>/plugins/` and register it; and
//! removing an uploaded plugin.
//!
//! Versions: a `name@version` is immutable. Uploading the same bytes again answers 200;
//! other bytes under an installed `name@version` are refused (409): publish a new version,
//! which is installed beside the old one; specs asking for `name@^x.y` resolve to the newest
//! match when their pipeline (re)starts.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value as Json, json};
use sluice_plugin_sdk::rows::{Field, FieldType};
use warp::http::StatusCode;

use super::error::ApiError;
use super::plugins::view;
use super::state::ApiState;
use crate::wasm::{
    Kind, Limits, LoadError, Plugin, PluginError, TransformInstance, WindowInstance, WindowSpec,
};

/// Serialises installs and removals (check, write, register).
static INSTALLS: Mutex<()> = Mutex::new(());

/// Checks, stores and registers `bytes`; returns the status (201 new, 200 already
/// installed) and the plugin's description with the upload's figures.
pub fn install(state: &ApiState, bytes: &[u8]) -> Result<(StatusCode, Json), ApiError> {
    let started = Instant::now();
    crate::wasm::precheck(bytes).map_err(refusal)?;
    let hash = crate::wasm::sha256_hex(bytes);
    let cached = state.engine.is_cached(&hash);
    let compile = Instant::now();
    let (component, hash) = state
        .engine
        .compile(bytes)
        .map_err(|e| refusal(LoadError::Invalid(format!("{e:#}"))))?;
    let compile_ms = compile.elapsed().as_secs_f64() * 1e3;
    let size = bytes.len() as u64;
    let mut plugin =
        crate::wasm::inspect_component(&state.engine, component, hash, size, Path::new(""))
            .map_err(refusal)?;
    let _guard = INSTALLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = state.registry.get(&plugin.name, &plugin.version) {
        return same_version(state, &existing, &plugin);
    }
    let init = init_check(state, &plugin)?;
    state.engine.remember(&plugin.component, &plugin.hash);
    plugin.path = store(state, &plugin, bytes)?;
    let id = plugin.id();
    let installed = state.registry.insert(plugin);
    let mut body = view(state, &installed);
    body["compile_ms"] = json!(round(compile_ms));
    body["cached"] = json!(cached);
    body["init"] = init;
    body["usable_ms"] = json!(round(started.elapsed().as_secs_f64() * 1e3));
    tracing::info!(plugin = %id, hash = %installed.hash, compile_ms = round(compile_ms), cached,
        "A plugin was uploaded and installed.");
    Ok((StatusCode::CREATED, body))
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The same `name@version` is installed: fine if it is the same file, 409 otherwise.
fn same_version(
    state: &ApiState,
    existing: &Plugin,
    new: &Plugin,
) -> Result<(StatusCode, Json), ApiError> {
    if existing.hash == new.hash {
        let mut body = view(state, existing);
        body["cached"] = json!(true);
        return Ok((StatusCode::OK, body));
    }
    Err(ApiError::conflict(
        "plugin_version_exists",
        format!(
            "{} is already installed with other content (sha256 {}); a version is immutable: \
             give the new build a higher version in its metadata and upload it again.",
            existing.id(),
            existing.hash
        ),
    )
    .with_details(
        json!({ "id": existing.id(), "installed_hash": existing.hash, "uploaded_hash": new.hash }),
    ))
}

/// Runs `init` with the sample config (`{}` without one). A trap or a sandbox limit refuses
/// the plugin (422); an `err` answer is reported but does not refuse it, since `init` may
/// also refuse the sample input schema the host makes up here.
fn init_check(state: &ApiState, plugin: &Plugin) -> Result<Json, ApiError> {
    let config = match plugin.sample_config.trim() {
        "" => "{}",
        text => text,
    };
    let id = plugin.id();
    let limits = Limits::default();
    let (input, result) = match plugin.kind {
        Kind::Transform => {
            let input = vec![field("value", FieldType::Bytes)];
            let made = TransformInstance::new(
                &state.engine,
                &plugin.component,
                &id,
                &limits,
                config,
                &input,
            );
            (input, made.map(|_| ()))
        }
        Kind::Window => {
            let input = vec![field("timestamp", FieldType::Timestamp)];
            let window = WindowSpec {
                event_time: "timestamp".into(),
                size: 3_600_000,
                slide: 3_600_000,
            };
            let made = WindowInstance::new(
                &state.engine,
                &plugin.component,
                &id,
                &limits,
                config,
                &input,
                &window,
            );
            (input, made.map(|_| ()))
        }
    };
    let input: Vec<Json> = input
        .iter()
        .map(|f| json!({ "name": f.name, "type": format!("{:?}", f.ty).to_lowercase() }))
        .collect();
    let accepted = |ok: bool, message: Option<String>| json!({ "config": config, "input": input, "accepted": ok, "message": message });
    match result {
        Ok(()) => Ok(accepted(true, None)),
        Err(PluginError::Init { message, .. }) => Ok(accepted(false, Some(message))),
        Err(error @ (PluginError::Trap { .. } | PluginError::Limit { .. })) => {
            Err(ApiError::unprocessable(
                "init_trapped",
                format!("`init` with the sample config failed: {error}."),
            )
            .with_details(json!({ "config": config })))
        }
        Err(error) => Err(ApiError::unprocessable(
            "incompatible_plugin",
            format!("{error}."),
        )),
    }
}

fn field(name: &str, ty: FieldType) -> Field {
    Field {
        name: name.into(),
        ty,
        nullable: false,
    }
}

/// Writes the component to `<state>/plugins/<name>@<version>-<hash12>.wasm` atomically.
fn store(state: &ApiState, plugin: &Plugin, bytes: &[u8]) -> Result<std::path::PathBuf, ApiError> {
    let dir = state.plugin_dir();
    let path = dir.join(format!("{}-{}.wasm", plugin.id(), &plugin.hash[..12]));
    let tmp = dir.join(format!(".{}.upload", plugin.hash));
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &path));
    written.map_err(|e| {
        ApiError::internal(format!(
            "cannot store the plugin at {}: {e}",
            path.display()
        ))
    })?;
    Ok(path)
}

/// Whether `plugin` was uploaded (it lives in `<state>/plugins`), not shipped with the host.
pub fn is_uploaded(state: &ApiState, plugin: &Plugin) -> bool {
    plugin.path.parent() == Some(state.plugin_dir().as_path())
}

/// Removes an uploaded plugin no pipeline uses.
pub fn uninstall(state: &ApiState, plugin: &Arc<Plugin>) -> Result<(), ApiError> {
    let _guard = INSTALLS.lock().unwrap_or_else(|e| e.into_inner());
    if !is_uploaded(state, plugin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "builtin_plugin",
            format!(
                "{} ships with the host (a plugin folder), it was not uploaded; only uploaded \
                 plugins can be deleted through the API.",
                plugin.id()
            ),
        ));
    }
    let users = state.manager.pipelines_using(&plugin.id());
    if !users.is_empty() {
        return Err(ApiError::conflict(
            "plugin_in_use",
            format!(
                "{} is used by the pipeline(s) {}; change or delete them first.",
                plugin.id(),
                users.join(", ")
            ),
        )
        .with_details(json!({ "pipelines": users })));
    }
    if let Err(error) = std::fs::remove_file(&plugin.path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        return Err(ApiError::internal(format!(
            "cannot remove {}: {error}",
            plugin.path.display()
        )));
    }
    state.registry.remove(&plugin.name, &plugin.version);
    tracing::info!(plugin = %plugin.id(), "An uploaded plugin was deleted.");
    Ok(())
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
