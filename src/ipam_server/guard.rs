//! The built-in server's connections: at most `per_address` from one client address and `total`
//! in all, each closed after `idle` without a byte read or written. Idle clients (a connection
//! that sends nothing) cannot hold the server: they lose their connection, and one address cannot
//! take the slots of the others. Slow ones (headers or a body a byte at a time, each byte within
//! `idle`) are cut off by the [`RequestDeadlines`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// Limits of the built-in server's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_address: usize,
    /// A connection without a byte read or written for this long is closed.
    pub idle: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            total: 1024,
            per_address: 128,
            idle: Duration::from_secs(30),
        }
    }
}

/// How long a client may take to send a request's headers, and then its body. The idle limit
/// alone does not bound them: a byte now and then keeps a connection busy forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestDeadlines {
    /// For a request's headers, from when the server starts reading them (HTTP/1); the
    /// connection is closed when it passes.
    pub headers: Duration,
    /// From the end of the headers to the end of the body; the request is answered 408.
    pub body: Duration,
}

impl Default for RequestDeadlines {
    fn default() -> Self {
        RequestDeadlines {
            headers: Duration::from_secs(30),
            body: Duration::from_secs(30),
        }
    }
}

/// Open connections, per client address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// An acceptor that applies [`ConnectionLimits`] around another (plain or TLS).
#[derive(Debug, Clone)]
pub struct Guard<A> {
    inner: A,
    limits: ConnectionLimits,
    open: Arc<Mutex<Open>>,
}

impl<A> Guard<A> {
    pub fn new(inner: A, limits: ConnectionLimits) -> Self {
        Guard {
            inner,
            limits,
            open: Arc::default(),
        }
    }
}

/// One admitted connection's place; given back when the connection ends.
struct Slot {
    open: Arc<Mutex<Open>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.address);
            }
        }
    }
}

impl<A: Clone> Guard<A> {
    fn admit(&self, address: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mine = open.per_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.limits.total || mine >= self.limits.per_address {
            return None;
        }
        open.total += 1;
        *open.per_address.entry(address).or_insert(0) += 1;
        Some(Slot {
            open: self.open.clone(),
            address,
        })
    }
}

impl<A, S> Accept<TcpStream, S> for Guard<A>
where
    A: Accept<TcpStream, S> + Clone + Send + Sync + 'static,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send,
    A::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let address = stream
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let slot = self.admit(address);
        let inner = self.inner.clone();
        let idle = self.limits.idle;
        Box::pin(async move {
            let Some(slot) = slot else {
                tracing::warn!(%address, "connection refused: too many open connections");
                return Err(io::Error::other("too many open connections"));
            };
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((
                Guarded {
                    inner: stream,
                    idle,
                    deadline: Box::pin(tokio::time::sleep(idle)),
                    _slot: slot,
                },
                service,
            ))
        })
    }
}

/// A connection that fails with `TimedOut` once `idle` passes without a byte either way.
pub struct Guarded<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    _slot: Slot,
}

impl<S> Guarded<S> {
    fn touch(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// On a pending read or write: has the connection been idle too long?
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the client was idle too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.timed_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.timed_out(cx) => Poll::Ready(Err(idle_error())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
