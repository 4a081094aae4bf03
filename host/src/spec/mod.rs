//! Pipeline specs: the YAML model (`model`), `${VAR}` interpolation (`env`), loading with
//! every error reported at its file, line and column, and the checks that need no plugin.
//! All YAML parsing of the host goes through [`load_str`], so replacing serde_yaml touches
//! only this module; text nesting brackets deeper than serde_yaml would accept is refused
//! before it reaches the parser.

mod env;
mod locate;
mod model;
mod units;

use std::fmt;
use std::path::Path;

pub use locate::locate;
pub use model::*;
pub use units::{ByteSize, Dur, parse_size_arg};

/// One problem in a spec, at a place in a file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SpecError {
    /// The file (as given).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl SpecError {
    /// An error at `file:line:column`.
    pub fn at(file: &str, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error at the field `path` of the spec `text`.
    pub fn at_path(file: &str, text: &str, path: &[&str], message: impl Into<String>) -> Self {
        let (line, column) = locate(text, path);
        Self::at(file, line, column, message)
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for SpecError {}

/// Several spec errors, shown one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", display_all(.0))]
pub struct SpecErrors(pub Vec<SpecError>);

fn display_all(errors: &[SpecError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A parsed spec with the text it came from (for locating later errors).
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The file name used in messages.
    pub file: String,
    /// The interpolated text.
    pub text: String,
    /// The spec.
    pub spec: PipelineSpec,
}

impl Loaded {
    /// An error at the field `path` of this spec.
    pub fn error(&self, path: &[&str], message: impl Into<String>) -> SpecError {
        SpecError::at_path(&self.file, &self.text, path, message)
    }
}

/// Reads and parses a spec file, interpolating the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, SpecErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError::at(
            &file,
            0,
            0,
            format!("cannot read the file: {e}"),
        )])
    })?;
    load_str(&file, &text, &|name| std::env::var(name).ok())
}

/// Parses spec text; `lookup` resolves `${VAR}`.
pub fn load_str(
    file: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, SpecErrors> {
    let text = env::interpolate(file, text, lookup).map_err(SpecErrors)?;
    if let Some((line, column)) = too_deep(&text) {
        let message = format!(
            "brackets nest more than {MAX_FLOW_DEPTH} levels deep here; a spec needs a few"
        );
        return Err(SpecErrors(vec![SpecError::at(file, line, column, message)]));
    }
    // Externally tagged enums are written as one-key maps (`- lake: {...}`), not YAML tags.
    let deserializer = serde_yaml::Deserializer::from_str(&text);
    let parsed = serde_yaml::with::singleton_map_recursive::deserialize(deserializer);
    let spec: PipelineSpec = parsed.map_err(|e: serde_yaml::Error| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let message = strip_location(&e.to_string());
        SpecErrors(vec![SpecError::at(file, line, column, message)])
    })?;
    let loaded = Loaded {
        file: file.to_owned(),
        text,
        spec,
    };
    let errors = check(&loaded);
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(SpecErrors(errors))
    }
}

/// The deepest `[`/`{` nesting let through to serde_yaml, which refuses more than 128 levels
/// of any nesting, but only after its scanner has spent time quadratic in the depth (30 s for
/// 100,000 levels, a 200 KB spec).
const MAX_FLOW_DEPTH: usize = 128;

/// Line and column (1-based) of the first `[` or `{` nested deeper than [`MAX_FLOW_DEPTH`],
/// counting those outside quoted scalars and comments. Linear in the text.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let (mut depth, mut quote, mut escaped, mut comment) = (0usize, None, false, false);
    let (mut line, mut column, mut previous) = (1, 0, '\n');
    for c in text.chars() {
        column += 1;
        match quote {
            Some(_) if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\n' => comment = false,
            None if comment => {}
            None if c == '#' && previous.is_whitespace() => comment = true,
            // A quote opens a scalar at its start; `''` is a quote inside a single-quoted one.
            None if matches!(c, '"' | '\'') && (opens(previous) || c == '\'' && previous == c) => {
                quote = Some(c)
            }
            None if matches!(c, '[' | '{') => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some((line, column));
                }
            }
            None if matches!(c, ']' | '}') => depth = depth.saturating_sub(1),
            None => {}
        }
        if c == '\n' {
            (line, column) = (line + 1, 0);
        }
        previous = c;
    }
    None
}

/// Whether a scalar may start after `previous`.
fn opens(previous: char) -> bool {
    previous.is_whitespace() || matches!(previous, '[' | '{' | ',' | ':')
}

/// serde_yaml appends " at line L column C"; we print the place first instead.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(pos) => message[..pos].to_owned(),
        None => message.to_owned(),
    }
}

/// Checks that need nothing but the spec.
fn check(loaded: &Loaded) -> Vec<SpecError> {
    let spec = &loaded.spec;
    let mut errors = Vec::new();
    if spec.version != 1 {
        errors.push(loaded.error(
            &["version"],
            format!(
                "spec version {} is not supported; this host reads `version: 1`",
                spec.version
            ),
        ));
    }
    let name_ok = !spec.name.is_empty()
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        errors.push(loaded.error(
            &["name"],
            format!(
                "pipeline name `{}` must be letters, digits, `-` or `_`",
                spec.name
            ),
        ));
    }
    if spec.sinks.is_empty() {
        errors.push(loaded.error(&["sinks"], "a pipeline needs at least one sink"));
    }
    let windows = spec
        .steps
        .iter()
        .filter(|s| matches!(s, StepSpec::Window(_)))
        .count();
    if windows > 1 {
        errors.push(loaded.error(&["steps"], "a pipeline may have at most one window step"));
    }
    for (i, step) in spec.steps.iter().enumerate() {
        if let StepSpec::Window(w) = step {
            let index = i.to_string();
            let path = ["steps", index.as_str(), "window"];
            if w.size.0.is_zero() {
                errors.push(
                    loaded.error(&[&path[..], &["size"]].concat(), "window size must be > 0"),
                );
            }
            if w.slide.is_some_and(|s| s.0.is_zero() || s.0 > w.size.0) {
                errors.push(loaded.error(
                    &[&path[..], &["slide"]].concat(),
                    "slide must be > 0 and at most the window size",
                ));
            }
        }
    }
    if spec
        .errors
        .max_dead_letters
        .as_ref()
        .is_some_and(|m| m.per_records == 0)
    {
        errors.push(loaded.error(
            &["errors", "max_dead_letters", "per_records"],
            "per_records must be > 0",
        ));
    }
    if spec.batch.max_records == 0 {
        errors.push(loaded.error(&["batch", "max_records"], "max_records must be > 0"));
    }
    errors
}

#[cfg(test)]
mod tests;
