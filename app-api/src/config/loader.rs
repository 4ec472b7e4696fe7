use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

use super::{Config, ConfigError, Loaded, Origin, origin_of};

/// Builds a configuration from its layers: the type's defaults, then each file
/// in the order given, then the environment variables with the prefix.
#[derive(Debug, Clone)]
pub struct Loader {
    prefix: String,
    files: Vec<(String, String)>,
    variables: Option<Vec<(String, String)>>,
    reserved: BTreeSet<String>,
}

impl Loader {
    /// A loader for variables named `PREFIX_...` (`prefix` without the trailing
    /// underscore), reading the process environment unless
    /// [`Loader::variables`] says otherwise.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            files: Vec::new(),
            variables: None,
            reserved: BTreeSet::new(),
        }
    }

    /// Adds a layer of TOML `text`, called `origin` in messages (a path, or a
    /// name for a file compiled into the binary).
    #[must_use]
    pub fn file(mut self, origin: impl Into<String>, text: impl Into<String>) -> Self {
        self.files.push((origin.into(), text.into()));
        self
    }

    /// Adds a layer read from the TOML file at `path`.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn read_file(self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.display().to_string(),
            source,
        })?;
        Ok(self.file(path.display().to_string(), text))
    }

    /// Uses `variables` in place of the process environment (for tests, and for
    /// callers that gathered them already).
    #[must_use]
    pub fn variables(mut self, variables: impl IntoIterator<Item = (String, String)>) -> Self {
        self.variables = Some(variables.into_iter().collect());
        self
    }

    /// Variables with the prefix that are not configuration keys but choose how
    /// configuration is loaded (such as `PREFIX_ENV`); given without the prefix.
    #[must_use]
    pub fn reserve<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.reserved
            .extend(names.into_iter().map(str::to_ascii_uppercase));
        self
    }

    /// Merges the layers, reads them into `T`, and checks `T`'s rules.
    ///
    /// # Errors
    /// The first file that is not TOML, variable that names two keys, or key
    /// whose value does not fit its type or breaks a rule.
    pub fn load<T: Config>(self) -> Result<Loaded<T>, ConfigError> {
        let defaults = serde_json::to_value(T::default()).unwrap_or(Value::Null);
        let mut known = Vec::new();
        leaf_keys(&defaults, &mut Vec::new(), &mut known);

        let mut merged = Value::Object(Map::new());
        let mut origins = BTreeMap::new();
        for (origin, text) in &self.files {
            let table: toml::Table =
                toml::from_str(text).map_err(|error| syntax_error(origin, text, &error))?;
            let tree = serde_json::to_value(table).map_err(|error| ConfigError::Syntax {
                origin: origin.clone(),
                reason: error.to_string(),
            })?;
            let mut set = Vec::new();
            leaf_keys(&tree, &mut Vec::new(), &mut set);
            for key in set {
                if let Some(value) = lookup(&tree, &key) {
                    insert(&mut merged, &key, value.clone());
                    origins.insert(key.join("."), Origin::File(origin.clone()));
                }
            }
        }

        let variables = match self.variables {
            Some(variables) => variables,
            None => std::env::vars().collect(),
        };
        let marker = format!("{}_", self.prefix.to_ascii_uppercase());
        let mut ignored = Vec::new();
        let mut from_variables = BTreeSet::new();
        for (name, text) in variables {
            let Some(rest) = name.strip_prefix(&marker) else {
                continue;
            };
            if rest.is_empty() || self.reserved.contains(rest) {
                continue;
            }
            match key_for(rest, &known, &name)? {
                Some(key) => {
                    let dotted = key.join(".");
                    insert(&mut merged, &key, Value::String(text));
                    origins.insert(dotted.clone(), Origin::Variable(name));
                    from_variables.insert(dotted);
                }
                None => ignored.push(name),
            }
        }
        ignored.sort();

        let value: T = read_typed(merged, &origins, &from_variables)?;
        value.validate().map_err(|invalid| ConfigError::Invalid {
            origin: origin_of(&origins, &invalid.key),
            key: invalid.key,
            reason: invalid.reason,
        })?;
        Ok(Loaded {
            value,
            origins,
            ignored,
        })
    }
}

/// Reads the merged tree into `T`. A variable's text is a string at first; when
/// its key wants something else, it is read again as a TOML value and the
/// attempt repeated, so `"8080"` reaches a port as a number and a password made
/// of digits stays a string.
fn read_typed<T: Config>(
    mut merged: Value,
    origins: &BTreeMap<String, Origin>,
    from_variables: &BTreeSet<String>,
) -> Result<T, ConfigError> {
    let mut retyped: BTreeMap<String, ConfigError> = BTreeMap::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(merged.clone()) {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let key = error.path().to_string();
        let failure = ConfigError::Invalid {
            origin: origin_of(origins, &key),
            reason: describe(&error.into_inner()),
            key: key.clone(),
        };
        if let Some(first) = retyped.remove(&key) {
            // Read as TOML, the value fits no better: the message about the text
            // as given is the clearer one.
            return Err(first);
        }
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        let retyped_value = from_variables
            .contains(&key)
            .then(|| lookup(&merged, &path))
            .flatten()
            .and_then(Value::as_str)
            .and_then(toml_value);
        match retyped_value {
            Some(value) => {
                insert(&mut merged, &path, value);
                retyped.insert(key, failure);
            }
            None => return Err(failure),
        }
    }
}

/// serde's message, without any quoted value: an unparseable secret must not
/// reach the terminal through its error.
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text).to_owned();
    let Some((found, expected)) = text.split_once(", expected ") else {
        return text;
    };
    match found
        .strip_prefix("invalid type: ")
        .or_else(|| found.strip_prefix("invalid value: "))
    {
        Some(found) => {
            let kind = found.split('"').next().unwrap_or(found).trim_end();
            format!("{kind} given, expected {expected}")
        }
        None => text,
    }
}

/// `text` read as a TOML value (`true`, `8080`, `1.5`, `["a", "b"]`), if it is one.
fn toml_value(text: &str) -> Option<Value> {
    let document = format!("value = {text}");
    let table: toml::Table = toml::from_str(&document).ok()?;
    serde_json::to_value(table.get("value")?).ok()
}

/// Which key a variable (without its prefix) sets: levels joined by `__`, or a
/// known key whose levels joined by `_` spell it. `None` when it names no key.
fn key_for(
    rest: &str,
    known: &[Vec<String>],
    variable: &str,
) -> Result<Option<Vec<String>>, ConfigError> {
    let lower = rest.to_ascii_lowercase();
    if lower.contains("__") {
        return Ok(Some(lower.split("__").map(str::to_owned).collect()));
    }
    let mut matches = known.iter().filter(|key| key.join("_") == lower);
    match (matches.next(), matches.next()) {
        (Some(first), Some(second)) => Err(ConfigError::Ambiguous {
            variable: variable.to_owned(),
            first: first.join("."),
            second: second.join("."),
        }),
        (Some(only), None) => Ok(Some(only.clone())),
        _ => Ok(None),
    }
}

/// Every leaf key of `tree`: scalars, lists, nulls (unset options) and empty
/// tables (maps with no entries yet).
fn leaf_keys(tree: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        Value::Object(map) if !map.is_empty() => {
            for (name, child) in map {
                prefix.push(name.clone());
                leaf_keys(child, prefix, out);
                prefix.pop();
            }
        }
        _ if !prefix.is_empty() => out.push(prefix.clone()),
        _ => {}
    }
}

fn lookup<'v>(tree: &'v Value, key: &[String]) -> Option<&'v Value> {
    key.iter().try_fold(tree, |node, name| node.get(name))
}

/// Sets `key` in `tree`, making the tables on the way; a later layer's value
/// replaces an earlier one's, whatever its type.
fn insert(tree: &mut Value, key: &[String], value: Value) {
    let Some((last, parents)) = key.split_last() else {
        return;
    };
    let mut node = tree;
    for name in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            return;
        };
        node = map
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        map.insert(last.clone(), value);
    }
}

/// One line for a TOML syntax error: where, and what. The TOML crate's own
/// message quotes the offending line, which may hold a secret.
fn syntax_error(origin: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let place = error.span().map_or_else(String::new, |span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
        format!("line {line}, column {column}: ")
    });
    ConfigError::Syntax {
        origin: origin.to_owned(),
        reason: format!("{place}{}", error.message().trim()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::Secret;
    use crate::config::Invalid;

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Settings {
        database_url: String,
        port: u16,
        seed: bool,
        admin: Admin,
        http: Http,
        tags: Vec<String>,
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Admin {
        email: Option<String>,
        password: Option<Secret>,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Http {
        #[serde(with = "crate::config::duration")]
        request_timeout: Duration,
    }

    impl Default for Http {
        fn default() -> Self {
            Self {
                request_timeout: Duration::from_secs(30),
            }
        }
    }

    impl Default for Settings {
        fn default() -> Self {
            Self {
                database_url: "sqlite::memory:".into(),
                port: 8080,
                seed: true,
                admin: Admin::default(),
                http: Http::default(),
                tags: Vec::new(),
            }
        }
    }

    impl Config for Settings {
        fn validate(&self) -> Result<(), Invalid> {
            match (&self.admin.email, &self.admin.password) {
                (Some(_), None) => Err(Invalid::new(
                    "admin.password",
                    "is required with admin.email",
                )),
                (_, Some(password)) if password.len() < 12 => Err(Invalid::new(
                    "admin.password",
                    "must be 12 characters or more",
                )),
                _ => Ok(()),
            }
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn load(file: &str, pairs: &[(&str, &str)]) -> Result<Loaded<Settings>, ConfigError> {
        Loader::new("APP")
            .file("development.toml", file)
            .variables(vars(pairs))
            .reserve(["ENV"])
            .load()
    }

    #[test]
    fn each_layer_overrides_the_one_before() {
        let loaded = load(
            "port = 9000\nseed = false\n[http]\nrequest_timeout = \"5s\"",
            &[("APP_PORT", "9100"), ("OTHER_PORT", "1")],
        )
        .expect("valid");
        let settings = loaded.value();
        assert_eq!(settings.port, 9100, "the variable beats the file");
        assert!(!settings.seed, "the file beats the default");
        assert_eq!(
            settings.database_url, "sqlite::memory:",
            "the default stays"
        );
        assert_eq!(settings.http.request_timeout, Duration::from_secs(5));
        assert_eq!(loaded.origin("port"), Origin::Variable("APP_PORT".into()));
        assert_eq!(
            loaded.origin("seed"),
            Origin::File("development.toml".into())
        );
        assert_eq!(loaded.origin("database_url"), Origin::Default);
    }

    #[test]
    fn variables_find_nested_keys_by_underscores_or_double_underscores() {
        let loaded = load(
            "",
            &[
                ("APP_ADMIN_EMAIL", "root@example.test"),
                ("APP_ADMIN__PASSWORD", "123456789012345"),
                ("APP_HTTP_REQUEST_TIMEOUT", "250ms"),
                ("APP_TAGS", "[\"a\", \"b\"]"),
                ("APP_ENV", "test"),
                ("APP_PORTT", "1"),
            ],
        )
        .expect("valid");
        let settings = loaded.value();
        assert_eq!(settings.admin.email.as_deref(), Some("root@example.test"));
        assert_eq!(
            settings
                .admin
                .password
                .as_ref()
                .and_then(Secret::expose_str),
            Some("123456789012345"),
            "digits stay a string where a string is wanted"
        );
        assert_eq!(settings.http.request_timeout, Duration::from_millis(250));
        assert_eq!(settings.tags, ["a", "b"]);
        assert_eq!(
            loaded.ignored_variables(),
            ["APP_PORTT"],
            "reserved ones are not reported"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key_and_origin() {
        let error = load("", &[("APP_PORT", "eighty")]).expect_err("not a number");
        assert_eq!(
            error.to_string(),
            "configuration key `port` (from environment variable APP_PORT) is not valid: \
             string given, expected u16"
        );
        let error = load("[http]\nrequest_timeout = \"soon\"", &[]).expect_err("not a duration");
        let message = error.to_string();
        assert!(
            message.starts_with("configuration key `http.request_timeout` (from development.toml)"),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }

    #[test]
    fn a_misspelt_key_in_a_file_is_an_error() {
        let error = load("[http]\nrequest_timout = \"1s\"", &[]).expect_err("unknown key");
        let message = error.to_string();
        assert!(message.contains("`http"), "{message}");
        assert!(message.contains("request_timout"), "{message}");
    }

    #[test]
    fn a_broken_rule_names_its_key_without_the_value() {
        let error = load(
            "",
            &[
                ("APP_ADMIN_EMAIL", "a@b.c"),
                ("APP_ADMIN_PASSWORD", "hunter2"),
            ],
        )
        .expect_err("too short");
        let message = error.to_string();
        assert_eq!(
            message,
            "configuration key `admin.password` (from environment variable APP_ADMIN_PASSWORD) \
             is not valid: must be 12 characters or more"
        );
        assert!(!message.contains("hunter2"));
    }

    #[test]
    fn a_file_that_is_not_toml_is_one_line_naming_the_file_and_place() {
        let error = load("port = 80\nseed = yes please", &[]).expect_err("not TOML");
        let message = error.to_string();
        assert!(
            message.starts_with("development.toml is not valid TOML: line 2"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn the_effective_configuration_masks_secrets_and_says_where_values_came_from() {
        let loaded = load(
            "seed = false",
            &[
                ("APP_ADMIN_EMAIL", "a@b.c"),
                ("APP_ADMIN_PASSWORD", "correct horse battery"),
            ],
        )
        .expect("valid");
        let text = loaded.render();
        assert!(!text.contains("correct horse"), "{text}");
        assert!(text.contains("password = \"[redacted]\""), "{text}");
        assert!(
            text.contains("seed = false  # from development.toml"),
            "{text}"
        );
        assert!(text.contains("port = 8080\n"), "{text}");
        assert!(text.contains("[http]\nrequest_timeout = \"30s\""), "{text}");
        let reparsed: toml::Table = toml::from_str(&text).expect("the output is TOML itself");
        assert_eq!(reparsed["port"].as_integer(), Some(8080));
    }

    #[test]
    fn two_keys_spelt_alike_make_a_variable_ambiguous() {
        let known = vec![
            vec!["admin_email".to_owned()],
            vec!["admin".to_owned(), "email".to_owned()],
        ];
        let error = key_for("ADMIN_EMAIL", &known, "APP_ADMIN_EMAIL").expect_err("two keys");
        assert!(error.to_string().contains("`admin_email` or `admin.email`"));
        assert_eq!(
            key_for("ADMIN__EMAIL", &known, "APP_ADMIN__EMAIL").expect("explicit"),
            Some(vec!["admin".to_owned(), "email".to_owned()])
        );
    }
}
