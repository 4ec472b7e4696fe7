use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use strata_domain::{RateLimitError, RateLimiter};

use crate::application::{AppError, RequestContext, error_chain};

/// Limits how often each client may call `router`, answering 429
/// `too_many_requests` problem+json with `Retry-After` once a client has used up
/// its allowance.
///
/// Clients are told apart by the address in their [`RequestContext`], so apply
/// this inside the request scope, and outside authentication so that guessing
/// credentials is throttled too:
/// `with_standard_layers(rate_limit_by_client(with_authentication(routes, auth), limiter), settings)`.
/// An IPv6 client is keyed by its /64 network, which one subscriber usually
/// holds whole. Requests whose address is unknown share one key. Behind a
/// reverse proxy, name it in `HttpSettings::trusted_proxies` so the client is
/// the address it forwarded (see [`super::client_address`]), not the proxy.
///
/// When the limiter cannot decide, the request goes through and a warning is
/// logged: an unreachable limiter store should not take the API down with it.
pub fn rate_limit_by_client(router: Router, limiter: Arc<dyn RateLimiter>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(limiter, limit_client))
}

async fn limit_client(
    State(limiter): State<Arc<dyn RateLimiter>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let address = request
        .extensions()
        .get::<RequestContext>()
        .and_then(RequestContext::client_addr);
    match limiter.acquire(&client_key(address)).await {
        Ok(()) => next.run(request).await,
        Err(RateLimitError::Limited { retry_after }) => AppError::TooManyRequests {
            retry_after_secs: whole_seconds_after(retry_after),
        }
        .into_response(),
        Err(error @ RateLimitError::Unavailable(_)) => {
            tracing::warn!(error = %error_chain(&error), "rate limiter unavailable; request let through");
            next.run(request).await
        }
    }
}

fn client_key(address: Option<IpAddr>) -> String {
    match address {
        Some(address) => format!(
            "client:{}",
            crate::application::context::network_of(address)
        ),
        None => "client:unknown".to_owned(),
    }
}

/// `Retry-After` counts whole seconds; rounding down would invite a retry that
/// is refused again.
fn whole_seconds_after(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_their_network() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let neighbour: IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("address");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(client_key(Some(one)), client_key(Some(neighbour)));
        assert_ne!(client_key(Some(one)), client_key(Some(elsewhere)));
        assert_eq!(client_key(Some(one)), "client:2001:db8:1:2::/64");
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_their_ipv4_client() {
        let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 9).to_ipv6_mapped());
        assert_eq!(client_key(Some(mapped)), "client:203.0.113.9");
        assert_eq!(client_key(None), "client:unknown");
        assert_ne!(
            client_key(Some(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            client_key(None)
        );
    }

    #[test]
    fn retry_after_rounds_up_to_a_whole_second() {
        assert_eq!(whole_seconds_after(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds_after(Duration::from_millis(1_500)), 2);
        assert_eq!(whole_seconds_after(Duration::from_secs(3)), 3);
        assert_eq!(whole_seconds_after(Duration::ZERO), 1);
    }
}
