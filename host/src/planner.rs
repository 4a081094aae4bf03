//! `sluice plan`: reads the spec files of a folder (or one file), asks a running host what
//! applying them would do (`POST /api/v1/pipelines:plan`), and prints the plan: each pipeline
//! that would start, stop, switch plugins in place or restart, with its field-level diff, and
//! the specs that would be refused. Exit 0: no change; 2: changes; 1: the plan could not be
//! made. Nothing is applied: the folder (or the API) applies.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value as Json, json};

/// `sluice plan` options.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// A folder of `*.yaml` specs (its plan includes deleting the host's pipelines that no
    /// file names), or one spec file.
    #[arg(long, default_value = "pipelines")]
    pub pipelines: PathBuf,
    /// The host's API (`sluice run --api`), e.g. http://127.0.0.1:8080.
    #[arg(long, env = "SLUICE_API_URL")]
    pub api: String,
    /// The host's API token, when it has one.
    #[arg(long, env = "SLUICE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The plan has changes: exit code 2 (the plan is printed).
#[derive(Debug, thiserror::Error)]
#[error("the plan has {0} change(s)")]
pub struct PlanHasChanges(pub usize);

/// Makes and prints the plan.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let (files, complete) = spec_files(&args.pipelines)?;
    let mut specs = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("Cannot read `{}`.", file.display()))?;
        specs.push(json!({ "file": file.display().to_string(), "text": text }));
    }
    let body = json!({ "specs": specs, "complete": complete }).to_string();
    let (status, answer) = post(
        &args.api,
        "/api/v1/pipelines:plan",
        &body,
        args.api_token.as_deref(),
    )?;
    let plan: Json = serde_json::from_str(&answer).with_context(|| {
        format!("The host answered {status} with something that is not JSON: {answer}")
    })?;
    if status != 200 {
        bail!(
            "The host refused the plan ({status}): {}",
            plan["message"].as_str().unwrap_or(&answer)
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", render(&plan));
    }
    match plan["changes"].as_u64().unwrap_or(0) {
        0 => Ok(()),
        n => Err(PlanHasChanges(n as usize).into()),
    }
}

/// The spec files of `path` and whether they are a whole folder.
fn spec_files(path: &Path) -> anyhow::Result<(Vec<PathBuf>, bool)> {
    if path.is_file() {
        return Ok((vec![path.to_owned()], false));
    }
    let files = crate::runtime::spec_files(path)
        .with_context(|| format!("Cannot list the specs of `{}`.", path.display()))?;
    Ok((files, true))
}

/// The plan as text, one block per pipeline.
pub fn render(plan: &Json) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    for item in plan["items"].as_array().unwrap_or(&empty) {
        let (name, action) = (
            item["name"].as_str().unwrap_or("?"),
            item["action"].as_str().unwrap_or("?"),
        );
        let sign = match action {
            "create" => "+",
            "delete" => "-",
            "switch" => "~",
            "restart" => "-/+",
            "invalid" => "!",
            _ => " ",
        };
        let what = match action {
            "create" => "would start".to_owned(),
            "delete" => "would stop and be removed (no file names it)".to_owned(),
            "switch" => "would switch its plugins in place (only its steps change)".to_owned(),
            "restart" => "would restart (fields other than its steps change)".to_owned(),
            "invalid" => "would be refused; the running version (if any) stays".to_owned(),
            _ => "unchanged".to_owned(),
        };
        let state = item["state"]
            .as_str()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        out.push_str(&format!("{sign} {name}{state}: {what}\n"));
        if let Some(file) = item["file"].as_str() {
            out.push_str(&format!("    file: {file}\n"));
        }
        for change in item["diff"].as_array().unwrap_or(&empty) {
            let path = change["path"].as_str().unwrap_or("");
            let value = |v: &Json| {
                if v.is_null() {
                    "(none)".to_owned()
                } else {
                    v.to_string()
                }
            };
            out.push_str(&format!(
                "    {path}: {} -> {}\n",
                value(&change["old"]),
                value(&change["new"])
            ));
        }
        for error in item["errors"].as_array().unwrap_or(&empty) {
            out.push_str(&format!(
                "    error: {}\n",
                error["message"].as_str().unwrap_or("")
            ));
        }
        if let Some(note) = item["note"].as_str() {
            out.push_str(&format!("    note: {note}\n"));
        }
    }
    let changes = plan["changes"].as_u64().unwrap_or(0);
    out.push_str(&match changes {
        0 => "No changes.\n".to_owned(),
        n => format!("Plan: {n} change(s).\n"),
    });
    out
}

/// POSTs JSON `body` to `path` of the API at `base` (`http://host:port`); the status and the
/// body of the answer.
fn post(base: &str, path: &str, body: &str, token: Option<&str>) -> anyhow::Result<(u16, String)> {
    let Some(authority) = base.trim_end_matches('/').strip_prefix("http://") else {
        bail!(
            "--api `{base}`: give the host's API as http://HOST:PORT (https is not supported here)."
        );
    };
    let mut stream = std::net::TcpStream::connect(authority)
        .with_context(|| format!("Cannot reach the host's API at {base}."))?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("No answer from {base}."))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .context("A malformed HTTP answer.")?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .context("A malformed HTTP status line.")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        },
    ))
}

/// The payload of a chunked body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}
