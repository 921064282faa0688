//! An HTTP load balancer that sends every *request* to the next instance in
//! turn — not every connection: a device's keep-alive connection carries
//! its sync, its photo checks and its uploads, and each of them may land on
//! another instance, as behind a layer-7 balancer with no stickiness.
//!
//! A request whose instance refuses the connection (a stopped or killed
//! one) is sent to the next; the balancer never retries a request an
//! instance accepted, so what the device sees of a dying instance is what a
//! real balancer would pass on.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Request bodies are buffered so a refused connection can be tried on the
/// next instance; device requests are far below this.
const MAX_BODY: usize = 64 << 20;

pub struct Balancer {
    pub url: String,
    upstreams: Vec<String>,
    served: Arc<Vec<AtomicUsize>>,
}

struct Shared {
    upstreams: Vec<String>,
    next: AtomicUsize,
    served: Arc<Vec<AtomicUsize>>,
    client: Client<HttpConnector, Body>,
}

impl Balancer {
    /// Listens on a free loopback port and spreads requests over
    /// `upstreams` (host:port), round-robin.
    pub fn start(upstreams: Vec<String>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("balancer binds");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let served: Arc<Vec<AtomicUsize>> =
            Arc::new(upstreams.iter().map(|_| AtomicUsize::new(0)).collect());
        let shared = Arc::new(Shared {
            upstreams: upstreams.clone(),
            next: AtomicUsize::new(0),
            served: served.clone(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("balancer runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(move |req: Request<Body>| {
                    let shared = shared.clone();
                    async move { forward(&shared, req).await }
                });
                let _ = axum::serve(listener, app).await;
            });
        });
        Balancer {
            url,
            upstreams,
            served,
        }
    }

    /// Requests each instance (in `start`'s order) has been sent so far.
    pub fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .collect()
    }

    pub fn upstreams(&self) -> &[String] {
        &self.upstreams
    }
}

async fn forward(shared: &Shared, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let first = shared.next.fetch_add(1, Ordering::SeqCst);
    let n = shared.upstreams.len();
    for k in 0..n {
        let i = (first + k) % n;
        let Ok(uri) = format!("http://{}{}", shared.upstreams[i], path).parse::<Uri>() else {
            return status(StatusCode::BAD_REQUEST);
        };
        let mut up = Request::builder().method(parts.method.clone()).uri(uri);
        for (name, value) in &parts.headers {
            up = up.header(name, value);
        }
        let Ok(up) = up.body(Body::from(bytes.clone())) else {
            return status(StatusCode::BAD_REQUEST);
        };
        match shared.client.request(up).await {
            Ok(resp) => {
                shared.served[i].fetch_add(1, Ordering::SeqCst);
                return resp.map(Body::new);
            }
            // Refused before anything was sent: the next instance.
            Err(e) if e.is_connect() => continue,
            Err(_) => return status(StatusCode::BAD_GATEWAY),
        }
    }
    status(StatusCode::BAD_GATEWAY)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}
