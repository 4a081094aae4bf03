//! The shadow-run endpoints of a pipeline ([`crate::manager::shadow`]):
//!
//! | method and path                                     | answer                               |
//! |-----------------------------------------------------|--------------------------------------|
//! | `POST /api/v1/pipelines/{name}/shadow` (candidate spec, YAML or JSON, or `{plugin: name@version}`) | 201 shadow; 400, 404, 409, 415 |
//! | `GET /api/v1/pipelines/{name}/shadow?first=N`       | 200 `{runs, diff, ...}`; 404         |
//! | `POST /api/v1/pipelines/{name}/shadow/promote`      | 200 pipeline (candidate in force); 404 |
//! | `DELETE /api/v1/pipelines/{name}/shadow`            | 204 (discarded); 404                 |

use bytes::Bytes;
use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::{Answer, reply, respond, spec_text};
use crate::api::state::ApiState;
use crate::manager::Manager;
use crate::manager::shadow::FIRST_ROWS;

/// Most differing rows a `GET` shows in full.
const MAX_FIRST: usize = 1_000;

#[derive(Deserialize)]
struct ViewQuery {
    first: Option<usize>,
}

/// `GET .../shadow`.
pub(super) fn reads(manager: Manager) -> BoxedFilter<(Response,)> {
    let with = warp::any().map(move || manager.clone());
    warp::path!("api" / "v1" / "pipelines" / String / "shadow")
        .and(warp::get())
        .and(warp::query::<ViewQuery>())
        .and(with)
        .then(
            |name: String, query: ViewQuery, manager: Manager| async move {
                let first = query.first.unwrap_or(FIRST_ROWS).min(MAX_FIRST);
                reply(StatusCode::OK, &manager.shadow_view(&name, first).await?)
            },
        )
        .map(respond)
        .boxed()
}

/// `POST .../shadow`, `POST .../shadow/promote`, `DELETE .../shadow`.
pub(super) fn writes(manager: Manager, state: &ApiState) -> BoxedFilter<(Response,)> {
    let with = warp::any().map(move || manager.clone());
    let body =
        warp::body::content_length_limit(state.limits.spec_bytes).and(crate::api::body::bytes());
    let start = warp::path!("api" / "v1" / "pipelines" / String / "shadow")
        .and(warp::post())
        .and(with.clone())
        .and(warp::header::optional::<String>("content-type"))
        .and(body)
        .then(start)
        .map(respond);
    let promote = warp::path!("api" / "v1" / "pipelines" / String / "shadow" / "promote")
        .and(warp::post())
        .and(with.clone())
        .then(|name: String, manager: Manager| async move {
            reply(StatusCode::OK, &manager.promote_shadow(&name).await?)
        })
        .map(respond);
    let discard = warp::path!("api" / "v1" / "pipelines" / String / "shadow")
        .and(warp::delete())
        .and(with)
        .then(|name: String, manager: Manager| async move {
            manager.discard_shadow(&name).await?;
            Answer::Ok(StatusCode::NO_CONTENT.into_response())
        })
        .map(respond);
    start.or(promote).unify().or(discard).unify().boxed()
}

/// The plugin reference of a body that is `{plugin: "name@version"}` and nothing else.
fn plugin_form(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_yaml::from_str(text).ok()?;
    let object = value.as_object().filter(|o| o.len() == 1)?;
    object.get("plugin")?.as_str().map(str::to_owned)
}

async fn start(
    name: String,
    manager: Manager,
    content_type: Option<String>,
    body: Bytes,
) -> Answer {
    let mut text = spec_text(content_type.as_deref(), &body)?;
    // `{plugin: turnstile-window@^0.2}`: the live spec with that plugin version.
    if let Some(reference) = plugin_form(&text) {
        text = manager.candidate_with_plugin(&name, &reference)?;
    }
    reply(
        StatusCode::CREATED,
        &manager.start_shadow(&name, &text).await?,
    )
}

#[cfg(test)]
mod tests {
    use super::plugin_form;

    #[test]
    fn a_body_of_one_plugin_reference_is_the_plugin_form() {
        let json_as_yaml = "plugin: turnstile-window@^0.2\n";
        assert_eq!(
            plugin_form(json_as_yaml).as_deref(),
            Some("turnstile-window@^0.2")
        );
        assert_eq!(plugin_form("name: p\nplugin: x@1\n"), None, "a spec");
        assert_eq!(plugin_form("plugin: [x]\n"), None);
        assert_eq!(plugin_form("not: [yaml"), None);
    }
}
