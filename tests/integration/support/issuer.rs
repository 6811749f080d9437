//! A real, loopback-only test OIDC issuer for the integration tests.
//!
//! [`TestIssuer`] is a tiny HTTP/1.1 server bound to `127.0.0.1` that serves an OpenID Connect
//! discovery document at `/.well-known/openid-configuration` and a JWKS at the non-standard path
//! `/oauth/discovery/keys` (as GitLab does). Tests can change what it serves at any time (keys,
//! raw JWKS, discovery overrides, `Cache-Control`) and make either endpoint misbehave
//! ([`Behavior`]: error statuses, slowness, trickling, huge or invalid bodies, redirects). It
//! counts the requests to both endpoints, and [`TestIssuer::stop`] / [`TestIssuer::restart`]
//! really close and re-open the listening socket on the same port.
//!
//! The keys it publishes are [`TestKey`]s of the library's test kit (`wif_gateway::testkit`),
//! which also signs and forges the tokens.
//!
//! [`ConnectionCounter`] is a listener that only counts TCP connections, to assert that the
//! gateway never contacts URLs named inside tokens (`jku`, `x5u`, ...).
//!
//! The HTTP server is hand-written on top of `tokio::net` on purpose: it gives full control over
//! the bytes on the wire (chunked trickling, bodies without `Content-Length`, abrupt
//! disconnects) and over connection lifetimes (every connection task is aborted on `stop`).
//! It understands just enough HTTP/1.1 for the gateway's HTTP client: request heads, bodies
//! with `Content-Length` (discarded) and keep-alive.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use wif_gateway::testkit::{self, KeyKind, TestKey, claims};

/// Path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JWKS (non-standard, as GitLab serves it).
pub const JWKS_PATH: &str = "/oauth/discovery/keys";
/// Size of the body served by [`Behavior::Huge`] and [`Behavior::HugeWithLength`].
pub const HUGE_BODY_LEN: usize = 10 * 1024 * 1024;

/// Largest request head the server accepts before dropping the connection.
const MAX_REQUEST_HEAD: usize = 64 * 1024;
/// The bytes [`Behavior::Trickle`] cycles through, one per second.
const TRICKLE_TEXT: &[u8] =
    br#"{"keys":[{"kty":"RSA","kid":"trickle","use":"sig","n":"AQAB","e":"AQAB"},"#;
/// Padding chunk for [`Behavior::Huge`].
static HUGE_PAD: [u8; 64 * 1024] = [b'a'; 64 * 1024];
const HUGE_PREFIX: &[u8] = br#"{"keys":[],"padding":""#;
const HUGE_SUFFIX: &[u8] = br#""}"#;

/// How an endpoint of the [`TestIssuer`] answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Behavior {
    /// The normal document.
    #[default]
    Normal,
    /// This status with a small `text/plain` body (no body for 204 and 304).
    Status(u16),
    /// Sleep (tokio time), then answer normally with the state current after the sleep.
    Slow(Duration),
    /// A 200 `application/json` chunked response whose body arrives one byte per second,
    /// forever (until the client gives up, or the issuer stops).
    Trickle,
    /// A 200 JSON-looking body of [`HUGE_BODY_LEN`] bytes (10 MiB), streamed chunked, so without
    /// a `Content-Length` header: the size is only discovered while reading.
    Huge,
    /// Like [`Behavior::Huge`] but with an honest `Content-Length` header.
    HugeWithLength,
    /// 200 `application/json` with body `{not json`.
    InvalidJson,
    /// 200 `{"keys":[]}` (on the discovery path too).
    EmptyKeys,
    /// 302 with `Location` set to the given URL.
    Redirect(String),
    /// Close the connection right after reading the request, without any response.
    Disconnect,
}

#[derive(Debug)]
struct State {
    issuer: String,
    keys: Vec<TestKey>,
    raw_jwks: Option<Value>,
    raw_discovery: Option<Value>,
    jwks_behavior: Behavior,
    discovery_behavior: Behavior,
    discovery_jwks_uri: Option<String>,
    discovery_issuer: Option<String>,
    cache_control: Option<String>,
}

impl State {
    fn jwks(&self) -> Value {
        match &self.raw_jwks {
            Some(raw) => raw.clone(),
            None => testkit::jwks(&self.keys),
        }
    }

    fn discovery(&self) -> Value {
        if let Some(raw) = &self.raw_discovery {
            return raw.clone();
        }
        let jwks_uri = self
            .discovery_jwks_uri
            .clone()
            .unwrap_or_else(|| format!("{}{JWKS_PATH}", self.issuer));
        json!({
            "issuer": self.discovery_issuer.clone().unwrap_or_else(|| self.issuer.clone()),
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        })
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running accept loop: a shutdown signal and the task (which owns the listener and, in a
/// `JoinSet`, every connection task).
#[derive(Debug)]
struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// A test OIDC issuer on `127.0.0.1`. See the module docs.
///
/// Dropping it aborts the server (listener and connections) without waiting.
#[derive(Debug)]
pub struct TestIssuer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

impl TestIssuer {
    /// A started issuer that publishes one new key of `kind` under `kid`: the usual test setup.
    pub async fn with_key(kind: KeyKind, kid: &str) -> (TestIssuer, TestKey) {
        let issuer = TestIssuer::start().await;
        let key = TestKey::generate(kind, kid);
        issuer.add_key(&key);
        (issuer, key)
    }
    /// Binds `127.0.0.1:0` and serves until dropped or [`TestIssuer::stop`]ped. Starts with no
    /// keys and [`Behavior::Normal`] on both endpoints.
    pub async fn start() -> TestIssuer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind test issuer on 127.0.0.1:0");
        let addr = listener.local_addr().expect("test issuer local address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                issuer: format!("http://{addr}"),
                keys: Vec::new(),
                raw_jwks: None,
                raw_discovery: None,
                jwks_behavior: Behavior::Normal,
                discovery_behavior: Behavior::Normal,
                discovery_jwks_uri: None,
                discovery_issuer: None,
                cache_control: None,
            }),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
        });
        let running = spawn_server(listener, Arc::clone(&shared));
        TestIssuer {
            shared,
            addr,
            running: Mutex::new(Some(running)),
        }
    }

    fn running(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The listening address (stays the same across stop/restart).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `{issuer}/oauth/discovery/keys`.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.issuer())
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}{DISCOVERY_PATH}", self.issuer())
    }

    /// `{issuer}{path}`: any URL on this server (unknown paths answer 404).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    /// Publishes the key in the JWKS from now on (replacing a key with the same `kid`, in place).
    pub fn add_key(&self, key: &TestKey) {
        let mut state = self.shared.lock();
        match state.keys.iter_mut().find(|k| k.kid() == key.kid()) {
            Some(existing) => *existing = key.clone(),
            None => state.keys.push(key.clone()),
        }
    }

    /// Stops publishing the key(s) with this `kid`.
    pub fn remove_key(&self, kid: &str) {
        self.shared.lock().keys.retain(|k| k.kid() != kid);
    }

    /// Serves this JSON verbatim as the JWKS instead of the keys (`None`: back to the keys).
    pub fn set_raw_jwks(&self, jwks: Option<Value>) {
        self.shared.lock().raw_jwks = jwks;
    }

    /// Serves this JSON verbatim as the discovery document (`None`: back to the generated one).
    pub fn set_raw_discovery(&self, doc: Option<Value>) {
        self.shared.lock().raw_discovery = doc;
    }

    /// How the JWKS endpoint answers from now on.
    pub fn set_jwks_behavior(&self, b: Behavior) {
        self.shared.lock().jwks_behavior = b;
    }

    /// How the discovery endpoint answers from now on.
    pub fn set_discovery_behavior(&self, b: Behavior) {
        self.shared.lock().discovery_behavior = b;
    }

    /// Overrides `jwks_uri` in the discovery document (`None`: [`TestIssuer::jwks_url`]).
    pub fn set_discovery_jwks_uri(&self, uri: Option<String>) {
        self.shared.lock().discovery_jwks_uri = uri;
    }

    /// Overrides `issuer` in the discovery document (`None`: [`TestIssuer::issuer`]).
    pub fn set_discovery_issuer(&self, iss: Option<String>) {
        self.shared.lock().discovery_issuer = iss;
    }

    /// `Cache-Control` header value on every JWKS response, whatever the behavior (`None`: no
    /// header).
    pub fn set_cache_control(&self, v: Option<String>) {
        self.shared.lock().cache_control = v;
    }

    /// The JWKS the endpoint serves under [`Behavior::Normal`] right now.
    pub fn jwks(&self) -> Value {
        self.shared.lock().jwks()
    }

    /// The discovery document the endpoint serves under [`Behavior::Normal`] right now.
    pub fn discovery(&self) -> Value {
        self.shared.lock().discovery()
    }

    /// Requests received on the JWKS path (any method, query or behavior), since start.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Requests received on `/.well-known/openid-configuration`, since start.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Sets both request counters back to zero.
    pub fn reset_counters(&self) {
        self.shared.jwks_fetches.store(0, Ordering::SeqCst);
        self.shared.discovery_fetches.store(0, Ordering::SeqCst);
    }

    /// Whether the server is listening (started or restarted, and not stopped).
    pub fn is_running(&self) -> bool {
        self.running().is_some()
    }

    /// Closes the listener and every connection (including in-flight slow or trickling
    /// responses) and waits until they are closed: connections are refused from now on.
    /// Idempotent.
    pub async fn stop(&self) {
        let running = self.running().take();
        if let Some(running) = running {
            let _ = running.shutdown.send(());
            let _ = running.task.await;
        }
    }

    /// Binds the same port again (retrying for a few seconds while it is busy) and serves
    /// with the current state; counters keep counting. Stops first if running.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = bind_retrying(self.addr).await;
        let running = spawn_server(listener, Arc::clone(&self.shared));
        let previous = self.running().replace(running);
        if let Some(previous) = previous {
            previous.task.abort();
        }
    }

    /// A normal valid token from this issuer: `key.sign(&claims(&self.issuer(), sub, aud))`.
    pub fn token(&self, key: &TestKey, sub: &str, aud: &str) -> String {
        key.sign(&claims(&self.issuer(), sub, aud))
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(running) = self.running().take() {
            running.task.abort();
        }
    }
}

async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    let mut attempts = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(_) if attempts < 250 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("test issuer: cannot re-bind {addr}: {e}"),
        }
    }
}

fn spawn_server(listener: TcpListener, shared: Arc<Shared>) -> Running {
    let (shutdown, mut shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                biased;
                // Fires on stop(), and also if the sender is dropped.
                _ = &mut shutdown_rx => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        let shared = Arc::clone(&shared);
                        connections.spawn(async move {
                            let _ = serve_connection(&shared, stream).await;
                        });
                    }
                    // E.g. too many open files: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
        drop(listener);
        connections.shutdown().await;
    });
    Running { shutdown, task }
}

/// The parts of a request the issuer cares about.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    keep_alive: bool,
}

async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one request (head, and a `Content-Length` body which is discarded). `None` on a clean
/// end of stream between requests. Bytes read beyond the request stay in `buf`.
async fn read_request(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Request>> {
    let mut chunk = [0u8; 8192];
    let head_len = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Err(invalid("request head too large"));
        }
        let n = read_some(stream, &mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| invalid("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default();
    let version = request_line.next().unwrap_or_default();
    // Absolute-form targets (as sent to proxies): keep only the path.
    let target = match target.split_once("://") {
        Some((_scheme, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut keep_alive = version == "HTTP/1.1";
    let mut content_length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().map_err(|_| invalid("bad content-length"))?;
        } else if name.eq_ignore_ascii_case("connection") {
            if value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
            {
                keep_alive = false;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked request bodies are not supported: answer, then close.
            keep_alive = false;
        }
    }
    buf.drain(..head_len);
    let buffered = content_length.min(buf.len());
    buf.drain(..buffered);
    let mut remaining = content_length - buffered;
    while remaining > 0 {
        let want = remaining.min(chunk.len());
        let n = read_some(stream, &mut chunk[..want]).await?;
        if n == 0 {
            return Ok(None);
        }
        remaining -= n;
    }
    Ok(Some(Request {
        method,
        path,
        keep_alive,
    }))
}

#[derive(Debug)]
enum Body {
    Bytes(Vec<u8>),
    Trickle,
    Huge { content_length: bool },
    Disconnect,
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

impl Response {
    fn json(value: &Value) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body: Body::Bytes(serde_json::to_vec(value).expect("serialize JSON body")),
        }
    }

    fn text(status: u16, text: String) -> Response {
        let body = if matches!(status, 100..=199 | 204 | 304) {
            Vec::new()
        } else {
            text.into_bytes()
        };
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_owned())],
            body: Body::Bytes(body),
        }
    }

    /// A 200 `application/json` response with this body.
    fn streaming(body: Body) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type", "application/json".to_owned())],
            body,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Discovery,
    Jwks,
}

async fn respond(shared: &Shared, request: &Request) -> Response {
    let endpoint = match request.path.as_str() {
        DISCOVERY_PATH => Endpoint::Discovery,
        JWKS_PATH => Endpoint::Jwks,
        _ => return Response::text(404, format!("not found: {}\n", request.path)),
    };
    let behavior = {
        let state = shared.lock();
        match endpoint {
            Endpoint::Discovery => {
                shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
                state.discovery_behavior.clone()
            }
            Endpoint::Jwks => {
                shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                state.jwks_behavior.clone()
            }
        }
    };
    let mut response = match behavior {
        Behavior::Normal | Behavior::Slow(_) => {
            if let Behavior::Slow(delay) = behavior {
                tokio::time::sleep(delay).await;
            }
            let state = shared.lock();
            match endpoint {
                Endpoint::Discovery => Response::json(&state.discovery()),
                Endpoint::Jwks => Response::json(&state.jwks()),
            }
        }
        Behavior::Status(status) => Response::text(status, format!("test issuer: {status}\n")),
        Behavior::Trickle => Response::streaming(Body::Trickle),
        Behavior::Huge => Response::streaming(Body::Huge {
            content_length: false,
        }),
        Behavior::HugeWithLength => Response::streaming(Body::Huge {
            content_length: true,
        }),
        Behavior::InvalidJson => Response::streaming(Body::Bytes(b"{not json".to_vec())),
        Behavior::EmptyKeys => Response::json(&json!({"keys": []})),
        Behavior::Redirect(location) => Response {
            status: 302,
            headers: vec![("Location", location)],
            body: Body::Bytes(Vec::new()),
        },
        Behavior::Disconnect => Response::streaming(Body::Disconnect),
    };
    if endpoint == Endpoint::Jwks
        && let Some(cache_control) = shared.lock().cache_control.clone()
    {
        response.headers.push(("Cache-Control", cache_control));
    }
    response
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Whatever",
    }
}

/// Writes `data` as one chunk of a chunked body.
async fn write_chunk(stream: &TcpStream, data: &[u8]) -> io::Result<()> {
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    write_all(stream, &frame).await
}

/// Writes the response; returns whether the connection may serve another request.
async fn write_response(
    stream: &TcpStream,
    response: Response,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<bool> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nServer: wif-test-issuer\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match response.body {
        Body::Disconnect => Ok(false),
        Body::Bytes(body) => {
            if !matches!(response.status, 100..=199 | 204 | 304) {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            if !keep_alive {
                head.push_str("Connection: close\r\n");
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            if !head_only {
                bytes.extend_from_slice(&body);
            }
            write_all(stream, &bytes).await?;
            Ok(keep_alive)
        }
        Body::Trickle => {
            head.push_str("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
            write_all(stream, head.as_bytes()).await?;
            if head_only {
                return Ok(false);
            }
            for &byte in TRICKLE_TEXT.iter().cycle() {
                write_chunk(stream, &[byte]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(false)
        }
        Body::Huge { content_length } => {
            if content_length {
                head.push_str(&format!("Content-Length: {HUGE_BODY_LEN}\r\n"));
            } else {
                head.push_str("Transfer-Encoding: chunked\r\n");
            }
            head.push_str("Connection: close\r\n\r\n");
            write_all(stream, head.as_bytes()).await?;
            if head_only {
                return Ok(false);
            }
            let mut padding = HUGE_BODY_LEN - HUGE_PREFIX.len() - HUGE_SUFFIX.len();
            let mut pieces = vec![HUGE_PREFIX];
            pieces.extend(std::iter::from_fn(|| {
                let n = padding.min(HUGE_PAD.len());
                padding -= n;
                (n > 0).then(|| &HUGE_PAD[..n])
            }));
            pieces.push(HUGE_SUFFIX);
            for piece in pieces {
                if content_length {
                    write_all(stream, piece).await?;
                } else {
                    write_chunk(stream, piece).await?;
                }
            }
            if !content_length {
                write_all(stream, b"0\r\n\r\n").await?;
            }
            Ok(false)
        }
    }
}

async fn serve_connection(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&stream, &mut buf).await? else {
            return Ok(());
        };
        let response = respond(shared, &request).await;
        let head_only = request.method.eq_ignore_ascii_case("HEAD");
        if !write_response(&stream, response, head_only, request.keep_alive).await? {
            return Ok(());
        }
    }
}

/// A TCP listener on 127.0.0.1:0 that counts accepted connections and answers nothing useful
/// (a bare 404, then close): for asserting the gateway never contacts URLs named in token
/// headers such as `jku`/`x5u`. Stops when dropped.
#[derive(Debug)]
pub struct ConnectionCounter {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ConnectionCounter {
    /// Binds `127.0.0.1:0` and starts counting.
    pub async fn start() -> ConnectionCounter {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind connection counter on 127.0.0.1:0");
        let addr = listener.local_addr().expect("connection counter address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            let mut answering = JoinSet::new();
            loop {
                tokio::select! {
                    Some(_) = answering.join_next(), if !answering.is_empty() => {}
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _peer)) => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            answering.spawn(answer_nothing(stream));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                }
            }
        });
        ConnectionCounter {
            addr,
            connections,
            task,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash; append any path).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Waits (briefly) for a request, answers a bare 404 and closes.
async fn answer_nothing(stream: TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), read_some(&stream, &mut buf)).await;
    let response = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = write_all(&stream, response).await;
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
