//! Authentication and per-client rate limiting, through the HTTP layers a service
//! actually runs: every kind of bad token is refused with the same 401, a good
//! one brings its caller to the handler, and neither reaches the log.
//!
//! The PEM files under `tests/keys/` are throwaway keys made for these tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use strata_app_api::application::{AppError, Principal, PrincipalKind, RequestContext};
use strata_app_api::http::auth::{
    ApiKeys, AuthError, Authenticator, JwtAlgorithm, JwtKey, JwtSettings, Secret,
    ServiceCredential, TokenService, with_authentication,
};
use strata_app_api::http::{HttpSettings, REQUEST_ID, rate_limit_by_client, with_standard_layers};
use strata_domain::ports::{Clock, MockRateLimiter};
use strata_domain::{RateLimitError, RateLimiter};
use tower::ServiceExt;

const ISSUER: &str = "https://id.strata.test";
const AUDIENCE: &str = "strata-api";
const SECRET: &str = "a shared secret for HS256 tests, 32+ bytes";
const OTHER_SECRET: &str = "another shared secret, also 32+ bytes long";
const SERVICE_KEY: &str = "sk_billing_4e1c9a7f2b8d4c6e9f0a1b2c3d4e5f6a";

const RSA_PRIVATE: &str = include_str!("keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa-public.pem");
const EC_PRIVATE: &str = include_str!("keys/ec-private.pem");
const EC_PUBLIC: &str = include_str!("keys/ec-public.pem");
const ED_PRIVATE: &str = include_str!("keys/ed-private.pem");
const ED_PUBLIC: &str = include_str!("keys/ed-public.pem");

/// Seconds since the epoch at which every test's clock starts.
const T0: u64 = 1_800_000_000;

/// A clock the tests move by hand.
#[derive(Clone)]
struct HandClock(Arc<Mutex<SystemTime>>);

impl HandClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(T0))))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for HandClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().expect("clock lock")
    }
}

fn settings(algorithm: JwtAlgorithm, keys: Vec<JwtKey>, signing_kid: &str) -> JwtSettings {
    JwtSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        algorithm,
        keys,
        signing_kid: Some(signing_kid.into()),
        leeway: Duration::from_secs(30),
        access_token_lifetime: Duration::from_secs(900),
    }
}

fn hs256_settings() -> JwtSettings {
    settings(
        JwtAlgorithm::HS256,
        vec![JwtKey::shared_secret("k1", SECRET)],
        "k1",
    )
}

fn service(settings: JwtSettings, clock: &HandClock) -> TokenService {
    TokenService::new(settings)
        .expect("valid settings")
        .with_clock(Arc::new(clock.clone()))
}

fn ada() -> Principal {
    Principal::new("user-ada", PrincipalKind::User)
        .with_role("admin")
        .with_permission("orders.place")
        .with_permission("stock.read")
}

/// Claims as the service itself would write them at `T0`.
fn claims() -> Value {
    json!({
        "sub": "user-ada",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": T0,
        "nbf": T0,
        "exp": T0 + 900,
        "jti": "0199-test",
        "roles": ["admin"],
        "scope": "orders.place stock.read",
        "kind": "user",
    })
}

/// A token signed by hand, for faults the service would never produce itself.
fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.typ = Some("at+jwt".into());
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("signed")
}

fn hs256(kid: Option<&str>, claims: &Value, secret: &str) -> String {
    sign(
        Algorithm::HS256,
        kid,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

// ---------------------------------------------------------------------------
// The application the tests call.

fn app(authenticator: Authenticator) -> Router {
    let routes = Router::new()
        .route("/whoami", get(whoami))
        .route("/private", get(private));
    with_standard_layers(
        with_authentication(routes, Arc::new(authenticator)),
        HttpSettings::default(),
    )
}

fn token_app(tokens: TokenService) -> Router {
    app(Authenticator::new().with_tokens(Arc::new(tokens)))
}

/// Who the handler sees, and the request id of the context it was given.
async fn whoami(context: RequestContext) -> String {
    let caller = context.principal().map_or_else(
        || "anonymous".to_owned(),
        |caller| {
            format!(
                "{} {:?} admin={} orders.place={} stock.read={}",
                caller.subject(),
                caller.kind(),
                caller.has_role("admin"),
                caller.has_permission("orders.place"),
                caller.has_permission("stock.read"),
            )
        },
    );
    format!("{caller} | {}", context.request_id())
}

async fn private(context: RequestContext) -> Result<String, AppError> {
    context
        .principal()
        .map(|caller| caller.subject().to_owned())
        .ok_or(AppError::Unauthenticated)
}

fn request(path: &str, authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().uri(path);
    if let Some(value) = authorization {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder.body(Body::empty()).expect("request")
}

async fn send(router: &Router, request: Request<Body>) -> Response {
    router.clone().oneshot(request).await.expect("infallible")
}

async fn text(response: Response) -> String {
    let body = to_bytes(response.into_body(), 64 * 1024)
        .await
        .expect("body");
    String::from_utf8(body.to_vec()).expect("UTF-8 body")
}

fn header_text(response: &Response, name: impl header::AsHeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The one answer every refused credential gets.
async fn assert_invalid_token(response: Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_text(&response, header::WWW_AUTHENTICATE).as_deref(),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(
        header_text(&response, header::CONTENT_TYPE).as_deref(),
        Some("application/problem+json")
    );
    let body: Value = serde_json::from_str(&text(response).await).expect("a JSON problem");
    assert_eq!(
        body,
        json!({
            "type": "about:blank",
            "title": "Unauthorized",
            "status": 401,
            "detail": "the credentials sent are not valid",
            "code": "invalid_token",
        })
    );
}

/// `token` is refused for `reason`, and over HTTP with the common 401.
async fn assert_refused(tokens: TokenService, token: &str, reason: AuthError) {
    assert_eq!(tokens.verify(token).map(|_| ()), Err(reason));
    let router = token_app(tokens);
    let response = send(
        &router,
        request("/whoami", Some(&format!("Bearer {token}"))),
    )
    .await;
    assert_invalid_token(response).await;
}

// ---------------------------------------------------------------------------
// No credentials.

#[tokio::test]
async fn a_request_without_credentials_goes_on_anonymously() {
    let clock = HandClock::new();
    let router = token_app(service(hs256_settings(), &clock));

    let response = send(&router, request("/whoami", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(text(response).await.starts_with("anonymous |"));

    let refused = send(&router, request("/private", None)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_text(&refused, header::WWW_AUTHENTICATE).as_deref(),
        Some("Bearer")
    );
    assert!(text(refused).await.contains(r#""code":"unauthenticated""#));
}

// ---------------------------------------------------------------------------
// Good tokens.

#[tokio::test]
async fn a_valid_token_brings_its_caller_to_the_handler_in_the_request_scope() {
    let clock = HandClock::new();
    let tokens = service(hs256_settings(), &clock);
    let issued = tokens.issue(&ada()).expect("issued");
    assert_eq!(issued.expires_at, T0 + 900);
    assert!(!format!("{issued:?}").contains(&issued.token));

    let router = token_app(tokens);
    let response = send(
        &router,
        request("/whoami", Some(&format!("Bearer {}", issued.token))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = header_text(&response, REQUEST_ID).expect("a request id");
    assert_eq!(
        text(response).await,
        format!("user-ada User admin=true orders.place=true stock.read=true | {request_id}"),
        "the principal joins the context the request scope made, keeping its id"
    );
}

#[tokio::test]
async fn issued_tokens_carry_the_documented_claims() {
    let clock = HandClock::new();
    let issued = service(hs256_settings(), &clock)
        .issue(&ada())
        .expect("issued");
    let parts: Vec<&str> = issued.token.split('.').collect();
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    let header = decode(parts[0]);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], "k1");
    assert_eq!(header["typ"], "at+jwt");
    let claims = decode(parts[1]);
    assert_eq!(claims["sub"], "user-ada");
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["nbf"], T0);
    assert_eq!(claims["exp"], T0 + 900);
    assert_eq!(claims["jti"], issued.token_id.as_str());
    assert_eq!(claims["roles"], json!(["admin"]));
    assert_eq!(claims["scope"], "orders.place stock.read");
    assert_eq!(claims["kind"], "user");
    let jti = uuid::Uuid::parse_str(&issued.token_id).expect("a UUID");
    assert_eq!(jti.get_version_num(), 7);
}

#[tokio::test]
async fn every_public_key_algorithm_issues_and_verifies() {
    let clock = HandClock::new();
    for (algorithm, private, public) in [
        (JwtAlgorithm::RS256, RSA_PRIVATE, RSA_PUBLIC),
        (JwtAlgorithm::PS256, RSA_PRIVATE, RSA_PUBLIC),
        (JwtAlgorithm::ES256, EC_PRIVATE, EC_PUBLIC),
        (JwtAlgorithm::EdDSA, ED_PRIVATE, ED_PUBLIC),
    ] {
        let issuer = service(
            settings(
                algorithm,
                vec![JwtKey::key_pair("pair", private, public)],
                "pair",
            ),
            &clock,
        );
        let token = issuer.issue(&ada()).expect("issued").token;
        let verifier = TokenService::new(JwtSettings {
            signing_kid: None,
            ..settings(algorithm, vec![JwtKey::public_key("pair", public)], "")
        })
        .expect("a verify-only service")
        .with_clock(Arc::new(clock.clone()));
        let caller = verifier.verify(&token).expect("verified by the public key");
        assert!(caller.has_role("admin"), "{algorithm}");
        assert!(verifier.issue(&ada()).is_err(), "a public key cannot sign");
    }
}

#[tokio::test]
async fn a_key_pair_whose_halves_do_not_match_is_refused_at_start_up() {
    let mismatched = TokenService::new(settings(
        JwtAlgorithm::ES256,
        vec![JwtKey::key_pair("pair", EC_PRIVATE, RSA_PUBLIC)],
        "pair",
    ));
    assert!(mismatched.is_err());
}

// ---------------------------------------------------------------------------
// Bad tokens: each refused for its own reason, all with the same answer.

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let clock = HandClock::new();
    let header = segment(&json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}));
    let four_parts = format!("{}.x", hs256(Some("k1"), &claims(), SECRET));
    let oversized = format!("{header}.{}.sig", "A".repeat(9_000));
    for token in [
        "garbage",
        "two.parts",
        "x.y.z",
        "!!!.@@@.###",
        "....",
        four_parts.as_str(),
        oversized.as_str(),
    ] {
        assert_refused(
            service(hs256_settings(), &clock),
            token,
            AuthError::MalformedToken,
        )
        .await;
    }
    let bad_signature_encoding = format!("{header}.{}.%%%", segment(&claims()));
    assert_refused(
        service(hs256_settings(), &clock),
        &bad_signature_encoding,
        AuthError::MalformedToken,
    )
    .await;
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused_never_a_server_error() {
    let clock = HandClock::new();
    let router = token_app(service(hs256_settings(), &clock));
    for value in [
        "Bearer",
        "Bearer ",
        "Bearer  ",
        "Bearer a b",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "ApiKey not-configured-here",
    ] {
        let response = send(&router, request("/whoami", Some(value))).await;
        assert_invalid_token(response).await;
    }

    let mut not_text = request("/whoami", None);
    not_text.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque bytes are a valid header"),
    );
    assert_invalid_token(send(&router, not_text).await).await;

    let token = service(hs256_settings(), &clock)
        .issue(&ada())
        .expect("issued")
        .token;
    let mut twice = request("/whoami", Some(&format!("Bearer {token}")));
    twice.headers_mut().append(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    assert_invalid_token(send(&router, twice).await).await;

    let lower_case = send(
        &router,
        request("/whoami", Some(&format!("bearer {token}"))),
    )
    .await;
    assert_eq!(
        lower_case.status(),
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
}

#[tokio::test]
async fn an_unsigned_token_is_refused() {
    let clock = HandClock::new();
    let header = segment(&json!({"alg": "none", "typ": "at+jwt", "kid": "k1"}));
    for token in [
        format!("{header}.{}.", segment(&claims())),
        format!("{header}.{}", segment(&claims())),
    ] {
        let expected = if token.ends_with('.') {
            AuthError::AlgorithmNotAllowed { found: None }
        } else {
            AuthError::MalformedToken
        };
        assert_refused(service(hs256_settings(), &clock), &token, expected).await;
    }
}

#[tokio::test]
async fn a_token_signed_with_another_algorithm_is_refused() {
    let clock = HandClock::new();
    let hs512 = sign(
        Algorithm::HS512,
        Some("k1"),
        &claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    );
    assert_refused(
        service(hs256_settings(), &clock),
        &hs512,
        AuthError::AlgorithmNotAllowed {
            found: Some(JwtAlgorithm::HS512),
        },
    )
    .await;
}

#[tokio::test]
async fn an_rs256_service_refuses_an_hs256_token_keyed_with_its_public_key() {
    let clock = HandClock::new();
    let rs256 = || {
        service(
            settings(
                JwtAlgorithm::RS256,
                vec![JwtKey::key_pair("rsa", RSA_PRIVATE, RSA_PUBLIC)],
                "rsa",
            ),
            &clock,
        )
    };
    let confused = sign(
        Algorithm::HS256,
        Some("rsa"),
        &claims(),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    );
    assert_refused(
        rs256(),
        &confused,
        AuthError::AlgorithmNotAllowed {
            found: Some(JwtAlgorithm::HS256),
        },
    )
    .await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let clock = HandClock::new();
    let forged = hs256(Some("k1"), &claims(), OTHER_SECRET);
    assert_refused(
        service(hs256_settings(), &clock),
        &forged,
        AuthError::BadSignature,
    )
    .await;
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_refused() {
    let clock = HandClock::new();
    let unknown = hs256(Some("k9"), &claims(), SECRET);
    assert_refused(
        service(hs256_settings(), &clock),
        &unknown,
        AuthError::UnknownKey,
    )
    .await;
}

#[tokio::test]
async fn a_token_without_a_kid_is_accepted_only_while_one_key_is_configured() {
    let clock = HandClock::new();
    let without_kid = hs256(None, &claims(), SECRET);
    service(hs256_settings(), &clock)
        .verify(&without_kid)
        .expect("one key: no doubt which");

    let two_keys = settings(
        JwtAlgorithm::HS256,
        vec![
            JwtKey::shared_secret("k1", SECRET),
            JwtKey::shared_secret("k2", OTHER_SECRET),
        ],
        "k2",
    );
    assert_refused(
        service(two_keys, &clock),
        &without_kid,
        AuthError::UnknownKey,
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refused_once_the_leeway_is_over() {
    let clock = HandClock::new();
    let tokens = service(hs256_settings(), &clock);
    let token = tokens.issue(&ada()).expect("issued").token;

    clock.advance(Duration::from_secs(900 + 29));
    tokens.verify(&token).expect("inside the leeway");
    clock.advance(Duration::from_secs(1));
    assert_refused(tokens, &token, AuthError::Expired).await;
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
    let clock = HandClock::new();
    let mut early = claims();
    early["nbf"] = json!(T0 + 30);
    service(hs256_settings(), &clock)
        .verify(&hs256(Some("k1"), &early, SECRET))
        .expect("a clock 30 s behind is within the leeway");
    early["nbf"] = json!(T0 + 31);
    assert_refused(
        service(hs256_settings(), &clock),
        &hs256(Some("k1"), &early, SECRET),
        AuthError::NotYetValid,
    )
    .await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let clock = HandClock::new();
    let elsewhere = service(
        JwtSettings {
            audience: "billing-api".into(),
            ..hs256_settings()
        },
        &clock,
    )
    .issue(&ada())
    .expect("issued")
    .token;
    assert_refused(
        service(hs256_settings(), &clock),
        &elsewhere,
        AuthError::WrongAudience,
    )
    .await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let clock = HandClock::new();
    let elsewhere = service(
        JwtSettings {
            issuer: "https://id.evil.test".into(),
            ..hs256_settings()
        },
        &clock,
    )
    .issue(&ada())
    .expect("issued")
    .token;
    assert_refused(
        service(hs256_settings(), &clock),
        &elsewhere,
        AuthError::WrongIssuer,
    )
    .await;
}

#[tokio::test]
async fn a_token_whose_payload_was_swapped_after_signing_is_refused() {
    let clock = HandClock::new();
    let tokens = service(hs256_settings(), &clock);
    let modest = tokens
        .issue(&Principal::new("user-bob", PrincipalKind::User))
        .expect("issued")
        .token;
    let mut parts: Vec<&str> = modest.split('.').collect();
    let mut elevated = claims();
    elevated["sub"] = json!("user-bob");
    let payload = segment(&elevated);
    parts[1] = &payload;
    assert_refused(tokens, &parts.join("."), AuthError::BadSignature).await;
}

#[tokio::test]
async fn a_token_missing_a_required_claim_is_refused() {
    let clock = HandClock::new();
    for claim in ["sub", "iss", "aud", "exp", "nbf", "kind"] {
        let mut partial = claims();
        partial
            .as_object_mut()
            .expect("an object")
            .remove(claim)
            .expect("the claim was there");
        assert_refused(
            service(hs256_settings(), &clock),
            &hs256(Some("k1"), &partial, SECRET),
            AuthError::InvalidClaims,
        )
        .await;
    }
}

#[tokio::test]
async fn a_jwt_that_is_not_an_access_token_is_refused() {
    let clock = HandClock::new();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let id_token = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signed");
    assert_refused(
        service(hs256_settings(), &clock),
        &id_token,
        AuthError::NotAnAccessToken,
    )
    .await;

    header.typ = Some("at+jwt".into());
    header.crit = Some(vec!["exp-ext".into()]);
    let with_extension = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signed");
    assert_refused(
        service(hs256_settings(), &clock),
        &with_extension,
        AuthError::CriticalHeader,
    )
    .await;
}

// ---------------------------------------------------------------------------
// Key rotation.

#[tokio::test]
async fn a_token_signed_by_a_retired_key_verifies_until_that_key_is_removed() {
    let clock = HandClock::new();
    let before = service(hs256_settings(), &clock);
    let old_token = before.issue(&ada()).expect("issued").token;

    let rotating = service(
        settings(
            JwtAlgorithm::HS256,
            vec![
                JwtKey::shared_secret("k1", SECRET),
                JwtKey::shared_secret("k2", OTHER_SECRET),
            ],
            "k2",
        ),
        &clock,
    );
    rotating
        .verify(&old_token)
        .expect("the old key still verifies");
    let new_token = rotating.issue(&ada()).expect("issued").token;
    let header = jsonwebtoken::decode_header(&new_token).expect("a header");
    assert_eq!(header.kid.as_deref(), Some("k2"), "the new key signs");
    before
        .verify(&new_token)
        .expect_err("the new key is unknown to a service not yet rotated");

    let after = service(
        settings(
            JwtAlgorithm::HS256,
            vec![JwtKey::shared_secret("k2", OTHER_SECRET)],
            "k2",
        ),
        &clock,
    );
    after.verify(&new_token).expect("the new key verifies");
    assert_refused(after, &old_token, AuthError::UnknownKey).await;
}

// ---------------------------------------------------------------------------
// Service API keys.

fn api_keys() -> ApiKeys {
    ApiKeys::new([
        ServiceCredential::with_key("billing", &Secret::from(SERVICE_KEY))
            .expect("a valid credential")
            .with_permission("orders.place"),
    ])
    .expect("valid keys")
}

#[tokio::test]
async fn a_service_with_a_known_api_key_is_its_caller() {
    let router = app(Authenticator::new().with_api_keys(api_keys()));
    let response = send(
        &router,
        request("/whoami", Some(&format!("ApiKey {SERVICE_KEY}"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        text(response)
            .await
            .starts_with("billing Service admin=false orders.place=true stock.read=false |")
    );
}

#[tokio::test]
async fn an_unknown_api_key_is_refused_like_a_bad_token() {
    let router = app(Authenticator::new().with_api_keys(api_keys()));
    let near_miss = format!("{}0", &SERVICE_KEY[..SERVICE_KEY.len() - 1]);
    assert_eq!(
        api_keys().authenticate(&near_miss).map(|_| ()),
        Err(AuthError::UnknownApiKey)
    );
    let response = send(
        &router,
        request("/whoami", Some(&format!("ApiKey {near_miss}"))),
    )
    .await;
    assert_invalid_token(response).await;

    let bearer_not_configured = send(&router, request("/whoami", Some("Bearer a.b.c"))).await;
    assert_invalid_token(bearer_not_configured).await;
}

// ---------------------------------------------------------------------------
// Rate limiting by client.

const CLIENT: &str = "203.0.113.9:50000";

fn from_client(mut request: Request<Body>) -> Request<Body> {
    let peer: SocketAddr = CLIENT.parse().expect("an address");
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn limited_app(limiter: Arc<dyn RateLimiter>) -> Router {
    let clock = HandClock::new();
    let authenticator =
        Authenticator::new().with_tokens(Arc::new(service(hs256_settings(), &clock)));
    let routes = Router::new().route("/whoami", get(whoami));
    with_standard_layers(
        rate_limit_by_client(
            with_authentication(routes, Arc::new(authenticator)),
            limiter,
        ),
        HttpSettings::default(),
    )
}

#[tokio::test]
async fn a_client_over_its_limit_is_answered_429_with_retry_after() {
    let mut limiter = MockRateLimiter::new();
    let mut allowance = 1;
    limiter
        .expect_acquire()
        .withf(|key| key == "client:203.0.113.9")
        .times(2)
        .returning(move |_| {
            if allowance > 0 {
                allowance -= 1;
                Ok(())
            } else {
                Err(RateLimitError::Limited {
                    retry_after: Duration::from_millis(2_500),
                })
            }
        });
    let router = limited_app(Arc::new(limiter));

    let first = send(&router, from_client(request("/whoami", None))).await;
    assert_eq!(first.status(), StatusCode::OK);

    let second = send(
        &router,
        from_client(request("/whoami", Some("Bearer forged.token.guess"))),
    )
    .await;
    assert_eq!(
        second.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "throttled before its credentials are even looked at"
    );
    assert_eq!(
        header_text(&second, header::RETRY_AFTER).as_deref(),
        Some("3")
    );
    assert_eq!(
        header_text(&second, header::CONTENT_TYPE).as_deref(),
        Some("application/problem+json")
    );
    assert!(text(second).await.contains(r#""code":"too_many_requests""#));
}

#[tokio::test]
async fn a_client_of_unknown_address_shares_one_key_and_an_unavailable_limiter_lets_requests_through()
 {
    let mut limiter = MockRateLimiter::new();
    limiter
        .expect_acquire()
        .withf(|key| key == "client:unknown")
        .times(1)
        .returning(|_| {
            Err(RateLimitError::Unavailable(
                std::io::Error::other("store down").into(),
            ))
        });
    let router = limited_app(Arc::new(limiter));
    let response = send(&router, request("/whoami", None)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------
// Logs.

/// A log destination the test reads back.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_part_of_a_token_reaches_the_log() {
    let clock = HandClock::new();
    let tokens = service(hs256_settings(), &clock);
    let good = tokens.issue(&ada()).expect("issued").token;
    let forged = hs256(Some("k1"), &claims(), OTHER_SECRET);
    let router = token_app(tokens);

    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            for token in [&good, &forged] {
                let _ = send(
                    &router,
                    request("/private", Some(&format!("Bearer {token}"))),
                )
                .await;
            }
            let _ = send(
                &router,
                request("/private", Some(&format!("ApiKey {SERVICE_KEY}"))),
            )
            .await;
        });
    });

    let log = String::from_utf8(buffer.0.lock().expect("log lock").clone()).expect("UTF-8 log");
    assert!(
        log.contains("credentials refused"),
        "the refusal is logged: {log}"
    );
    assert!(log.contains("request finished"), "{log}");
    for token in [&good, &forged] {
        for part in token.split('.') {
            assert!(!log.contains(part), "a token part reached the log:\n{log}");
        }
    }
    assert!(!log.contains(SERVICE_KEY), "{log}");
}
