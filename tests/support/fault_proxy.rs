//! A loopback HTTP/1.1 proxy that injects faults on a seeded schedule, for the trust tests.
//!
//! Every request gets its own upstream connection (`Connection: close` both ways), so a fault
//! hits exactly one request. The faults are what networks and gateways really do: resets before
//! and after the request reached the server (the second one loses an answer the server already
//! acted on), delays, bodies cut short, and 502/503/429 answers with `Retry-After` — the 502 is
//! sent after the server has handled the request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// The connection is reset before the request is forwarded.
    ResetBeforeForwarding,
    /// The server handles the request; the connection is reset before its answer is returned.
    ResetAfterForwarding,
    /// The answer is held back for a while.
    Delay,
    /// The server handles the request; only half of its answer is returned.
    TruncateAnswer,
    /// The server handles the request; the client is told 502 Bad Gateway.
    BadGatewayAfterForwarding,
    /// 503 with `Retry-After: 1`, not forwarded.
    Unavailable,
    /// 429 with `Retry-After: 1`, not forwarded.
    TooManyRequests,
}

const ALL: [Fault; 7] = [
    Fault::ResetBeforeForwarding,
    Fault::ResetAfterForwarding,
    Fault::Delay,
    Fault::TruncateAnswer,
    Fault::BadGatewayAfterForwarding,
    Fault::Unavailable,
    Fault::TooManyRequests,
];

struct State {
    rng: StdRng,
    /// Chance that a request gets a fault, in percent.
    rate: u32,
    injected: BTreeMap<Fault, u64>,
}

/// A running proxy; dropping it stops accepting.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    enabled: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Proxies to `upstream`, giving `rate_percent` of requests a fault chosen by `seed`.
    pub async fn start(upstream: SocketAddr, seed: u64, rate_percent: u32) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            rng: StdRng::seed_from_u64(seed),
            rate: rate_percent,
            injected: BTreeMap::new(),
        }));
        let enabled = Arc::new(AtomicBool::new(true));
        let requests = Arc::new(AtomicU64::new(0));
        let task = {
            let (state, enabled, requests) = (state.clone(), enabled.clone(), requests.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let fault = if enabled.load(Ordering::Relaxed) {
                        let mut s = state.lock().unwrap();
                        let rate = s.rate;
                        if s.rng.random_range(0..100) < rate {
                            let f = ALL[s.rng.random_range(0..ALL.len())];
                            *s.injected.entry(f).or_default() += 1;
                            Some(f)
                        } else {
                            None
                        }
                    } else {
                        None
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(async move {
                        let _ = handle(client, upstream, fault).await;
                    });
                }
            })
        };
        FaultProxy {
            addr,
            state,
            enabled,
            requests,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Faults on or off (off: a plain proxy).
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.state.lock().unwrap().injected.clone()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Reads one request (head and a `Content-Length` body) from the client.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some((head, body)))
}

/// The head with `Connection: close` in place of any connection header.
fn closing(head: &str) -> String {
    let mut out = String::new();
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Resets the connection (RST instead of FIN). A zero linger never blocks on drop, which is
/// what the deprecation warns of.
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn forward(upstream: SocketAddr, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(closing(head).as_bytes()).await?;
    server.write_all(body).await?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).await?;
    // The answer's head, with Connection: close, so the client opens a new connection next time.
    Ok(match find(&answer, b"\r\n\r\n") {
        Some(i) => {
            let head = closing(&String::from_utf8_lossy(&answer[..i + 4]));
            let mut out = head.into_bytes();
            out.extend_from_slice(&answer[i + 4..]);
            out
        }
        None => answer,
    })
}

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    fault: Option<Fault>,
) -> std::io::Result<()> {
    let Some((head, body)) = read_request(&mut client).await? else {
        return Ok(());
    };
    let short = |status: &str| {
        format!(
            "HTTP/1.1 {status}\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{status}",
            status.len()
        )
    };
    match fault {
        Some(Fault::ResetBeforeForwarding) => {
            reset(client);
            return Ok(());
        }
        Some(Fault::Unavailable) => {
            client
                .write_all(short("503 Service Unavailable").as_bytes())
                .await?;
            return client.shutdown().await;
        }
        Some(Fault::TooManyRequests) => {
            client
                .write_all(short("429 Too Many Requests").as_bytes())
                .await?;
            return client.shutdown().await;
        }
        _ => {}
    }
    let answer = forward(upstream, &head, &body).await?;
    match fault {
        Some(Fault::ResetAfterForwarding) => reset(client),
        Some(Fault::TruncateAnswer) => {
            client.write_all(&answer[..answer.len() / 2]).await?;
            reset(client);
        }
        Some(Fault::BadGatewayAfterForwarding) => {
            client
                .write_all(short("502 Bad Gateway").as_bytes())
                .await?;
            client.shutdown().await?;
        }
        Some(Fault::Delay) => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            client.write_all(&answer).await?;
            client.shutdown().await?;
        }
        _ => {
            client.write_all(&answer).await?;
            client.shutdown().await?;
        }
    }
    Ok(())
}
