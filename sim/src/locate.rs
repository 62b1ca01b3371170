//! Finding lines and keys in scenario text, for error messages.
//!
//! toml's errors carry a byte span but not the key; settings refused after parsing (min above
//! max) carry a key but no span. A light line-based reading of the text bridges both: it only
//! has to be right for the files people write, and falls back to less detail otherwise.

/// The 1-based line holding byte `offset`.
pub fn line_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source[..offset].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The table header (`pool`, `traffic`, …) that governs byte `offset`, if any.
fn section_at(source: &str, offset: usize) -> Option<String> {
    let before = &source[..offset.min(source.len())];
    before.lines().rev().find_map(header_name)
}

/// `[name]` or `[[name]]` → `name`.
fn header_name(line: &str) -> Option<String> {
    let line = strip_comment(line).trim();
    if !line.starts_with('[') {
        return None;
    }
    let name = line.trim_start_matches('[').trim_end_matches(']').trim();
    Some(name.to_string())
}

fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    for (at, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..at],
            _ => {}
        }
    }
    line
}

/// The dotted key a toml error at byte `offset` is about: the section, the inline tables
/// open on the line, and the key whose value (or name, for an unknown key) sits at `offset`.
pub fn key_at(source: &str, offset: usize, message: &str) -> Option<String> {
    let offset = offset.min(source.len());
    let line_start = source[..offset].rfind('\n').map_or(0, |at| at + 1);
    let prefix = &source[line_start..offset];
    let mut path: Vec<String> = section_at(source, line_start).into_iter().collect();
    // Keys of the inline tables opened before `offset`, then the key being assigned.
    let mut open_tables: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let mut word = String::new();
    let mut in_string = false;
    for c in prefix.chars() {
        if in_string {
            in_string = c != '"';
            continue;
        }
        match c {
            '"' => in_string = true,
            '=' => {
                current = Some(word.trim().to_string());
                word.clear();
            }
            '{' => {
                if let Some(key) = current.take() {
                    open_tables.push(key);
                }
                word.clear();
            }
            '}' => {
                open_tables.pop();
                current = None;
                word.clear();
            }
            ',' => {
                current = None;
                word.clear();
            }
            _ => word.push(c),
        }
    }
    path.extend(open_tables);
    let unknown = message.starts_with("unknown field") || message.starts_with("unknown variant");
    let named = if message.starts_with("unknown field") {
        message.split('`').nth(1).map(str::to_string)
    } else if unknown {
        current
    } else {
        current.or_else(|| {
            let rest = &source[offset..];
            let end = rest.find(['=', '\n']).unwrap_or(rest.len());
            let key = rest[..end].trim();
            (!key.is_empty() && rest[end..].starts_with('=')).then(|| key.to_string())
        })
    };
    path.extend(named);
    (!path.is_empty()).then(|| path.join("."))
}

/// The line where `key` is set in `section` (the `index`-th of `[[section]]`, from 0); the
/// section's header line when the key is not written out (a default); `None` if neither.
pub fn line_of_key(source: &str, section: &str, index: Option<usize>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    let mut seen_of_section = 0usize;
    let mut in_target = section.is_empty();
    let mut header_line = None;
    for (number, line) in source.lines().enumerate() {
        if let Some(name) = header_name(line) {
            current = Some(name.clone());
            in_target = false;
            if name == section {
                let wanted = index.unwrap_or(0);
                if seen_of_section == wanted {
                    in_target = true;
                    header_line = Some(number + 1);
                }
                seen_of_section += 1;
            }
            continue;
        }
        let within = if section.is_empty() {
            current.is_none()
        } else {
            in_target
        };
        if !within {
            continue;
        }
        let text = strip_comment(line).trim();
        if let Some(rest) = text.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return Some(number + 1);
            }
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[pool]\nmax_pool_size = 6\n\n[[traffic]]\nrate = 5\n[[traffic]]\nclients = 3\n[app]\nservice_time = { dist = \"exponential\", mean = \"-1s\" }\n";

    #[test]
    fn finds_keys_and_lines() {
        assert_eq!(line_of_key(TEXT, "pool", None, "max_pool_size"), Some(3));
        assert_eq!(line_of_key(TEXT, "traffic", Some(1), "clients"), Some(8));
        assert_eq!(line_of_key(TEXT, "traffic", Some(1), "rate"), Some(7));
        assert_eq!(line_of_key(TEXT, "", None, "name"), Some(1));
        let value_at = TEXT.find("\"-1s\"").unwrap();
        assert_eq!(
            key_at(TEXT, value_at, "negative").as_deref(),
            Some("app.service_time.mean")
        );
        let six = TEXT.find('6').unwrap();
        assert_eq!(
            key_at(TEXT, six, "invalid type").as_deref(),
            Some("pool.max_pool_size")
        );
        let key = TEXT.find("clients").unwrap();
        assert_eq!(
            key_at(TEXT, key, "unknown field `clients`").as_deref(),
            Some("traffic.clients")
        );
    }
}
