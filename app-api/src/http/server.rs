//! Serving a router on a socket: one HTTP/1.1 connection per client, each
//! bounded in time and all of them in number, with a graceful stop.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use super::Problem;

/// How many connections a server holds, and how long a client may take to
/// send a request's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers — and, on a
    /// kept-alive connection, to begin the next request — before the
    /// connection is closed. Cuts off clients that trickle headers to hold
    /// connections open (slow loris).
    pub header_read_timeout: Duration,
    /// How many connections are served at once. A client connecting beyond it
    /// is answered 503 `server_busy` with `Retry-After` and the connection
    /// closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// How many connections over the limit are answered 503 at once; beyond these
/// a connection is closed without an answer, so a flood costs nothing but the
/// accept.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a connection over the limit may take to send the request it is
/// refused.
const REFUSAL_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `router` on `listener` (recording each client's address for its
/// request context) until `shutdown` completes; then stops accepting
/// connections and lets requests in flight finish, for at most `grace`, after
/// which they are abandoned.
///
/// # Errors
/// Never for a client's fault; the listener's own failures are logged and the
/// loop goes on.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let mut connection = http1::Builder::new();
    connection
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut refusal = http1::Builder::new();
    refusal
        .timer(TokioTimer::new())
        .header_read_timeout(REFUSAL_READ_TIMEOUT)
        .keep_alive(false);
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let graceful = GracefulShutdown::new();
    let mut refusal_log = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it
                    // was accepted: wait a moment rather than spin.
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => {
                let service = router
                    .clone()
                    .map_request(move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        request
                    });
                let served = graceful.watch(
                    connection
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)),
                );
                tokio::spawn(async move {
                    if let Err(error) = served.await {
                        tracing::debug!(error = %error, "a connection ended with an error");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                refusal_log.count();
                refuse(stream, &refusal, &refusals);
            }
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_ms = grace.as_millis(), "requests still in flight after the grace period were abandoned");
        }
    }
    Ok(())
}

/// Logs refused connections at most once a second, with how many there were,
/// so a flood of them cannot flood the log too.
#[derive(Default)]
struct RefusalLog {
    logged_at: Option<std::time::Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn count(&mut self) {
        self.unlogged += 1;
        let now = std::time::Instant::now();
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        tracing::warn!(
            refused = self.unlogged,
            "connection limit reached; connections were refused"
        );
        self.logged_at = Some(now);
        self.unlogged = 0;
    }
}

/// Answers the request on a connection over the limit with 503, then closes it.
fn refuse<S>(stream: S, builder: &http1::Builder, refusals: &Arc<Semaphore>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(slot): Result<OwnedSemaphorePermit, _> = Arc::clone(refusals).try_acquire_owned() else {
        return;
    };
    let answer = builder.serve_connection(
        TokioIo::new(stream),
        hyper::service::service_fn(|_request: Request<Incoming>| async {
            Ok::<Response<Body>, Infallible>(server_busy())
        }),
    );
    tokio::spawn(async move {
        let _ = answer.await;
        drop(slot);
    });
}

fn server_busy() -> Response {
    let mut response = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "server_busy")
        .with_detail("the server has as many connections as it serves; try again shortly")
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    struct Server {
        addr: SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl Server {
        async fn start(limits: ConnectionLimits) -> Self {
            let router = Router::new().route("/", get(|| async { "hello" })).route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            );
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(serve(
                listener,
                router,
                async move {
                    let _ = stopped.await;
                },
                Duration::from_secs(5),
                limits,
            ));
            Self {
                addr,
                stop: Some(stop),
                task,
            }
        }

        async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            self.task
                .await
                .expect("server task")
                .expect("the server stopped cleanly");
        }
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(request).await.expect("request written");
        let mut answer = String::new();
        let _ = client.read_to_string(&mut answer).await;
        answer
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";

    #[tokio::test]
    async fn shutdown_lets_a_request_in_flight_finish() {
        let server = Server::start(ConnectionLimits::default()).await;
        let mut client = TcpStream::connect(server.addr).await.expect("connect");
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .expect("request written");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopping = tokio::spawn(server.stop());

        let mut answer = String::new();
        client
            .read_to_string(&mut answer)
            .await
            .expect("answer read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"));
        stopping.await.expect("stopped");
    }

    #[tokio::test]
    async fn a_client_trickling_its_headers_is_cut_off() {
        let server = Server::start(ConnectionLimits {
            header_read_timeout: Duration::from_secs(2),
            ..ConnectionLimits::default()
        })
        .await;
        let mut client = TcpStream::connect(server.addr).await.expect("connect");
        let started = std::time::Instant::now();
        let mut sent = 0;
        let mut closed = false;
        // One byte a second: the whole header would take over a minute.
        for byte in b"GET / HTTP/1.1\r\nhost: test\r\nuser-agent: slow-loris-probe\r\n\r\n" {
            if client.write_all(&[*byte]).await.is_err() {
                closed = true;
                break;
            }
            sent += 1;
            let mut buffer = [0_u8; 512];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_secs(1), client.read(&mut buffer)).await
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "the connection outlived its header read timeout");
        assert!(sent < 10, "cut off after {sent} bytes");
        assert!(started.elapsed() < Duration::from_secs(10));
        // The server still serves everyone else.
        assert!(exchange(server.addr, GET).await.starts_with("HTTP/1.1 200"));
        server.stop().await;
    }

    #[tokio::test]
    async fn a_connection_over_the_limit_is_answered_503_with_retry_after() {
        let server = Server::start(ConnectionLimits {
            max_connections: 2,
            ..ConnectionLimits::default()
        })
        .await;
        let first = TcpStream::connect(server.addr).await.expect("connect");
        let second = TcpStream::connect(server.addr).await.expect("connect");
        // Both are accepted and held before the third arrives.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let refused = exchange(server.addr, GET).await;
        assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
        assert!(
            refused.to_ascii_lowercase().contains("retry-after: 1"),
            "{refused}"
        );
        assert!(refused.contains("server_busy"), "{refused}");

        drop(first);
        drop(second);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(exchange(server.addr, GET).await.starts_with("HTTP/1.1 200"));
        server.stop().await;
    }
}
