//! A fresh PostgreSQL database for one test or benchmark run (strata-tests'
//! kit depends on this crate, so its tests and benches make theirs here).

use sea_orm::ConnectionTrait;

/// An empty database of its own on a PostgreSQL server, dropped (whoever is
/// still connected) when this goes.
pub struct FreshPostgres {
    url: String,
    server: String,
    name: String,
}

impl FreshPostgres {
    /// Creates the database on the server `server` names.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses to create it.
    pub async fn create(server: &str) -> Self {
        let name = format!("strata_test_{}", uuid::Uuid::now_v7().simple());
        let url = create(server, &name).await;
        Self {
            url,
            server: server.to_owned(),
            name,
        }
    }

    /// Where the database is.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop cannot await, and the caller's runtime may be shutting down:
        // the database is dropped from a thread with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let dropped = match sea_orm::Database::connect(server.as_str()).await {
                    Ok(admin) => {
                        let dropped = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        let _ = admin.close().await;
                        dropped.map(drop)
                    }
                    Err(error) => Err(error),
                };
                if let Err(error) = dropped {
                    eprintln!("the test database {name} was left behind: {error}");
                }
            });
        });
        let _ = dropped.join();
    }
}

async fn create(server: &str, name: &str) -> String {
    let admin = sea_orm::Database::connect(server)
        .await
        .expect("connect to the PostgreSQL server");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("a database of its own");
    let _ = admin.close().await;
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(base, query)| (base, Some(query)));
    let authority = base.find("://").map_or(0, |scheme| scheme + 3);
    let end = base[authority..]
        .find('/')
        .map_or(base.len(), |slash| authority + slash);
    let mut url = format!("{}/{name}", &base[..end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}
