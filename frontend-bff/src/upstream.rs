use std::time::Duration;

use serde::de::DeserializeOwned;

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

    /// `GET`s `path_and_query` (starting with `/`) and reads the JSON answer.
    ///
    /// # Errors
    /// When the upstream is unreachable, answers an error status, or answers
    /// something other than the expected JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, UpstreamError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let response = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(UpstreamError::Unreachable)?;
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

    #[tokio::test]
    async fn an_unreachable_upstream_is_reported_not_panicked() {
        // Port 9 (discard) on loopback has no listener here; the call must fail cleanly.
        let upstream = Upstream::new("http://127.0.0.1:9").expect("valid");
        let result = upstream.get_json::<serde_json::Value>("/health").await;
        assert!(matches!(result, Err(UpstreamError::Unreachable(_))));
    }
}
