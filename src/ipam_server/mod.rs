//! The project's own IPAM server: address spaces, subnets and ranges over HTTP/JSON, backed by
//! SQLite, with bearer tokens, an all-or-none batch endpoint and a change feed. It runs as
//! `fabric-console ipam-server` and in-process (the console's embedded default, the tests' peer).

pub mod api;
pub mod auth;
pub mod cli;
pub mod db;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub use auth::Role;

use api::AppState;
use db::Database;

/// Default port of the built-in IPAM server.
pub const DEFAULT_PORT: u16 = 48885;
/// File in the data directory holding the first administrator token (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where the SQLite database (and TLS certificate) live; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    pub tls: bool,
    /// Shifts the server's clock (status, time, `Date` header), for clock-skew tests.
    pub clock_offset: chrono::Duration,
    /// Listening on a non-loopback address is refused unless this is set.
    pub allow_remote: bool,
    /// Serving other machines over plain HTTP (tokens in cleartext) is refused unless this is set.
    pub insecure_http: bool,
    /// At most this many connections, per address and in all; idle ones are closed.
    pub connections: guard::ConnectionLimits,
    /// How long a request's headers and then its body may take to arrive.
    pub deadlines: guard::RequestDeadlines,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            data_dir: None,
            tls: false,
            clock_offset: chrono::Duration::zero(),
            allow_remote: false,
            insecure_http: false,
            connections: guard::ConnectionLimits::default(),
            deadlines: guard::RequestDeadlines::default(),
        }
    }
}

impl ServerConfig {
    /// Loopback, ephemeral port, in memory: what tests and the embedded default use.
    pub fn ephemeral() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Default::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "IPAM server will not listen on {0}: it is not a loopback address. Pass --allow-remote to serve other machines (use --tls then)."
    )]
    RemoteNotAllowed(SocketAddr),
    #[error(
        "IPAM server will not serve {0} over plain HTTP: every client's token would cross the network in cleartext. Add --tls (a self-signed certificate whose fingerprint clients pin), or pass --insecure-http to accept that risk."
    )]
    CleartextRemote(SocketAddr),
    #[error(
        "IPAM server cannot listen on {addr}: {source}. Choose another --listen address or stop the program using the port."
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("IPAM server data directory {path}: {detail}")]
    DataDir { path: PathBuf, detail: String },
    #[error("IPAM server database error: {0}")]
    Database(String),
    #[error("IPAM server TLS setup failed: {0}")]
    Tls(String),
    #[error("IPAM server cannot start its runtime: {0}")]
    Runtime(String),
}

/// A server running on the current tokio runtime.
pub struct RunningServer {
    addr: SocketAddr,
    tls_fingerprint: Option<String>,
    state: Arc<AppState>,
    handle: axum_server::Handle,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` or `https://...`, without a trailing slash.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls_fingerprint.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The connection string to type in the Add Network Service wizard (`host:port`).
    pub fn connection_string(&self) -> String {
        self.base_url()
    }

    /// SHA-256 (lower-case hex) of the TLS certificate, for pinning; `None` without TLS.
    pub fn tls_fingerprint(&self) -> Option<String> {
        self.tls_fingerprint.clone()
    }

    /// A new bearer token with this role. Only its hash is stored.
    pub fn issue_token(&self, role: Role) -> String {
        match self.state.issue_token(role) {
            Ok(t) => t,
            // The token table lives in the same database the server serves from; if that
            // fails the server cannot work either, so an unusable token is the honest answer.
            Err(e) => {
                tracing::error!("cannot store a new token: {}", e.error);
                String::new()
            }
        }
    }

    /// Revokes a token by its id (`token list`); refused from the next request on.
    pub fn revoke_token(&self, id: &str) -> Result<Option<Role>, ServerError> {
        self.state
            .revoke_token(id)
            .map_err(|e| ServerError::Database(e.error))
    }

    /// Like `issue_token`, reporting a database failure.
    pub fn try_issue_token(&self, role: Role) -> Result<String, ServerError> {
        self.state
            .issue_token(role)
            .map_err(|e| ServerError::Database(e.error))
    }

    /// HTTP requests answered (or being answered) since start.
    pub fn request_count(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn database_id(&self) -> &str {
        &self.state.database_id
    }

    /// Stops accepting, lets requests in flight finish (up to 5 s), and closes the database.
    pub async fn shutdown(mut self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(5)));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Writes a file readable by its owner only.
pub(crate) fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

fn open_database(data_dir: Option<&Path>) -> Result<Database, ServerError> {
    if let Some(d) = data_dir {
        std::fs::create_dir_all(d).map_err(|e| ServerError::DataDir {
            path: d.to_path_buf(),
            detail: format!("cannot be created: {e}"),
        })?;
        // Tokens, the database and the TLS key live here: the owner's only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                ServerError::DataDir {
                    path: d.to_path_buf(),
                    detail: format!("cannot be made private to its owner (mode 0700): {e}"),
                }
            })?;
        }
    }
    Database::open(data_dir).map_err(|e| ServerError::Database(e.to_string()))
}

/// Issues a token straight into a data directory's database (the `token` subcommand).
pub fn issue_token_in(data_dir: &Path, role: Role) -> Result<String, ServerError> {
    let mut db = open_database(Some(data_dir))?;
    let token = auth::new_token();
    db.store_token_hash(&auth::token_hash(&token), role)
        .map_err(|e| ServerError::Database(e.error))?;
    Ok(token)
}

/// The tokens of a data directory as (id, role, issued).
pub fn list_tokens_in(data_dir: &Path) -> Result<Vec<(String, Role, String)>, ServerError> {
    open_database(Some(data_dir))?
        .list_tokens()
        .map_err(|e| ServerError::Database(e.error))
}

/// Revokes a token of a data directory by its id; a running server refuses it within a second.
pub fn revoke_token_in(data_dir: &Path, id: &str) -> Result<Option<Role>, ServerError> {
    open_database(Some(data_dir))?
        .revoke_token(id)
        .map_err(|e| ServerError::Database(e.error))
}

/// The audit trail of a data directory's writes, newest first: at most `limit` rows, only those
/// at or after `since` when given.
pub fn audit_in(
    data_dir: &Path,
    limit: i64,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<db::AuditEntry>, ServerError> {
    open_database(Some(data_dir))?
        .audit(limit, since)
        .map_err(|e| ServerError::Database(e.error))
}

/// Binds, opens the database and serves on the current tokio runtime until shut down.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let remote = !is_loopback(config.listen.ip());
    if remote && !config.allow_remote {
        return Err(ServerError::RemoteNotAllowed(config.listen));
    }
    if remote && !config.tls {
        if !config.insecure_http {
            return Err(ServerError::CleartextRemote(config.listen));
        }
        tracing::warn!(
            listen = %config.listen,
            "serving other machines over plain HTTP (--insecure-http): tokens cross the network in cleartext"
        );
    }
    let data_dir = config.data_dir.clone();
    let db = tokio::task::spawn_blocking(move || open_database(data_dir.as_deref()))
        .await
        .map_err(|e| ServerError::Database(e.to_string()))??;
    let mut state = AppState::new(db, config.clock_offset);
    state.body_deadline = config.deadlines.body;
    let state = Arc::new(state);
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let bind_err = |source| ServerError::Bind {
        addr: config.listen,
        source,
    };
    listener.set_nonblocking(true).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let app = api::router(state.clone());
    let handle = axum_server::Handle::new();
    // The client's address reaches the handlers (failed-authentication throttling).
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let (serving, tls_fingerprint) = if config.tls {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        if !config.listen.ip().is_unspecified() && !is_loopback(config.listen.ip()) {
            names.push(config.listen.ip().to_string());
        }
        let cert =
            tls::load_or_create(config.data_dir.as_deref(), &names).map_err(ServerError::Tls)?;
        let rustls = tls::rustls_config(&cert).map_err(ServerError::Tls)?;
        let mut server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(rustls),
        )
        .handle(handle.clone())
        .map(|tls| guard::Guard::new(tls, config.connections));
        limit_header_time(server.http_builder(), config.deadlines.headers);
        let serving: Serving = Box::pin(server.serve(make_service));
        (serving, Some(cert.fingerprint))
    } else {
        let mut server = axum_server::from_tcp(listener)
            .handle(handle.clone())
            .map(|plain| guard::Guard::new(plain, config.connections));
        limit_header_time(server.http_builder(), config.deadlines.headers);
        let serving: Serving = Box::pin(server.serve(make_service));
        (serving, None)
    };
    let task = tokio::spawn(async move {
        if let Err(e) = serving.await {
            tracing::error!("IPAM server stopped: {e}");
        }
    });
    tracing::info!(%addr, tls = config.tls, "IPAM server listening");
    if config.data_dir.is_some() {
        watch_tokens(Arc::downgrade(&state));
    }
    Ok(RunningServer {
        addr,
        tls_fingerprint,
        state,
        handle,
        task: Some(task),
    })
}

/// Closes an HTTP/1 connection whose request headers take longer than `deadline` to arrive.
/// Hyper applies its header timeout only with a timer, which axum-server does not set.
fn limit_header_time(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    deadline: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(deadline);
}

/// The server's accept loop, plain or TLS.
type Serving = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>;

/// How often a server over a data directory looks for tokens issued, revoked or rotated by the
/// `token` command (another process).
const TOKEN_POLL: Duration = Duration::from_millis(500);

/// Forgets cached token roles whenever another process commits to the database, so a token
/// revoked with `ipam-server token revoke` is refused within `TOKEN_POLL`. Ends with the server.
fn watch_tokens(state: std::sync::Weak<AppState>) {
    // The version now, before any request: a change from here on is another process's.
    let mut seen: Option<i64> = state
        .upgrade()
        .and_then(|s| s.lock_db().data_version().ok());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TOKEN_POLL).await;
            let Some(state) = state.upgrade() else {
                break;
            };
            let version = state.lock_db().data_version();
            match version {
                Ok(v) if seen != Some(v) => {
                    if seen.is_some() {
                        state.forget_cached_tokens();
                    }
                    seen = Some(v);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot watch the token table: {}", e.error),
            }
        }
    });
}

/// Parses an RFC 3339 time such as `2025-01-31T09:00:00Z` (any offset) into UTC.
pub fn parse_utc_time(input: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(input.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            format!("{input:?} is not an RFC 3339 time ({e}); write e.g. 2025-01-31T09:00:00Z")
        })
}

/// Parses `10m`, `-90s`, `2h`, `1d`, `500ms` or combinations such as `1h30m`.
pub fn parse_clock_offset(input: &str) -> Result<chrono::Duration, String> {
    let s = input.trim();
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return Err(format!(
            "clock offset {input:?} is empty; write e.g. 10m, -90s or 2h"
        ));
    }
    let mut total_ms: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "clock offset {input:?} is not a duration; write e.g. 10m, -90s or 2h"
            ));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("clock offset {input:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(format!(
                    "clock offset {input:?} has unit {unit:?}; use ms, s, m, h or d"
                ));
            }
        };
        total_ms = n
            .checked_mul(factor)
            .and_then(|v| total_ms.checked_add(v))
            .filter(|v| v.abs() <= 365 * 86_400_000)
            .ok_or_else(|| format!("clock offset {input:?} is more than a year"))?;
    }
    Ok(chrono::Duration::milliseconds(if negative {
        -total_ms
    } else {
        total_ms
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_offsets_parse() {
        assert_eq!(parse_clock_offset("10m").unwrap().num_seconds(), 600);
        assert_eq!(parse_clock_offset("-90s").unwrap().num_seconds(), -90);
        assert_eq!(parse_clock_offset("2h").unwrap().num_seconds(), 7200);
        assert_eq!(parse_clock_offset("1h30m").unwrap().num_seconds(), 5400);
        assert_eq!(parse_clock_offset("250ms").unwrap().num_milliseconds(), 250);
        assert!(parse_clock_offset("10").is_err());
        assert!(parse_clock_offset("ten minutes").is_err());
        assert!(parse_clock_offset("").is_err());
        assert!(parse_clock_offset("999999d").is_err());
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(!is_loopback("0.0.0.0".parse().unwrap()));
        assert!(!is_loopback("192.0.2.1".parse().unwrap()));
    }
}
