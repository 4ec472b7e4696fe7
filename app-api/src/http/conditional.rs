use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use xxhash_rust::xxh3::xxh3_128;

/// The largest body the ETag layer buffers to hash; larger answers, and answers
/// of unknown length, go out as they are, without an ETag.
const MAX_HASHED_BODY: usize = 1 << 20;

/// Adds an `ETag` and `Cache-Control: <cache_control>` to successful `GET` answers
/// of `router`, and answers `304 Not Modified` (no body) when the client's
/// `If-None-Match` already names the current ETag — so a client or proxy holding
/// a fresh copy does not download it again.
///
/// The ETag is a 128-bit digest of the body (XXH3: fast, and not meant to
/// resist forgery, which an ETag need not), so it changes exactly when the
/// answer does, whichever instance served it.
///
/// Only answers of known length up to 1 MiB are hashed; a streamed answer
/// (unknown length: a live feed, a download) and a larger one go out as the
/// handler produced them, without an ETag.
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
    // Only a body whose length is known and small enough is read to hash. One
    // of unknown length (a stream: a live feed, a download, an answer with
    // trailers) goes out as it comes, at once and whole.
    let hashable = body
        .size_hint()
        .exact()
        .and_then(|length| usize::try_from(length).ok())
        .is_some_and(|length| length <= MAX_HASHED_BODY);
    if !hashable {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_HASHED_BODY).await else {
        // The handler's body failed or outgrew the length it announced; what
        // it answered cannot be sent.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = format!("\"{:032x}\"", xxh3_128(&bytes));
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
    use axum::body::{Bytes, to_bytes};
    use axum::routing::get;
    use futures_util::StreamExt as _;
    use http_body_util::{BodyExt as _, StreamBody};
    use hyper::body::Frame;
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

    /// A body of unknown length (a live feed, events as they happen) starts
    /// at once, ends with the trailers its handler sent, and gets no ETag: the
    /// layer does not wait for an end that may never come.
    #[tokio::test]
    async fn a_streamed_answer_starts_at_once_and_keeps_its_trailers() {
        let app = with_etags(
            Router::new()
                .route(
                    "/feed",
                    get(|| async {
                        let first = futures_util::stream::iter([Ok::<_, std::io::Error>(
                            Bytes::from_static(b"data: first\n\n"),
                        )]);
                        Body::from_stream(first.chain(futures_util::stream::pending()))
                    }),
                )
                .route(
                    "/trailed",
                    get(|| async {
                        let mut trailers = axum::http::HeaderMap::new();
                        trailers.insert("checksum", HeaderValue::from_static("abc"));
                        let frames = futures_util::stream::iter([
                            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"rows"))),
                            Ok(Frame::trailers(trailers)),
                        ]);
                        Body::new(StreamBody::new(frames))
                    }),
                ),
            "no-cache",
        );
        let patience = std::time::Duration::from_secs(10);
        let request = |path: &str| {
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request")
        };

        let feed = tokio::time::timeout(patience, app.clone().oneshot(request("/feed")))
            .await
            .expect("the feed's head arrives before its end")
            .expect("infallible");
        assert_eq!(feed.status(), StatusCode::OK);
        assert!(feed.headers().get(header::ETAG).is_none());
        let mut body = feed.into_body();
        let first = tokio::time::timeout(patience, body.frame())
            .await
            .expect("the first event arrives before the feed ends")
            .expect("a frame")
            .expect("no error")
            .into_data()
            .expect("data");
        assert_eq!(&first[..], b"data: first\n\n");

        let trailed = app.oneshot(request("/trailed")).await.expect("infallible");
        assert!(trailed.headers().get(header::ETAG).is_none());
        let collected = trailed.into_body().collect().await.expect("body");
        assert_eq!(
            collected
                .trailers()
                .and_then(|trailers| trailers.get("checksum"))
                .and_then(|value| value.to_str().ok()),
            Some("abc")
        );
        assert_eq!(&collected.to_bytes()[..], b"rows");
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
