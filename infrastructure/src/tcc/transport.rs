//! How the coordinator calls a branch: over HTTP by default.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_domain::ports::BranchOp;

/// The header carrying the global transaction's id.
pub const GID_HEADER: &str = "x-strata-gid";
/// The header carrying the branch's id.
pub const BRANCH_HEADER: &str = "x-strata-branch";
/// The header carrying the operation (`try`, `confirm`, `cancel`).
pub const OP_HEADER: &str = "x-strata-op";
/// The header carrying the moment, in milliseconds since the Unix epoch,
/// after which the transaction sends no try any more: what a participant
/// without a barrier decides by.
pub const DEADLINE_HEADER: &str = "x-strata-deadline";

/// One call of one branch.
#[derive(Debug, Clone, Copy)]
pub struct BranchCall<'a> {
    /// The global transaction.
    pub gid: &'a str,
    /// The branch.
    pub branch: &'a str,
    /// What is asked.
    pub op: BranchOp,
    /// Where the participant's branch lives: the operation is appended
    /// (`{url}/try`).
    pub url: &'a str,
    /// The branch's request, the same for each of its operations.
    pub payload: &'a serde_json::Value,
    /// The trace the call belongs to.
    pub traceparent: Option<&'a str>,
    /// When the transaction stops sending tries, in milliseconds since the
    /// Unix epoch.
    pub deadline_ms: i64,
}

/// What a participant answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchAnswer {
    /// Done (200).
    Success,
    /// Refused for good (409): a try that failed aborts the transaction.
    Failure(String),
    /// Anything else — a timeout, a 5xx, a refused connection: not known, so
    /// the call is made again.
    Unknown(String),
}

/// Calls branches.
#[async_trait]
pub trait BranchTransport: Send + Sync {
    /// Makes `call` and says what came of it; never fails otherwise.
    async fn call(&self, call: BranchCall<'_>) -> BranchAnswer;
}

/// A bearer token for the calls, asked for at each one, so it is renewed.
pub type TokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Calls branches over HTTP: `POST {url}/{op}` with the payload as JSON and
/// the global id, branch id and operation in headers, the trace context in
/// `traceparent`, and a service token when one is given; 200 is success, 409
/// failure, anything else unknown.
#[derive(Clone)]
pub struct HttpBranchTransport {
    client: reqwest::Client,
    token: Option<TokenSource>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpBranchTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBranchTransport")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpBranchTransport {
    /// A transport whose calls each take at most `timeout`.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        Self {
            client: reqwest::Client::new(),
            token: None,
            timeout,
        }
    }

    /// Sends `Authorization: Bearer {token}` with each call.
    #[must_use]
    pub fn with_token(mut self, token: TokenSource) -> Self {
        self.token = Some(token);
        self
    }
}

#[async_trait]
impl BranchTransport for HttpBranchTransport {
    async fn call(&self, call: BranchCall<'_>) -> BranchAnswer {
        let url = format!("{}/{}", call.url.trim_end_matches('/'), call.op.as_str());
        let mut request = self
            .client
            .post(&url)
            .timeout(self.timeout)
            .header(GID_HEADER, call.gid)
            .header(BRANCH_HEADER, call.branch)
            .header(OP_HEADER, call.op.as_str())
            .header(DEADLINE_HEADER, call.deadline_ms.to_string())
            .json(call.payload);
        if let Some(traceparent) = call.traceparent {
            request = request.header("traceparent", traceparent);
        }
        if let Some(token) = self.token.as_ref().and_then(|token| token()) {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => match response.status().as_u16() {
                200 => BranchAnswer::Success,
                409 => BranchAnswer::Failure(
                    response
                        .text()
                        .await
                        .unwrap_or_else(|_| "refused".to_owned())
                        .chars()
                        .take(2_000)
                        .collect(),
                ),
                status => BranchAnswer::Unknown(format!("{url} answered {status}")),
            },
            Err(error) => BranchAnswer::Unknown(format!("{url}: {error}")),
        }
    }
}
