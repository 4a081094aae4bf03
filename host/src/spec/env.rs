//! `${VAR}` and `${VAR:-default}` interpolation of spec text, before YAML parsing, so that
//! line numbers stay those of the file. `$${` writes a literal `${`. Comment lines are left
//! alone.

use super::SpecError;

/// Replaces every `${VAR}` / `${VAR:-default}` using `lookup`; an unset variable without a
/// default is an error at its line and column (all of them are reported).
pub fn interpolate(
    file: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<SpecError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        interpolate_line(
            line,
            n + 1,
            &mut out,
            &mut |col, message| {
                errors.push(SpecError::at(file, n + 1, col, message));
            },
            lookup,
        );
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn interpolate_line(
    line: &str,
    line_no: usize,
    out: &mut String,
    error: &mut dyn FnMut(usize, String),
    lookup: &dyn Fn(&str) -> Option<String>,
) {
    let _ = line_no;
    let mut rest = line;
    let mut col = 1;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        col += rest[..pos].chars().count();
        let tail = &rest[pos..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            col += 3;
        } else if let Some(body) = tail.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                error(col, "`${` is not closed by `}` on this line".into());
                out.push_str(tail);
                return;
            };
            let expr = &body[..end];
            match expand(expr, lookup) {
                Ok(value) => out.push_str(&value),
                Err(message) => error(col, message),
            }
            rest = &body[end + 1..];
            col += expr.chars().count() + 3;
        } else {
            out.push('$');
            rest = &tail[1..];
            col += 1;
        }
    }
    out.push_str(rest);
}

fn expand(expr: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, default) = match expr.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (expr, None),
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "`${{{expr}}}`: `{name}` is not an environment variable name"
        ));
    }
    match (lookup(name).filter(|v| !v.is_empty()), default) {
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(format!(
            "environment variable `{name}` is not set; set it or write `${{{name}:-default}}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOPIC" => Some("events".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_set_variables_and_defaults() {
        let text = "topic: ${TOPIC}\nbrokers: ${BROKERS:-embedded}\nx: ${EMPTY:-d}\n";
        let out = interpolate("f.yaml", text, &env).unwrap();
        assert_eq!(out, "topic: events\nbrokers: embedded\nx: d\n");
    }

    #[test]
    fn reports_unset_variables_with_position() {
        let errors = interpolate("f.yaml", "a: 1\nb: x ${NOPE}\n", &env).unwrap_err();
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(
            text.starts_with("f.yaml:2:6: environment variable `NOPE`"),
            "{text}"
        );
    }

    #[test]
    fn escapes_and_comments_and_plain_dollars() {
        let text = "# ${NOPE} in a comment\nprice: $5 $${literal}\n";
        let out = interpolate("f.yaml", text, &env).unwrap();
        assert_eq!(out, "# ${NOPE} in a comment\nprice: $5 ${literal}\n");
    }

    #[test]
    fn rejects_unclosed_and_bad_names() {
        let errors = interpolate("f.yaml", "a: ${OPEN\nb: ${1X}\n", &env).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].to_string().contains("not closed"));
        assert!(
            errors[1]
                .to_string()
                .contains("not an environment variable name")
        );
    }
}
