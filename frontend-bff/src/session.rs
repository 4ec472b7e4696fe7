//! The browser's session: an opaque id in an `HttpOnly`, `SameSite=Lax`
//! cookie (`Secure` unless switched off for plain-HTTP development); the
//! user's access and refresh tokens stay on the server and are refreshed
//! there; every unsafe request must carry the session's CSRF token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

use crate::upstream::{Call, Origin, Upstream, UpstreamError};

/// The form field an HTML form sends its CSRF token in.
pub const CSRF_FIELD: &str = "_csrf";
/// The header a script sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The most of a form body read to find its CSRF token.
const FORM_LIMIT: usize = 64 * 1024;
/// An access token this close to expiring is refreshed before it is used.
const REFRESH_AHEAD: Duration = Duration::from_secs(30);

/// How sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// The cookie's name.
    pub cookie_name: String,
    /// Whether the cookie is sent over HTTPS only; switch off only to
    /// develop over plain HTTP.
    pub secure: bool,
    /// How long an unused session lives.
    pub idle: Duration,
    /// The most sessions held; the least recently used go first.
    pub capacity: u64,
    /// Where the upstream refreshes tokens: `POST` with `{refresh_token}`,
    /// answering `{access_token, expires_in, refresh_token}`.
    pub refresh_path: String,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            cookie_name: "strata_session".into(),
            secure: true,
            idle: Duration::from_secs(2 * 60 * 60),
            capacity: 100_000,
            refresh_path: "/api/auth/refresh".into(),
        }
    }
}

/// A signed-in user's tokens, as the upstream's sign-in answered them.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    /// The bearer token for upstream calls.
    pub access_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// What buys the next access token.
    pub refresh_token: String,
}

#[derive(Debug, Clone)]
struct Held {
    access_token: String,
    refresh_token: String,
    refresh_after: Instant,
}

impl Held {
    fn from(tokens: Tokens) -> Self {
        let lifetime = Duration::from_secs(tokens.expires_in);
        Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            refresh_after: Instant::now() + lifetime.saturating_sub(REFRESH_AHEAD),
        }
    }
}

#[derive(Debug)]
struct Data {
    csrf: String,
    tokens: Option<Held>,
    values: HashMap<String, serde_json::Value>,
}

impl Data {
    fn new() -> Self {
        Self {
            csrf: random_token(),
            tokens: None,
            values: HashMap::new(),
        }
    }
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The sessions of one BFF, held in memory.
#[derive(Clone)]
pub struct Sessions {
    settings: Arc<SessionSettings>,
    store: moka::future::Cache<String, Arc<Mutex<Data>>>,
    upstream: Upstream,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("settings", &self.settings)
            .field("held", &self.store.entry_count())
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions kept as `settings` say, refreshing tokens at `upstream`.
    #[must_use]
    pub fn new(settings: SessionSettings, upstream: Upstream) -> Self {
        let store = moka::future::Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_idle(settings.idle)
            .build();
        Self {
            settings: Arc::new(settings),
            store,
            upstream,
        }
    }

    async fn open(&self, id: Option<&str>) -> (Session, bool) {
        if let Some(id) = id
            && let Some(data) = self.store.get(id).await
        {
            return (self.handle(id.to_owned(), data), false);
        }
        let id = random_token();
        let data = Arc::new(Mutex::new(Data::new()));
        self.store.insert(id.clone(), data.clone()).await;
        (self.handle(id, data), true)
    }

    fn handle(&self, id: String, data: Arc<Mutex<Data>>) -> Session {
        Session {
            id: Arc::new(StdMutex::new(Identity { id, moved: false })),
            data,
            sessions: self.clone(),
        }
    }

    fn cookie(&self, id: &str) -> Option<HeaderValue> {
        let cookie = Cookie::build((self.settings.cookie_name.clone(), id.to_owned()))
            .http_only(true)
            .secure(self.settings.secure)
            .same_site(SameSite::Lax)
            .path("/")
            .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
    }
}

#[derive(Debug)]
struct Identity {
    id: String,
    /// Whether the id changed during this request, so the browser must be
    /// given the new one.
    moved: bool,
}

/// One browser's session, taken as an extractor by handlers behind
/// [`session_layer`].
#[derive(Clone)]
pub struct Session {
    id: Arc<StdMutex<Identity>>,
    data: Arc<Mutex<Data>>,
    sessions: Sessions,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    /// The token every unsafe request of this session must carry, in the
    /// [`CSRF_FIELD`] form field or the [`CSRF_HEADER`] header.
    pub async fn csrf_token(&self) -> String {
        self.data.lock().await.csrf.clone()
    }

    /// Whether a user is signed in.
    pub async fn is_signed_in(&self) -> bool {
        self.data.lock().await.tokens.is_some()
    }

    /// Signs `tokens`' user in. The session gets a new id and CSRF token, so
    /// an id planted before sign-in is worth nothing after it.
    pub async fn sign_in(&self, tokens: Tokens) {
        let mut data = self.data.lock().await;
        data.tokens = Some(Held::from(tokens));
        data.csrf = random_token();
        drop(data);
        self.move_to_new_id().await;
    }

    /// Signs the user out: forgets the tokens and everything kept, and moves
    /// to a new id. Returns the refresh token so the caller can revoke it.
    pub async fn sign_out(&self) -> Option<String> {
        let mut data = self.data.lock().await;
        let refresh = data.tokens.take().map(|held| held.refresh_token);
        data.values.clear();
        data.csrf = random_token();
        drop(data);
        self.move_to_new_id().await;
        refresh
    }

    async fn move_to_new_id(&self) {
        let new = random_token();
        let old = {
            let mut identity = self.id.lock().unwrap_or_else(PoisonError::into_inner);
            identity.moved = true;
            std::mem::replace(&mut identity.id, new.clone())
        };
        self.sessions.store.invalidate(&old).await;
        self.sessions.store.insert(new, self.data.clone()).await;
    }

    /// The access token for an upstream call on the user's behalf, refreshed
    /// first when it is about to expire; none when no one is signed in or the
    /// refresh was refused (the user is then signed out).
    ///
    /// # Errors
    /// When the upstream could not be asked to refresh: the tokens are kept
    /// for the next try.
    pub async fn access_token(&self, origin: &Origin) -> Result<Option<String>, UpstreamError> {
        // Held across the refresh, so two requests never spend one refresh
        // token (the upstream would take the second spend for a theft).
        let mut data = self.data.lock().await;
        let Some(held) = data.tokens.clone() else {
            return Ok(None);
        };
        if Instant::now() < held.refresh_after {
            return Ok(Some(held.access_token));
        }
        let call = Call::post(
            self.sessions.settings.refresh_path.clone(),
            serde_json::json!({ "refresh_token": held.refresh_token }),
        );
        match self.sessions.upstream.send::<Tokens>(origin, call).await {
            Ok(answer) => {
                let held = Held::from(answer.body);
                let token = held.access_token.clone();
                data.tokens = Some(held);
                Ok(Some(token))
            }
            Err(error) if error.status() == Some(401) => {
                tracing::info!("the session's refresh token was refused; signed out");
                data.tokens = None;
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The claims of the signed-in user's access token, read without
    /// checking its signature: for what a page shows (a link to a page the
    /// user may open), never for what it allows — the upstream checks the
    /// token on every call.
    pub async fn claims<T: DeserializeOwned>(&self) -> Option<T> {
        use base64::Engine as _;
        let data = self.data.lock().await;
        let token = &data.tokens.as_ref()?.access_token;
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The value kept under `key`, if any and if it reads as a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let data = self.data.lock().await;
        data.values
            .get(key)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }

    /// Keeps `value` under `key` for the rest of the session.
    pub async fn set<T: Serialize>(&self, key: &str, value: &T) {
        if let Ok(value) = serde_json::to_value(value) {
            self.data.lock().await.values.insert(key.to_owned(), value);
        }
    }

    /// Forgets what is kept under `key` and returns it.
    pub async fn take<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let value = self.data.lock().await.values.remove(key)?;
        serde_json::from_value(value).ok()
    }

    async fn csrf_matches(&self, offered: &str) -> bool {
        let data = self.data.lock().await;
        bool::from(offered.as_bytes().ct_eq(data.csrf.as_bytes()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "the route is not behind the session layer",
        ))
    }
}

/// Opens the request's session (a new one when its cookie names none that is
/// held), refuses an unsafe request whose CSRF token is missing or wrong with
/// 403, and gives the browser the session's cookie when its id is new.
///
/// Install with `axum::middleware::from_fn_with_state(sessions, session_layer)`.
pub async fn session_layer(
    State(sessions): State<Sessions>,
    request: Request,
    next: Next,
) -> Response {
    let presented = presented_id(&request, &sessions.settings.cookie_name);
    let (session, fresh) = sessions.open(presented.as_deref()).await;
    let mut request = request;
    if is_unsafe(request.method()) {
        let (whole, offered) = match offered_csrf(request).await {
            Ok(read) => read,
            Err(response) => return response,
        };
        let matches = match offered {
            Some(offered) => session.csrf_matches(&offered).await,
            None => false,
        };
        if !matches {
            tracing::warn!("an unsafe request without the session's CSRF token was refused");
            return refused(&sessions, &session, fresh);
        }
        request = whole;
    }
    request.extensions_mut().insert(session.clone());
    let mut response = next.run(request).await;
    set_cookie_if_moved(&sessions, &session, fresh, &mut response);
    response
}

fn refused(sessions: &Sessions, session: &Session, fresh: bool) -> Response {
    let mut response = (
        StatusCode::FORBIDDEN,
        crate::html::page(
            "Form expired",
            "<main><h1>This form has expired</h1><p>Go back, reload the page and send it \
             again.</p></main>",
        ),
    )
        .into_response();
    set_cookie_if_moved(sessions, session, fresh, &mut response);
    response
}

fn set_cookie_if_moved(
    sessions: &Sessions,
    session: &Session,
    fresh: bool,
    response: &mut Response,
) {
    let identity = session.id.lock().unwrap_or_else(PoisonError::into_inner);
    if (fresh || identity.moved)
        && let Some(cookie) = sessions.cookie(&identity.id)
    {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn presented_id(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// The CSRF token the request offers, from its header or its form body; the
/// request is given back whole.
async fn offered_csrf(request: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(token) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        let token = token.to_owned();
        return Ok((request, Some(token)));
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response());
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::Router;
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    use super::*;

    fn sessions(secure: bool, upstream: &str) -> Sessions {
        Sessions::new(
            SessionSettings {
                secure,
                ..SessionSettings::default()
            },
            Upstream::new(upstream).expect("valid"),
        )
    }

    fn app(sessions: Sessions) -> Router {
        Router::new()
            .route(
                "/",
                get(|session: Session| async move { session.csrf_token().await }),
            )
            .route("/echo", post(|body: String| async move { body }))
            .route(
                "/sign-in",
                post(|session: Session| async move {
                    session
                        .sign_in(Tokens {
                            access_token: "a".into(),
                            expires_in: 300,
                            refresh_token: "r".into(),
                        })
                        .await;
                    "in"
                }),
            )
            .route(
                "/who",
                get(|session: Session| async move { session.is_signed_in().await.to_string() }),
            )
            .layer(axum::middleware::from_fn_with_state(
                sessions,
                session_layer,
            ))
    }

    async fn call(app: &Router, request: Request) -> (StatusCode, Option<String>, String) {
        let response = app.clone().oneshot(request).await.expect("answered");
        let status = response.status();
        let cookie = response
            .headers()
            .get(SET_COOKIE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, cookie, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_with(path: &str, cookie: Option<&str>) -> Request {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.body(Body::empty()).expect("request")
    }

    fn form(path: &str, cookie: &str, body: String) -> Request {
        Request::post(path)
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request")
    }

    fn pair(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap_or_default().to_owned()
    }

    #[tokio::test]
    async fn a_new_browser_gets_an_http_only_lax_secure_cookie() {
        let app = app(sessions(true, "http://127.0.0.1:9"));
        let (status, cookie, _) = call(&app, get_with("/", None)).await;
        assert_eq!(status, StatusCode::OK);
        let cookie = cookie.expect("a cookie");
        assert!(cookie.starts_with("strata_session="), "{cookie}");
        for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(cookie.contains(flag), "{flag} missing from {cookie}");
        }
        // A browser that presents it keeps its session: no new cookie.
        let (_, again, _) = call(&app, get_with("/", Some(&pair(&cookie)))).await;
        assert_eq!(again, None);
    }

    #[tokio::test]
    async fn plain_http_development_drops_only_the_secure_flag() {
        let app = app(sessions(false, "http://127.0.0.1:9"));
        let (_, cookie, _) = call(&app, get_with("/", None)).await;
        let cookie = cookie.expect("a cookie");
        assert!(!cookie.contains("Secure"), "{cookie}");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
    }

    #[tokio::test]
    async fn an_unsafe_request_needs_the_sessions_csrf_token() {
        let app = app(sessions(true, "http://127.0.0.1:9"));
        let (_, cookie, token) = call(&app, get_with("/", None)).await;
        let cookie = pair(&cookie.expect("a cookie"));

        let (status, _, _) = call(&app, form("/echo", &cookie, "note=hi".into())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no token");
        let (status, _, _) = call(&app, form("/echo", &cookie, "note=hi&_csrf=wrong".into())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a wrong token");
        let (status, _, _) = call(
            &app,
            form("/echo", "strata_session=made-up", format!("_csrf={token}")),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "another session's token");

        let (status, _, body) = call(
            &app,
            form("/echo", &cookie, format!("note=hi&_csrf={token}")),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            format!("note=hi&_csrf={token}"),
            "the handler reads the whole form"
        );

        let by_header = Request::post("/echo")
            .header(COOKIE, &cookie)
            .header(CSRF_HEADER, &token)
            .body(Body::from("{}"))
            .expect("request");
        let (status, _, _) = call(&app, by_header).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn signing_in_moves_the_session_to_a_new_id() {
        let app = app(sessions(true, "http://127.0.0.1:9"));
        let (_, cookie, token) = call(&app, get_with("/", None)).await;
        let before = pair(&cookie.expect("a cookie"));
        let (status, moved, _) =
            call(&app, form("/sign-in", &before, format!("_csrf={token}"))).await;
        assert_eq!(status, StatusCode::OK);
        let after = pair(&moved.expect("a new cookie"));
        assert_ne!(before, after);
        let (_, _, signed_in) = call(&app, get_with("/who", Some(&after))).await;
        assert_eq!(signed_in, "true");
        // The id planted before sign-in opens a fresh, signed-out session.
        let (_, _, planted) = call(&app, get_with("/who", Some(&before))).await;
        assert_eq!(planted, "false");
    }

    #[tokio::test]
    async fn an_expiring_access_token_is_refreshed_once_for_concurrent_requests() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let upstream = Router::new().route(
            "/api/auth/refresh",
            post(move |body: axum::Json<serde_json::Value>| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    assert_eq!(body["refresh_token"], "r0");
                    axum::Json(serde_json::json!({
                        "access_token": format!("a{}", n + 1),
                        "expires_in": 300,
                        "refresh_token": format!("r{}", n + 1),
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, upstream).await;
        });
        let sessions = sessions(true, &format!("http://{addr}"));
        let (session, _) = sessions.open(None).await;
        session
            .sign_in(Tokens {
                access_token: "a0".into(),
                expires_in: 0,
                refresh_token: "r0".into(),
            })
            .await;
        let origin = Origin::from_headers(&axum::http::HeaderMap::new());
        let (first, second) =
            tokio::join!(session.access_token(&origin), session.access_token(&origin));
        assert_eq!(first.expect("refreshed"), Some("a1".to_owned()));
        assert_eq!(second.expect("refreshed"), Some("a1".to_owned()));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        server.abort();
    }
}
