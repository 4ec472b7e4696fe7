//! The service's configuration as the runtime loads it: every environment's
//! file, the variables, and the one-line errors for bad values.

mod settings {
    use std::net::SocketAddr;
    use std::time::Duration;

    use strata_app_api::config::ConfigError;
    use strata_runtime::{Service as _, load_settings};

    use app_api::App;
    use app_api::settings::CONFIG_FILES;
    use strata_app_api::config::Environment;

    fn load(
        environment: Environment,
        variables: &[(&str, &str)],
    ) -> Result<strata_runtime::Settings<App>, ConfigError> {
        let prefix = App::env_prefix();
        let variables = variables
            .iter()
            .map(|(name, value)| (format!("{prefix}_{name}"), (*value).to_owned()))
            .collect();
        load_settings::<App>(environment, None, Some(variables)).map(|loaded| loaded.into_value())
    }

    #[test]
    fn every_environment_file_loads() {
        for (environment, _) in CONFIG_FILES {
            load(environment, &[]).unwrap_or_else(|error| panic!("{environment}: {error}"));
        }
    }

    #[test]
    fn development_serves_where_the_readme_says() {
        let settings = load(Environment::Development, &[]).expect("valid");
        assert_eq!(
            settings.service.api_addr,
            SocketAddr::from(([127, 0, 0, 1], 8080))
        );
        assert_eq!(
            settings.app.web_addr,
            SocketAddr::from(([127, 0, 0, 1], 3000))
        );
        assert!(settings.service.migrate_on_start && settings.service.seed);
        assert!(settings.service.redis_url.is_none());
    }

    #[test]
    fn variables_override_the_file_by_key() {
        let settings = load(
            Environment::Development,
            &[
                ("DATABASE_URL", "postgres://app:pw@db/app"),
                ("API_ADDR", "127.0.0.1:9090"),
                ("WEB_PAGE", "false"),
                ("HTTP__SHUTDOWN_GRACE", "3s"),
                ("HEALTH_CHECK_TIMEOUT", "500ms"),
            ],
        )
        .expect("valid settings");
        assert_eq!(
            settings.service.database_url.expose(),
            "postgres://app:pw@db/app"
        );
        assert_eq!(
            settings.service.api_addr,
            SocketAddr::from(([127, 0, 0, 1], 9090))
        );
        assert!(!settings.app.web_page);
        assert_eq!(
            settings.app.web_addr,
            SocketAddr::from(([127, 0, 0, 1], 3000))
        );
        assert_eq!(settings.service.http.shutdown_grace, Duration::from_secs(3));
        assert_eq!(
            settings.service.health.check_timeout,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn a_bad_value_names_its_key_and_variable_in_one_line() {
        let prefix = App::env_prefix();
        for (name, value, key) in [
            ("WEB_ADDR", "not an address", "web_addr"),
            ("HTTP__SHUTDOWN_GRACE", "soon", "http.shutdown_grace"),
            ("WEB_PAGE", "sometimes", "web_page"),
            ("REDIS_URL", "http://cache", "redis_url"),
        ] {
            let error = load(Environment::Development, &[(name, value)]).expect_err(name);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "configuration key `{key}` (from environment variable {prefix}_{name})"
                )),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn passwords_in_urls_never_print() {
        let url = "mysql://app:hunter2@db/app";
        let error = load(Environment::Development, &[("DATABASE_URL", url)]).expect_err("mysql");
        assert!(error.to_string().contains("`database_url`"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");

        let prefix = App::env_prefix();
        let loaded = load_settings::<App>(
            Environment::Development,
            None,
            Some(vec![
                (
                    format!("{prefix}_DATABASE_URL"),
                    "postgres://app:hunter2@db/app".to_owned(),
                ),
                (
                    format!("{prefix}_REDIS_URL"),
                    "redis://:hunter2@cache:6379".to_owned(),
                ),
            ]),
        )
        .expect("valid settings");
        let printed = format!("{}\n{:?}", loaded.render(), loaded.value());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("postgres://app:[redacted]@db/app"),
            "{printed}"
        );
    }
}
