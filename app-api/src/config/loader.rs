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
        let layers = self.merge(&defaults)?;
        let value: T = read_typed(layers.merged, &layers.origins, &layers.from_variables)?;
        check(&value, &layers.origins)?;
        Ok(Loaded {
            value,
            origins: layers.origins,
            ignored: layers.ignored,
        })
    }

    /// Loads two configurations from one set of keys: `S`, starting from
    /// `service` (the part a framework defines, such as a service runtime's
    /// groups), and `A` (the service's own keys). Each top-level key belongs to
    /// the one whose defaults name it; a key neither names is refused. Files and
    /// variables spell the keys of both alike (`PREFIX_DATABASE_URL`,
    /// `PREFIX_ADMIN_EMAIL`).
    ///
    /// # Errors
    /// As [`Loader::load`]; and a key both parts define, which is a mistake in
    /// the service's settings type.
    pub fn load_pair<S: Config, A: Config>(
        self,
        service: S,
    ) -> Result<Loaded<Pair<S, A>>, ConfigError> {
        let service_defaults = serde_json::to_value(&service).unwrap_or(Value::Null);
        let app_defaults = serde_json::to_value(A::default()).unwrap_or(Value::Null);
        let (Value::Object(service_keys), Value::Object(app_keys)) =
            (&service_defaults, &app_defaults)
        else {
            return Err(ConfigError::Missing {
                key: String::new(),
                reason: "both parts of a configuration must be tables of keys".into(),
            });
        };
        let (service_keys, app_keys): (BTreeSet<String>, BTreeSet<String>) = (
            service_keys.keys().cloned().collect(),
            app_keys.keys().cloned().collect(),
        );
        if let Some(shared) = service_keys.intersection(&app_keys).next() {
            return Err(ConfigError::Invalid {
                key: shared.clone(),
                origin: Origin::Default,
                reason: "is defined by both the service runtime and the service's own \
                         settings; rename the service's key"
                    .into(),
            });
        }
        // Secrets serialize masked, so a default could not be read back: refuse it
        // rather than let the service start with "[redacted]" as a password.
        let mut leaves = Vec::new();
        leaf_keys(&service_defaults, &mut Vec::new(), &mut leaves);
        if let Some(secret) = leaves.iter().find(|key| {
            lookup(&service_defaults, key)
                .and_then(Value::as_str)
                .is_some_and(|text| text.contains(crate::REDACTED))
        }) {
            return Err(ConfigError::Invalid {
                key: secret.join("."),
                origin: Origin::Default,
                reason: "a default may not hold a secret; set it in a file or variable".into(),
            });
        }
        let mut defaults = service_defaults.clone();
        if let (Value::Object(all), Value::Object(app)) = (&mut defaults, app_defaults.clone()) {
            all.extend(app);
        }
        let layers = self.merge(&defaults)?;
        let Value::Object(merged) = layers.merged else {
            return Err(ConfigError::Missing {
                key: String::new(),
                reason: "the configuration is not a table of keys".into(),
            });
        };
        if let Some(unknown) = merged
            .keys()
            .find(|key| !service_keys.contains(*key) && !app_keys.contains(*key))
        {
            return Err(ConfigError::Invalid {
                origin: origin_of(&layers.origins, unknown),
                key: unknown.clone(),
                reason: "is not a configuration key".into(),
            });
        }
        // The service part starts from the given values, not from `S::default`:
        // its defaults may depend on the service (a file named after it).
        let mut service_tree = service_defaults;
        let mut app_tree = Map::new();
        for (key, value) in merged {
            if service_keys.contains(&key) {
                let mut leaves = Vec::new();
                leaf_keys(&value, &mut vec![key.clone()], &mut leaves);
                if leaves.is_empty() {
                    insert(&mut service_tree, &[key], value);
                } else {
                    for leaf in leaves {
                        if let Some(leaf_value) = lookup(&value, &leaf[1..]) {
                            insert(&mut service_tree, &leaf, leaf_value.clone());
                        }
                    }
                }
            } else {
                app_tree.insert(key, value);
            }
        }
        let service: S = read_typed(service_tree, &layers.origins, &layers.from_variables)?;
        let app: A = read_typed(
            Value::Object(app_tree),
            &layers.origins,
            &layers.from_variables,
        )?;
        check(&service, &layers.origins)?;
        check(&app, &layers.origins)?;
        Ok(Loaded {
            value: Pair { service, app },
            origins: layers.origins,
            ignored: layers.ignored,
        })
    }

    /// The files and variables merged into one tree of the keys `defaults` has,
    /// with where each value came from.
    fn merge(self, defaults: &Value) -> Result<Layers, ConfigError> {
        let mut known = Vec::new();
        leaf_keys(defaults, &mut Vec::new(), &mut known);

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
        Ok(Layers {
            merged,
            origins,
            from_variables,
            ignored,
        })
    }
}

/// The layers merged: the tree, and where each key's value came from.
struct Layers {
    merged: Value,
    origins: BTreeMap<String, Origin>,
    from_variables: BTreeSet<String>,
    ignored: Vec<String>,
}

/// Two configurations loaded from one set of keys (see [`Loader::load_pair`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<S, A> {
    /// The framework's part.
    pub service: S,
    /// The service's own keys.
    pub app: A,
}

/// Both parts as one table, as files spell them.
impl<S: serde::Serialize, A: serde::Serialize> serde::Serialize for Pair<S, A> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        use serde::ser::Error as _;
        let mut all = match serde_json::to_value(&self.service).map_err(Z::Error::custom)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if let Value::Object(app) = serde_json::to_value(&self.app).map_err(Z::Error::custom)? {
            all.extend(app);
        }
        all.serialize(serializer)
    }
}

/// Checks `value`'s rules, naming where the value at fault came from.
fn check<T: Config>(value: &T, origins: &BTreeMap<String, Origin>) -> Result<(), ConfigError> {
    value.validate().map_err(|invalid| ConfigError::Invalid {
        origin: origin_of(origins, &invalid.key),
        key: invalid.key,
        reason: invalid.reason,
    })
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

    /// The service's own keys beside the framework's `Settings`.
    #[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Own {
        greeting: String,
        limits: Limits,
    }

    #[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Limits {
        burst: u32,
    }

    impl Config for Own {}

    fn named_defaults() -> Settings {
        Settings {
            database_url: "sqlite://named.db".into(),
            ..Settings::default()
        }
    }

    #[test]
    fn a_pair_reads_both_parts_from_one_set_of_files_and_variables() {
        let loaded = Loader::new("APP")
            .file(
                "development.toml",
                "port = 9000\ngreeting = \"hi\"\n[limits]\nburst = 3\n[http]\nrequest_timeout = \"5s\"",
            )
            .variables(vars(&[
                ("APP_LIMITS_BURST", "7"),
                ("APP_ADMIN_EMAIL", "a@b.c"),
                ("APP_ADMIN_PASSWORD", "correct horse battery"),
            ]))
            .load_pair::<Settings, Own>(named_defaults())
            .expect("valid");
        let pair = loaded.value();
        assert_eq!(pair.service.port, 9000);
        assert_eq!(
            pair.service.database_url, "sqlite://named.db",
            "the given default"
        );
        assert_eq!(pair.service.http.request_timeout, Duration::from_secs(5));
        assert_eq!(pair.service.admin.email.as_deref(), Some("a@b.c"));
        assert_eq!(pair.app.greeting, "hi");
        assert_eq!(pair.app.limits.burst, 7);
        let text = loaded.render();
        assert!(
            text.contains("greeting = \"hi\"  # from development.toml"),
            "{text}"
        );
        assert!(
            text.contains("port = 9000  # from development.toml"),
            "{text}"
        );
    }

    #[test]
    fn a_pair_refuses_a_key_neither_part_has_and_names_bad_values_by_their_key() {
        let unknown = Loader::new("APP")
            .file("development.toml", "colour = \"blue\"")
            .variables(Vec::new())
            .load_pair::<Settings, Own>(named_defaults())
            .expect_err("no such key");
        assert_eq!(
            unknown.to_string(),
            "configuration key `colour` (from development.toml) is not valid: is not a configuration key"
        );
        let bad = Loader::new("APP")
            .variables(vars(&[("APP_HTTP__REQUEST_TIMEOUT", "soon")]))
            .load_pair::<Settings, Own>(named_defaults())
            .expect_err("not a duration");
        assert!(
            bad.to_string()
                .starts_with("configuration key `http.request_timeout` (from environment variable APP_HTTP__REQUEST_TIMEOUT)"),
            "{bad}"
        );
        let own = Loader::new("APP")
            .variables(vars(&[("APP_LIMITS_BURST", "many")]))
            .load_pair::<Settings, Own>(named_defaults())
            .expect_err("not a number");
        assert!(
            own.to_string()
                .starts_with("configuration key `limits.burst`"),
            "{own}"
        );
    }

    #[test]
    fn a_key_both_parts_define_is_refused() {
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(default)]
        struct Clash {
            port: u16,
        }
        impl Config for Clash {}
        let error = Loader::new("APP")
            .variables(Vec::new())
            .load_pair::<Settings, Clash>(named_defaults())
            .expect_err("both define `port`");
        assert!(error.to_string().contains("`port`"), "{error}");
    }

    #[test]
    fn a_secret_in_the_service_defaults_is_refused_not_masked_into_the_value() {
        let defaults = Settings {
            admin: Admin {
                email: None,
                password: Some(Secret::from("built in".to_owned())),
            },
            ..named_defaults()
        };
        let error = Loader::new("APP")
            .variables(Vec::new())
            .load_pair::<Settings, Own>(defaults)
            .expect_err("a secret default");
        assert!(error.to_string().contains("`admin.password`"), "{error}");
    }
}
