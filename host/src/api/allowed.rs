//! 405 answers with an `Allow` header: the methods of each path are read from the OpenAPI
//! document (the route table both the document and the routes follow), so a request with a
//! method a known path does not serve gets `405` listing the ones it does.

use std::sync::OnceLock;

use warp::http::{Method, StatusCode};
use warp::path::FullPath;
use warp::{Filter, Rejection, Reply};

use super::error::ApiError;

/// Each documented path (split into segments, `{x}` matching any one segment) with its
/// methods.
type Table = Vec<(Vec<String>, Vec<String>)>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let doc: serde_json::Value =
            serde_json::from_str(super::OPENAPI).expect("openapi.json is valid JSON (tested)");
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .filter(|k| *k != "parameters")
                    .map(|k| k.to_ascii_uppercase())
                    .collect();
                (segments(&path).map(str::to_owned).collect(), methods)
            })
            .collect()
    })
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The documented methods of `path`, or `None` for an unknown path.
pub fn methods(path: &str) -> Option<&'static [String]> {
    let wanted: Vec<&str> = segments(path).collect();
    table().iter().find_map(|(pattern, methods)| {
        let matches = pattern.len() == wanted.len()
            && pattern
                .iter()
                .zip(&wanted)
                .all(|(p, w)| p.starts_with('{') || p == w);
        matches.then_some(methods.as_slice())
    })
}

/// The last route: answers 405 with `Allow` when the path is known and the method is not
/// one of its methods; rejects (not found) otherwise, leaving the other routes' rejections
/// to `recover`.
pub fn fallback() -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    warp::path::full()
        .and(warp::method())
        .and_then(|path: FullPath, method: Method| async move {
            match methods(path.as_str()) {
                Some(allowed) if !allowed.iter().any(|m| m == method.as_str()) => {
                    let error = ApiError::new(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        format!(
                            "{} {} is not served; this endpoint accepts {}.",
                            method,
                            path.as_str(),
                            allowed.join(", ")
                        ),
                    );
                    let allow = allowed.join(", ");
                    Ok(warp::reply::with_header(error, "allow", allow).into_response())
                }
                _ => Err(warp::reject::not_found()),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_come_from_the_document() {
        assert_eq!(methods("/api/v1/plugins").unwrap(), ["GET", "POST"]);
        assert_eq!(
            methods("/api/v1/plugins/x@1.0.0").unwrap(),
            ["DELETE", "GET"]
        );
        assert_eq!(methods("/").unwrap(), ["GET"]);
        assert!(methods("/api/v1/nothing").is_none());
        assert!(
            methods("/api/v1/pipelines/a/pause")
                .unwrap()
                .contains(&"POST".to_owned())
        );
    }
}
