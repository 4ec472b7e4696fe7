use axum::Router;
#[cfg(test)]
use axum::body::to_bytes;
use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};

/// The largest body the ETag layer buffers to hash; larger answers go out as
/// they are, without an ETag.
const MAX_HASHED_BODY: usize = 1 << 20;

/// Adds an `ETag` and `Cache-Control: <cache_control>` to successful `GET` answers
/// of `router`, and answers `304 Not Modified` (no body) when the client's
/// `If-None-Match` already names the current ETag — so a client or proxy holding
/// a fresh copy does not download it again.
///
/// The ETag is a digest of the body, so it changes exactly when the answer does,
/// whichever instance served it.
pub fn with_etags<S>(router: Router<S>, cache_control: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: axum::middleware::Next| {
            conditional(request, next, cache_control)
        },
    ))
}

async fn conditional(
    request: Request,
    next: axum::middleware::Next,
    cache_control: &'static str,
) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return next.run(request).await;
    }
    let if_none_match = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if usize::try_from(body.size_hint().lower()).map_or(true, |least| least > MAX_HASHED_BODY) {
        return Response::from_parts(parts, body);
    }
    // Read up to the limit; an answer that turns out larger goes out whole,
    // what was read first followed by the rest.
    let mut stream = body.into_data_stream();
    let mut read: Vec<Bytes> = Vec::new();
    let mut length = 0;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The handler's body failed; what it answered cannot be sent.
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        length += chunk.len();
        read.push(chunk);
        if length > MAX_HASHED_BODY {
            let whole = futures_util::stream::iter(read.into_iter().map(Ok)).chain(stream);
            return Response::from_parts(parts, Body::from_stream(whole));
        }
    }
    let bytes: Bytes = if read.len() == 1 {
        read.swap_remove(0)
    } else {
        read.concat().into()
    };
    let digest = Sha256::digest(&bytes);
    let etag = format!("\"{}\"", crate::hex(&digest[..16]));
    let Ok(etag_value) = HeaderValue::from_str(&etag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(header::ETAG, etag_value.clone());
    parts.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if if_none_match.is_some_and(|tags| matches(&tags, &etag)) {
        let mut not_modified = StatusCode::NOT_MODIFIED.into_response();
        for name in [header::ETAG, header::CACHE_CONTROL, header::VARY] {
            if let Some(value) = parts.headers.get(&name) {
                not_modified.headers_mut().insert(name, value.clone());
            }
        }
        return not_modified;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, as RFC 9110
/// asks for `If-None-Match`), or is `*`.
fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        with_etags(
            Router::new().route("/tea", get(|| async { "green tea" })),
            "public, max-age=30",
        )
    }

    async fn get_with(if_none_match: Option<&str>) -> Response {
        let mut request = Request::builder().uri("/tea");
        if let Some(tags) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tags);
        }
        app()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    /// An answer too large to hash (known by its length, or found while
    /// reading it) goes out whole, without an ETag, never as an error.
    #[tokio::test]
    async fn an_answer_too_large_to_hash_goes_out_whole_without_an_etag() {
        // Digits in a running pattern, so a chunk out of place would show.
        let large: String = (0..MAX_HASHED_BODY + 10)
            .map(|index| char::from(b'0' + u8::try_from(index % 10).unwrap_or(0)))
            .collect();
        let expected = large.clone();
        let streamed = large.clone();
        let app = with_etags(
            Router::new()
                .route("/large", get(move || async move { large }))
                .route(
                    "/streamed",
                    get(move || async move {
                        let chunks = streamed
                            .into_bytes()
                            .chunks(64 * 1024)
                            .map(|chunk| {
                                Ok::<_, std::io::Error>(axum::body::Bytes::copy_from_slice(chunk))
                            })
                            .collect::<Vec<_>>();
                        Body::from_stream(futures_util::stream::iter(chunks))
                    }),
                ),
            "public, max-age=30",
        );
        for path in ["/large", "/streamed"] {
            let response = app
                .clone()
                .oneshot(
                    Request::builder()
                        .uri(path)
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("infallible");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(response.headers().get(header::ETAG).is_none(), "{path}");
            let body = to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            assert!(body == expected.as_bytes(), "{path}: the body changed");
        }
    }

    #[tokio::test]
    async fn a_client_with_the_current_copy_gets_304_without_a_body() {
        let first = get_with(None).await;
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first
            .headers()
            .get(header::ETAG)
            .and_then(|value| value.to_str().ok())
            .expect("an ETag")
            .to_owned();
        assert_eq!(
            first
                .headers()
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
            Some("public, max-age=30")
        );

        for tags in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".into(),
        ] {
            let again = get_with(Some(&tags)).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{tags}");
            let body = to_bytes(again.into_body(), 64).await.expect("body");
            assert!(body.is_empty());
        }
        let stale = get_with(Some("\"something-else\"")).await;
        assert_eq!(stale.status(), StatusCode::OK);
    }
}
