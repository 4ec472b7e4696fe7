use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

const REQUEST_ID: &str = "x-request-id";
const TRACEPARENT: &str = "traceparent";

/// The browser request a BFF call is made for: its request id (kept, or made
/// here) and W3C trace context, forwarded upstream so the API's log lines join
/// the BFF's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    request_id: String,
    traceparent: Option<String>,
}

impl Origin {
    /// The origin described by incoming `headers`: their `x-request-id` when it is
    /// short visible ASCII (else a new id) and their `traceparent`, if any.
    #[must_use]
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let request_id = text(REQUEST_ID)
            .filter(|id| {
                !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        let traceparent = text(TRACEPARENT)
            .filter(|value| value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        Self {
            request_id,
            traceparent,
        }
    }

    /// The request id forwarded upstream.
    #[must_use]
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// Why a call to the upstream API did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is not an absolute http(s) URL.
    #[error("`{0}` is not an http:// or https:// URL")]
    InvalidBaseUrl(String),
    /// The upstream could not be reached or did not answer in time.
    #[error("the upstream API is unreachable")]
    Unreachable(#[source] reqwest::Error),
    /// The upstream answered with an error status.
    #[error("the upstream API answered {status}")]
    Status {
        /// The status it answered.
        status: u16,
    },
    /// The upstream's answer was not the JSON expected.
    #[error("the upstream API's answer could not be read")]
    Unreadable(#[source] reqwest::Error),
}

/// A client for one upstream API (app-api), with a bounded timeout on every call.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base_url: String,
}

impl Upstream {
    /// How long one upstream call may take before the BFF gives up on it.
    pub const TIMEOUT: Duration = Duration::from_secs(5);

    /// A client for the API at `base_url`, such as `http://127.0.0.1:8080`.
    ///
    /// # Errors
    /// When `base_url` is not an http(s) URL or the client cannot be built.
    pub fn new(base_url: impl Into<String>) -> Result<Self, UpstreamError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(UpstreamError::InvalidBaseUrl(base_url));
        }
        let client = reqwest::Client::builder()
            .timeout(Self::TIMEOUT)
            .build()
            .map_err(UpstreamError::Unreachable)?;
        Ok(Self { client, base_url })
    }

    /// The base URL calls are made against.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `GET`s `path_and_query` (starting with `/`) on behalf of the request
    /// `origin` and reads the JSON answer.
    ///
    /// # Errors
    /// When the upstream is unreachable, answers an error status, or answers
    /// something other than the expected JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        origin: &Origin,
        path_and_query: &str,
    ) -> Result<T, UpstreamError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let mut request = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(REQUEST_ID, &origin.request_id);
        if let Some(traceparent) = &origin.traceparent {
            request = request.header(TRACEPARENT, traceparent);
        }
        let response = request.send().await.map_err(UpstreamError::Unreachable)?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(%url, status = status.as_u16(), "upstream answered an error");
            return Err(UpstreamError::Status {
                status: status.as_u16(),
            });
        }
        response.json().await.map_err(UpstreamError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_base_url_without_a_scheme() {
        assert!(matches!(
            Upstream::new("127.0.0.1:8080"),
            Err(UpstreamError::InvalidBaseUrl(_))
        ));
    }

    #[test]
    fn drops_a_trailing_slash_so_paths_join_cleanly() {
        let upstream = Upstream::new("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(upstream.base_url(), "http://127.0.0.1:8080");
    }

    fn origin() -> Origin {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, "page-req-1".parse().expect("valid header"));
        headers.insert(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .expect("valid header"),
        );
        Origin::from_headers(&headers)
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_reported_not_panicked() {
        // Nothing listens on a port we just bound and released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let upstream = Upstream::new(format!("http://127.0.0.1:{port}")).expect("valid");
        let result = upstream
            .get_json::<serde_json::Value>(&origin(), "/health")
            .await;
        assert!(matches!(result, Err(UpstreamError::Unreachable(_))));
    }

    #[tokio::test]
    async fn the_request_id_and_trace_context_travel_upstream() {
        let echo = axum::Router::new().route(
            "/echo",
            axum::routing::get(|headers: HeaderMap| async move {
                let text = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                axum::Json(serde_json::json!({
                    "request_id": text(REQUEST_ID),
                    "traceparent": text(TRACEPARENT),
                }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(async move { axum::serve(listener, echo).await });

        let upstream = Upstream::new(format!("http://{addr}")).expect("valid");
        let seen: serde_json::Value = upstream.get_json(&origin(), "/echo").await.expect("echoed");

        assert_eq!(seen["request_id"], "page-req-1");
        assert_eq!(
            seen["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        server.abort();
    }

    #[test]
    fn a_missing_or_unusable_request_id_is_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, "has space".parse().expect("valid header"));
        let origin = Origin::from_headers(&headers);
        assert_ne!(origin.request_id(), "has space");
        assert!(!origin.request_id().is_empty());
    }
}
