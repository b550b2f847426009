//! A TCP relay on a loopback port in front of a real server, which a test can take down (every
//! connection cut, the port closed, as when the server restarts or the network drops) and
//! bring back on the same port, or on which it can hold back HTTP writes (a slow server) to act
//! while a sync waits for one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether HTTP writes are held: `Holding` until the test lets them go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)]
pub enum Gate {
    Open,
    Holding,
    /// A write arrived and waits.
    Held,
}

pub struct TcpRelay {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    gate: watch::Sender<Gate>,
}

impl TcpRelay {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay port");
        let addr = listener.local_addr().expect("relay address");
        let relay = TcpRelay {
            addr,
            upstream,
            tasks: Arc::default(),
            gate: watch::channel(Gate::Open).0,
        };
        relay.serve(listener);
        relay
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection and closes the port: connecting is refused until `up`.
    pub fn down(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens on the same port again.
    pub async fn up(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("relay port again");
        self.serve(listener);
    }

    /// From now on the next POST, PATCH or DELETE waits in the relay until `release`.
    #[allow(dead_code)]
    pub fn hold_writes(&self) {
        self.gate.send_replace(Gate::Holding);
    }

    /// Waits until a held write arrived.
    #[allow(dead_code)]
    pub async fn write_held(&self) {
        let mut rx = self.gate.subscribe();
        let _ = rx.wait_for(|g| *g == Gate::Held).await;
    }

    /// Lets held writes go, and later ones through.
    #[allow(dead_code)]
    pub fn release(&self) {
        self.gate.send_replace(Gate::Open);
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let tasks = self.tasks.clone();
        let gate = self.gate.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let pipe = tokio::spawn(pipe(client, upstream, gate.clone()));
                tasks.lock().unwrap().push(pipe);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.down();
    }
}

async fn pipe(client: TcpStream, upstream: SocketAddr, gate: watch::Sender<Gate>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // A request starts a read: its method says whether it writes.
            let writes = [&b"POST "[..], b"PATCH ", b"DELETE "]
                .iter()
                .any(|m| buf[..n].starts_with(m));
            if writes && *gate.borrow() != Gate::Open {
                gate.send_replace(Gate::Held);
                let mut rx = gate.subscribe();
                let _ = rx.wait_for(|g| *g == Gate::Open).await;
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    tokio::join!(up, down);
}
