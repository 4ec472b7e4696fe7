//! The shop's configuration as the runtime loads it: every environment's file,
//! the documented variables, and the one-line errors for bad values.

mod settings {
    use std::net::SocketAddr;
    use std::time::Duration;

    use strata_runtime::load_settings;

    use shop_app_api::Shop;
    use shop_app_api::settings::{CONFIG_FILES, ShopSettings};
    use strata_app_api::config::{ConfigError, Environment};

    fn load(
        environment: Environment,
        variables: &[(&str, &str)],
    ) -> Result<strata_runtime::Settings<Shop>, ConfigError> {
        let variables = variables
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        load_settings::<Shop>(environment, None, Some(variables)).map(|loaded| loaded.into_value())
    }

    #[test]
    fn every_environment_file_loads() {
        for (environment, _) in CONFIG_FILES {
            let variables: &[(&str, &str)] = if environment == Environment::Production {
                &[("SHOP_JWT_SECRET", "a production key of thirty-two bytes")]
            } else {
                &[]
            };
            load(environment, variables).unwrap_or_else(|error| panic!("{environment}: {error}"));
        }
    }

    #[test]
    fn development_is_what_the_readme_promises() {
        let settings = load(Environment::Development, &[]).expect("valid");
        assert_eq!(
            settings.service.api_addr,
            SocketAddr::from(([127, 0, 0, 1], 8080))
        );
        assert_eq!(
            settings.app.web_addr,
            SocketAddr::from(([127, 0, 0, 1], 3000))
        );
        assert!(settings.service.seed && settings.service.migrate_on_start);
        assert_eq!(
            settings.service.database_url.expose(),
            "sqlite://shop.db?mode=rwc"
        );
    }

    #[test]
    fn the_documented_variables_set_both_the_runtimes_keys_and_the_shops() {
        let settings = load(
            Environment::Development,
            &[
                ("SHOP_DATABASE_URL", "postgres://shop:pw@db/shop"),
                ("SHOP_API_ADDR", "127.0.0.1:9090"),
                ("SHOP_SEED", "false"),
                ("SHOP_ADMIN_EMAIL", "root@shop.test"),
                ("SHOP_ADMIN_PASSWORD", "123456789012"),
                ("SHOP_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("SHOP_HTTP__SHUTDOWN_GRACE", "3s"),
            ],
        )
        .expect("valid settings");
        assert_eq!(
            settings.service.api_addr,
            SocketAddr::from(([127, 0, 0, 1], 9090))
        );
        assert_eq!(settings.app.web_addr, ShopSettings::default().web_addr);
        assert!(!settings.service.seed);
        assert_eq!(settings.app.admin.email.as_deref(), Some("root@shop.test"));
        assert_eq!(settings.service.http.shutdown_grace, Duration::from_secs(3));
        assert_eq!(
            settings.service.database_url.expose(),
            "postgres://shop:pw@db/shop"
        );
    }

    #[test]
    fn a_bad_value_names_its_key_and_variable_in_one_line() {
        for (variable, value, key) in [
            ("SHOP_WEB_ADDR", "not an address", "web_addr"),
            ("SHOP_JWT_SECRET", "short", "jwt_secret"),
            ("SHOP_ADMIN_EMAIL", "root@shop.test", "admin.password"),
            ("SHOP_HTTP_SHUTDOWN_GRACE", "soon", "http.shutdown_grace"),
            ("SHOP_IDEMPOTENCY_LEASE", "5s", "idempotency.lease"),
            (
                "SHOP_HTTP__CLIENT_LIMIT__REQUESTS",
                "0",
                "http.client_limit",
            ),
            (
                "SHOP_HTTP__TRUSTED_PROXIES",
                r#"["10.0.0.7", "10.0.0.0/33"]"#,
                "http.trusted_proxies",
            ),
            (
                "SHOP_HTTP__CORS_ALLOWED_ORIGINS",
                r#"["https://shop.example/path"]"#,
                "http.cors_allowed_origins[0]",
            ),
        ] {
            let error = load(Environment::Development, &[(variable, value)]).expect_err(variable);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("configuration key `{key}`")),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
            if variable == "SHOP_JWT_SECRET" {
                assert!(
                    !message.contains(value),
                    "a secret is never echoed: {message}"
                );
            }
        }
    }

    #[test]
    fn an_otlp_endpoint_is_used_only_by_a_shop_built_with_otel() {
        let endpoint = [("SHOP_OTLP_ENDPOINT", "http://collector:4318")];
        let result = load(Environment::Development, &endpoint);
        if cfg!(feature = "otel") {
            let settings = result.expect("valid with the feature");
            assert!(settings.service.otlp_endpoint.is_some());
            let tls = [("SHOP_OTLP_ENDPOINT", "https://collector:4318")];
            let error = load(Environment::Development, &tls).expect_err("no TLS built");
            assert!(error.to_string().contains("`otlp_endpoint`"), "{error}");
        } else {
            let message = result.expect_err("refused without the feature").to_string();
            assert!(
                message.starts_with("configuration key `otlp_endpoint`")
                    && message.contains("built without the `otel` feature"),
                "{message}"
            );
        }
    }

    #[test]
    fn production_wants_a_signing_key() {
        let error = load(Environment::Production, &[]).expect_err("no key");
        assert!(error.to_string().contains("`jwt_secret`"), "{error}");
    }
}
