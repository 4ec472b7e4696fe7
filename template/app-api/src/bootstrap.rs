//! The composition root: the one module that names the infrastructure and the
//! web page, wires them into the application and starts the servers. The tests
//! start the service through [`start`] too, so they exercise what `cargo run` does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use infrastructure::{SeaOrmTaskRepository, migrate};
use strata_app_api::application::{Dispatcher, middleware};
use strata_app_api::http::{self, HttpSettings};
use strata_bff::Upstream;
use strata_infrastructure::{Database, SeaOrmUnitOfWork};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::application::tasks::{self, TaskHandlers};
use crate::settings::Settings;

/// How long requests in flight may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("the database could not be prepared")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A listening address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The web page's client for the API could not be built.
    #[error("the web page could not be set up")]
    Web(#[source] strata_bff::UpstreamError),
}

/// A started service: where it listens, and how to stop it.
#[derive(Debug)]
pub struct RunningService {
    /// Where the API listens.
    pub api_addr: SocketAddr,
    /// Where the web page listens, when it is served.
    pub web_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RunningService {
    /// Stops accepting connections, lets requests in flight finish (for up to
    /// ten seconds), and waits for every server to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for server in self.servers {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(error = %error, "a server ended with an error"),
                Err(error) => tracing::error!(error = %error, "a server task failed"),
            }
        }
    }
}

/// Opens and migrates the database, wires the use cases to it, and starts the
/// API and, when the settings ask for it, the web page.
///
/// # Errors
/// When the database cannot be prepared or an address cannot be bound.
pub async fn start(settings: Settings) -> Result<RunningService, StartError> {
    let database = Database::connect(&settings.database_url)
        .await
        .map_err(|error| StartError::Database(Box::new(error)))?;
    migrate(&database)
        .await
        .map_err(|error| StartError::Database(Box::new(error)))?;

    let task_repository = Arc::new(SeaOrmTaskRepository::new(database.clone()));
    let unit_of_work = Arc::new(SeaOrmUnitOfWork::new(database));
    let use_cases = tasks::register(
        Dispatcher::builder().middleware(middleware::standard(unit_of_work)),
        Arc::new(TaskHandlers::new(task_repository)),
    )
    .build();

    // Bind everything before serving anything, so a start that fails leaves
    // nothing running.
    let api_listener = bind(settings.api_addr).await?;
    let api_addr = local_addr(&api_listener, settings.api_addr)?;
    let web = if settings.web_page {
        let listener = bind(settings.web_addr).await?;
        let addr = local_addr(&listener, settings.web_addr)?;
        let upstream = Upstream::new(format!("http://{api_addr}")).map_err(StartError::Web)?;
        Some((listener, addr, bff::router(upstream)))
    } else {
        None
    };

    let (stop, stopped) = watch::channel(false);
    let api = api::router(AppState::new(use_cases), HttpSettings::default());
    let mut servers = vec![serve(api_listener, api, stopped.clone())];
    let web_addr = web.map(|(listener, addr, page)| {
        servers.push(serve(listener, page, stopped));
        addr
    });
    Ok(RunningService {
        api_addr,
        web_addr,
        stop,
        servers,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })
}

fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let stop = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tokio::spawn(http::serve(listener, app, stop, SHUTDOWN_GRACE))
}
