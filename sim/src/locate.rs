//! Finding lines and keys in scenario text, for error messages.
//!
//! toml's errors carry a byte span but not the key; settings refused after parsing (min above
//! max) carry a key but no span. Both are looked up in the spans of toml_edit's document (the
//! parser toml itself uses), read again only when there is an error to report.

use std::ops::Range;
use toml_edit::{ImDocument, Item, TableLike, Value};

/// The 1-based line holding byte `offset`.
pub fn line_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source[..offset].bytes().filter(|b| *b == b'\n').count() + 1
}

fn covers(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|span| span.contains(&offset))
}

/// The dotted key a toml error at byte `offset` is about: the innermost key whose name or
/// value sits at `offset` (sections and arrays of tables by their names, without indexes).
pub fn key_at(source: &str, offset: usize) -> Option<String> {
    let document = ImDocument::parse(source).ok()?;
    let mut path = Vec::new();
    find_key(document.as_table(), offset, &mut path).then(|| path.join("."))
}

fn find_key(table: &dyn TableLike, offset: usize, path: &mut Vec<String>) -> bool {
    for (name, item) in table.iter() {
        path.push(name.to_string());
        let found = match item {
            Item::Table(inner) => find_key(inner, offset, path),
            Item::ArrayOfTables(tables) => tables.iter().any(|t| find_key(t, offset, path)),
            Item::Value(Value::InlineTable(inner)) if covers(item.span(), offset) => {
                // Inside the inline table: one of its keys, or the table as a whole.
                find_key(inner, offset, path);
                true
            }
            Item::Value(_) => covers(item.span(), offset),
            Item::None => false,
        };
        if found || covers(table.key(name).and_then(|key| key.span()), offset) {
            return true;
        }
        path.pop();
    }
    false
}

/// The line where `key` is set in `section` (the `index`-th of `[[section]]`, from 0; `""` for
/// the top level); the section's header line when the key is not written out (a default);
/// `None` if neither.
pub fn line_of_key(source: &str, section: &str, index: Option<usize>, key: &str) -> Option<usize> {
    let document = ImDocument::parse(source).ok()?;
    let root = document.as_table();
    let (table, header): (&dyn TableLike, Option<Range<usize>>) = if section.is_empty() {
        (root, None)
    } else {
        match root.get(section)? {
            Item::Table(table) => (table, table.span()),
            Item::ArrayOfTables(tables) => {
                let table = tables.get(index.unwrap_or(0))?;
                (table, table.span())
            }
            _ => return None,
        }
    };
    table
        .key(key)
        .and_then(|key| key.span())
        .or(header)
        .map(|span| line_of(source, span.start))
}

/// The field a serde message names in backquotes ("missing field `duration`").
pub(crate) fn field_named_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
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
            key_at(TEXT, value_at).as_deref(),
            Some("app.service_time.mean")
        );
        let six = TEXT.find('6').unwrap();
        assert_eq!(key_at(TEXT, six).as_deref(), Some("pool.max_pool_size"));
        let key = TEXT.find("clients").unwrap();
        assert_eq!(key_at(TEXT, key).as_deref(), Some("traffic.clients"));
    }
}
