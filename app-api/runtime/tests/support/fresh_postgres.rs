//! A fresh PostgreSQL database for one test or benchmark run (strata-tests'
//! kit depends on this crate, so its tests and benches make theirs here).

use sea_orm::ConnectionTrait;

/// Creates an empty database on the server `server` names, and answers its URL.
///
/// # Panics
/// When the server cannot be reached or refuses to create it.
pub async fn fresh_postgres_url(server: &str) -> String {
    let name = format!("strata_test_{}", uuid::Uuid::now_v7().simple());
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
