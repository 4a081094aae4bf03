//! Finds the line and column of a spec field from its path (`steps.1.window.event_time`),
//! so that errors found after parsing (unknown plugin, missing field) still point into the
//! file. It reads the YAML text line by line: block mappings and sequences are followed
//! exactly, a flow mapping (`{ a: 1 }`) is searched for the key.

/// Line and column (1-based) of `path` in `text`, or of the deepest part of it found.
pub fn locate(text: &str, path: &[&str]) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let (mut start, mut end) = (0, lines.len());
    let mut found = (1, 1);
    let mut indent_floor: Option<usize> = None;
    for part in path {
        let hit = match part.parse::<usize>() {
            Ok(index) => find_item(&lines, start, end, index, indent_floor),
            Err(_) => find_key(&lines, start, end, part, indent_floor),
        };
        let Some((line, col)) = hit else { break };
        found = (line + 1, col + 1);
        indent_floor = Some(col);
        start = line;
        end = block_end(&lines, line, col);
    }
    found
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// The first line after `line` whose content starts at or left of `col`.
fn block_end(lines: &[&str], line: usize, col: usize) -> usize {
    (line + 1..lines.len())
        .find(|&i| is_content(lines[i]) && content_col(lines[i]) <= col)
        .unwrap_or(lines.len())
}

/// Column of the first content, looking through a leading `- `.
fn content_col(line: &str) -> usize {
    indent(line)
}

fn find_key(
    lines: &[&str],
    start: usize,
    end: usize,
    key: &str,
    floor: Option<usize>,
) -> Option<(usize, usize)> {
    let needle = format!("{key}:");
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        if !is_content(line) {
            continue;
        }
        let mut search_from = 0;
        while let Some(pos) = line[search_from..].find(&needle) {
            let col = search_from + pos;
            let before = line[..col].chars().last();
            let boundary = matches!(before, None | Some(' ' | '{' | ',' | '-'));
            if boundary && floor.is_none_or(|f| col > f || i == start) {
                return Some((i, col));
            }
            search_from = col + needle.len();
        }
    }
    None
}

fn find_item(
    lines: &[&str],
    start: usize,
    end: usize,
    index: usize,
    floor: Option<usize>,
) -> Option<(usize, usize)> {
    let mut seen = 0;
    let mut item_col = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(start + 1) {
        let t = line.trim_start();
        if !t.starts_with("- ") && t != "-" {
            continue;
        }
        let col = indent(line);
        if floor.is_some_and(|f| col < f) || item_col.is_some_and(|c| c != col) {
            continue;
        }
        item_col = Some(col);
        if seen == index {
            return Some((i, col + 2));
        }
        seen += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate;

    const SPEC: &str = "version: 1\nname: t\nsteps:\n  - transform: { plugin: p@1 }\n  - window:\n      plugin: w\n      event_time: ts\nsinks:\n  - lake: { url: x }\n";

    #[test]
    fn finds_block_and_flow_keys() {
        assert_eq!(locate(SPEC, &["name"]), (2, 1));
        assert_eq!(
            locate(SPEC, &["steps", "0", "transform", "plugin"]),
            (4, 18)
        );
        assert_eq!(
            locate(SPEC, &["steps", "1", "window", "event_time"]),
            (7, 7)
        );
        assert_eq!(locate(SPEC, &["sinks", "0", "lake", "url"]), (9, 13));
    }

    #[test]
    fn falls_back_to_the_deepest_part_found() {
        assert_eq!(locate(SPEC, &["steps", "1", "window", "nope"]), (5, 5));
    }
}
