use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use super::Origin;

/// `value` as TOML: plain keys first, then one `[table]` per group, each in
/// key order. A key set by a file or variable carries a
/// comment naming it; an unset option is shown commented out.
pub(super) fn render<T: Serialize>(value: &T, origins: &BTreeMap<String, Origin>) -> String {
    let mut out = String::new();
    if let Ok(Value::Object(map)) = serde_json::to_value(value) {
        table(&mut out, &map, &mut Vec::new(), origins);
    }
    out
}

fn table(
    out: &mut String,
    map: &Map<String, Value>,
    path: &mut Vec<String>,
    origins: &BTreeMap<String, Origin>,
) {
    for (name, value) in map {
        if matches!(value, Value::Object(_)) {
            continue;
        }
        path.push(name.clone());
        let key = path.join(".");
        match literal(value) {
            Some(text) => {
                let _ = write!(out, "{} = {text}", bare(name));
                match origins.get(&key) {
                    Some(origin @ (Origin::File(_) | Origin::Variable(_))) => {
                        let _ = writeln!(out, "  # {origin}");
                    }
                    _ => out.push('\n'),
                }
            }
            None => {
                let _ = writeln!(out, "# {} is not set", bare(name));
            }
        }
        path.pop();
    }
    for (name, value) in map {
        if let Value::Object(child) = value {
            path.push(name.clone());
            let header: Vec<String> = path.iter().map(|part| bare(part)).collect();
            let _ = writeln!(out, "\n[{}]", header.join("."));
            table(out, child, path, origins);
            path.pop();
        }
    }
}

/// The TOML spelling of a value; `None` for null, which TOML cannot hold.
fn literal(value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    toml::Value::try_from(value)
        .ok()
        .map(|value| value.to_string())
}

/// A key as TOML writes it: bare when it can be, quoted otherwise.
fn bare(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_owned()
    } else {
        toml::Value::String(name.to_owned()).to_string()
    }
}
