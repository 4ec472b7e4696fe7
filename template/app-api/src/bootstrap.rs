//! The composition root: the one module that names the infrastructure and the
//! web page and wires them into the application. Everything around it — the
//! command line, configuration, the database and migrations, the cache,
//! idempotency keys, readiness, metrics, workers, serving and shutdown — is
//! the service runtime's (`strata-runtime`).

use std::sync::Arc;

use async_trait::async_trait;
use infrastructure::{Migrator, SeaOrmTaskRepository, seed_tasks};
use strata_app_api::config::Environment;
use strata_bff::Upstream;
use strata_runtime::{BoxError, Resources, Service, Startup, in_transaction};

use crate::api::{self, AppState};
use crate::application::tasks::{self, TaskHandlers};
use crate::settings::{AppSettings, CONFIG_FILES, project_name};

/// This service, as the runtime runs it.
#[derive(Debug)]
pub struct App;

#[async_trait]
impl Service for App {
    type Settings = AppSettings;
    type Migrator = Migrator;

    fn name() -> &'static str {
        project_name()
    }

    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    fn config_files() -> &'static [(Environment, &'static str)] {
        &CONFIG_FILES
    }

    fn demo_data() -> &'static str {
        "demo tasks"
    }

    async fn seed(resources: &Resources<Self>) -> Result<usize, BoxError> {
        let tasks = SeaOrmTaskRepository::new(resources.database().clone());
        Ok(in_transaction(resources, seed_tasks(&tasks)).await?)
    }

    async fn start(startup: &mut Startup<Self>) -> Result<(), BoxError> {
        let settings = startup.settings().clone();
        let task_repository = Arc::new(SeaOrmTaskRepository::new(startup.database().clone()));
        let dispatcher = tasks::register(
            startup.dispatcher(),
            Arc::new(TaskHandlers::new(task_repository)),
        )
        .build();

        let api = startup
            .bind("api", startup.service_settings().api_addr)
            .await?;
        let (api_router, _document) = api::router(
            AppState::new(dispatcher),
            startup.http_settings(),
            startup.client_limiter()?,
            startup.operations(),
        );
        startup.announce(format!("API:      http://{}/api/tasks", api.addr()));
        if settings.web_page {
            let web = startup.bind("web", settings.web_addr).await?;
            let upstream = Upstream::new(format!("http://{}", api.addr()))?;
            startup.announce(format!("Web page: http://{}/", web.addr()));
            startup.serve(web, bff::router(upstream));
        } else {
            startup.announce(format!(
                "Web page: off (set {}_WEB_PAGE=true to serve it)",
                Self::env_prefix()
            ));
        }
        startup.announce(format!("API docs: http://{}/docs", api.addr()));
        startup.serve(api, api_router);
        Ok(())
    }
}
