//! PostgreSQL behind [`super::Conn`]: tokio-postgres connections driven on a small runtime of
//! their own, so the stores stay synchronous for their callers (the console's UI thread never
//! calls them; async code reaches them through `spawn_blocking`, as it does SQLite).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use futures::executor::block_on;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{AsyncMessage, Client, Config, IsolationLevel, NoTls, Statement};

use super::{DbError, Row, Value};

/// The runtime that drives every PostgreSQL connection of this process.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fabric-console-postgres")
            .enable_all()
            .build()
            .expect("the PostgreSQL runtime could not start")
    })
}

/// Runs `fut` on the PostgreSQL runtime and waits for it from any thread.
fn on_runtime<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, DbError> {
    block_on(runtime().spawn(fut))
        .map_err(|e| DbError::Connect(format!("the PostgreSQL task stopped: {e}")))
}

/// How a connection to the database is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Loopback or a local socket, where nothing crosses a network: no TLS.
    Local,
    /// TLS, the server's certificate and name checked (against this computer's authorities and
    /// `sslrootcert`'s): the default for every other host.
    Verified { ca_file: Option<std::path::PathBuf> },
    /// `sslmode=disable` to another computer: chosen in the URL, said in `db status`.
    Cleartext,
}

/// A PostgreSQL database to connect to: the URL without a password (that comes from
/// `~/.pgpass`, `PGPASSFILE`, or the secret store).
#[derive(Clone)]
pub struct PgTarget {
    config: std::sync::Arc<Config>,
    shown: String,
    tls: Tls,
    /// From the secret store, when one was put there (`fabric-console db password`).
    password: Option<std::sync::Arc<str>>,
}

impl PartialEq for PgTarget {
    fn eq(&self, other: &Self) -> bool {
        self.shown == other.shown
    }
}
impl Eq for PgTarget {}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({})", self.shown)
    }
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// A `postgres://user@host:port/dbname` URL. A password in it is refused: a URL ends up in
    /// shell history, process lists and settings files.
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let (url, sslmode, ca_file) = tls_options(url)?;
        let config = Config::from_str(&url).map_err(|e| {
            DbError::Connect(format!(
                "the database URL could not be read ({e}); write it as postgres://user@host:port/dbname"
            ))
        })?;
        if config.get_password().is_some() {
            return Err(DbError::Connect(
                "the database URL holds a password; remove it from the URL and put it in ~/.pgpass (host:port:dbname:user:password, mode 0600) or store it with `fabric-console db password`".into(),
            ));
        }
        if config.get_dbname().is_none() {
            return Err(DbError::Connect(
                "the database URL names no database; write it as postgres://user@host:port/dbname"
                    .into(),
            ));
        }
        let local = config.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => {
                h == "localhost"
                    || h.trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => true,
        });
        let tls = match sslmode.as_deref() {
            Some("disable") if local => Tls::Local,
            Some("disable") => Tls::Cleartext,
            // Asked for, or another computer: always checked (as libpq's verify-full).
            Some("require" | "verify-ca" | "verify-full") => Tls::Verified { ca_file },
            _ if ca_file.is_some() || !local => Tls::Verified { ca_file },
            _ => Tls::Local,
        };
        let shown = show(&config);
        Ok(PgTarget {
            config: config.into(),
            shown,
            tls,
            password: None,
        })
    }

    /// The key of this database's password in the secret store (one per server, user and
    /// database).
    pub fn secret_id(&self) -> uuid::Uuid {
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, self.shown.as_bytes())
    }

    /// Uses `password` (from the secret store) before any password file.
    pub fn with_password(mut self, password: Option<String>) -> Self {
        self.password = password.map(Into::into);
        self
    }

    /// How connections are protected.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// The protection in words, for `db status` and the Settings page.
    pub fn security(&self) -> &'static str {
        match self.tls {
            Tls::Local => "on this computer, no TLS needed",
            Tls::Verified { .. } => "TLS, server certificate checked",
            Tls::Cleartext => {
                "NOT ENCRYPTED (sslmode=disable): passwords and the fabric cross the network in cleartext"
            }
        }
    }

    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or("")
    }

    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }

    /// The first host, as `.pgpass` matches it (a socket folder counts as `localhost`).
    fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_string(),
        }
    }

    fn port(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }

    /// The same server and user, another database (tests make databases of their own).
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut config = (*self.config).clone();
        config.dbname(dbname);
        let shown = show(&config);
        PgTarget {
            config: config.into(),
            shown,
            tls: self.tls.clone(),
            password: self.password.clone(),
        }
    }

    /// The connection settings with the password filled in from where passwords are kept.
    fn config(&self) -> Config {
        let mut config = (*self.config).clone();
        let password = self.password.as_deref().map(str::to_string).or_else(|| {
            super::pgpass::lookup(&self.host(), self.port(), self.dbname(), self.user())
        });
        if let Some(password) = password {
            config.password(password);
        }
        config.ssl_mode(match self.tls {
            Tls::Verified { .. } => tokio_postgres::config::SslMode::Require,
            Tls::Local | Tls::Cleartext => tokio_postgres::config::SslMode::Disable,
        });
        config
            .connect_timeout(Duration::from_secs(10))
            .keepalives_idle(Duration::from_secs(30))
            .application_name("Fabric Console");
        config
    }
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query (tokio-postgres knows fewer modes
/// than libpq, and no root certificate), checking them.
fn tls_options(url: &str) -> Result<(String, Option<String>, Option<std::path::PathBuf>), DbError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None, None));
    };
    let (mut sslmode, mut ca_file, mut rest) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => {
                const MODES: [&str; 6] = [
                    "disable",
                    "allow",
                    "prefer",
                    "require",
                    "verify-ca",
                    "verify-full",
                ];
                if !MODES.contains(&v) {
                    return Err(DbError::Connect(format!(
                        "the database URL's sslmode \"{v}\" is not one of {}",
                        MODES.join(", ")
                    )));
                }
                sslmode = Some(v.to_string());
            }
            Some(("sslrootcert", v)) => {
                let path = std::path::PathBuf::from(v.replace("%2F", "/").replace("%2f", "/"));
                if !path.is_file() {
                    return Err(DbError::Connect(format!(
                        "the database URL's sslrootcert {} is not a readable file; give the PEM file of the authority that signed the server's certificate",
                        path.display()
                    )));
                }
                ca_file = Some(path);
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, sslmode, ca_file))
}

fn show(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string().replace('/', "%2F"),
        None => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    format!(
        "postgres://{user}{host}{port}/{}",
        config.get_dbname().unwrap_or("")
    )
}

/// A PostgreSQL error as a person reads it (tokio-postgres shows only "db error").
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(": {detail}"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// One PostgreSQL connection with its prepared statements.
pub struct PgConn {
    target: PgTarget,
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    pub fn connect(target: &PgTarget) -> Result<Self, DbError> {
        let client = connect(target, None)?;
        Ok(PgConn {
            target: target.clone(),
            client,
            statements: HashMap::new(),
        })
    }

    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    /// A connection lost since the last statement (a server restart) is opened again.
    fn ensure_open(&mut self) -> Result<(), DbError> {
        if self.client.is_closed() {
            tracing::info!(database = %self.target, "reconnecting to PostgreSQL");
            self.client = connect(&self.target, None)?;
            self.statements.clear();
        }
        Ok(())
    }

    /// Starts a transaction: with `lock`, read committed behind that advisory lock (the role's
    /// writers one at a time); without, one repeatable-read snapshot.
    pub(super) fn begin(&mut self, lock: Option<i64>) -> Result<PgTx<'_>, DbError> {
        self.ensure_open()?;
        let level = if lock.is_some() {
            IsolationLevel::ReadCommitted
        } else {
            IsolationLevel::RepeatableRead
        };
        let tx = block_on(
            self.client
                .build_transaction()
                .isolation_level(level)
                .start(),
        )?;
        let tx = PgTx {
            tx,
            statements: std::cell::RefCell::new(&mut self.statements),
        };
        if let Some(key) = lock {
            tx.execute("SELECT pg_advisory_xact_lock(?1)", &[Value::Int(key)])?;
        }
        Ok(tx)
    }

    pub(super) fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.ensure_open()?;
        Ok(block_on(self.client.batch_execute(sql))?)
    }

    pub(super) fn query_one_value(
        &mut self,
        sql: &str,
        params: &[Value],
    ) -> Result<Value, DbError> {
        self.ensure_open()?;
        let sql = placeholders(sql);
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let row = block_on(self.client.query_one(sql.as_str(), &params))?;
        Ok(row_of(&row)?.0.into_iter().next().unwrap_or(Value::Null))
    }

    /// The connection has closed (the server ended it, or the network did).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// How soon the server notices this connection's peer gone: first probe after `idle`
    /// seconds, then every `interval`, given up after `count` (this session only).
    pub fn set_keepalives(&mut self, idle: u32, interval: u32, count: u32) -> Result<(), DbError> {
        self.batch(&format!(
            "SET tcp_keepalives_idle = {idle}; SET tcp_keepalives_interval = {interval}; SET tcp_keepalives_count = {count}"
        ))
    }

    /// Releases a lock taken with `try_lock`.
    pub fn unlock(&mut self, key: i64) -> Result<(), DbError> {
        self.query_one_value("SELECT pg_advisory_unlock(?1)", &[Value::Int(key)])?;
        Ok(())
    }

    /// A session-level advisory lock, held until `unlock` or the connection closes (the
    /// process ends, or the server sees it gone).
    pub fn try_lock(&mut self, key: i64) -> Result<bool, DbError> {
        Ok(
            self.query_one_value("SELECT pg_try_advisory_lock(?1)", &[Value::Int(key)])?
                == Value::Int(1),
        )
    }
}

fn connect(
    target: &PgTarget,
    notifications: Option<std::sync::mpsc::Sender<(String, String)>>,
) -> Result<Client, DbError> {
    let config = target.config();
    let shown = target.to_string();
    let tls = match target.tls() {
        Tls::Verified { ca_file } => Some(
            crate::ipam::tls::database_tls(ca_file.as_deref())
                .map_err(|e| DbError::Connect(format!("PostgreSQL {shown}: {e}")))?,
        ),
        Tls::Local | Tls::Cleartext => None,
    };
    on_runtime(async move {
        let refused = |e: tokio_postgres::Error| {
            let why = describe(&e);
            let hint = if why.contains("password") {
                " Put the password in ~/.pgpass (host:port:dbname:user:password, mode 0600) or store it with `fabric-console db password`."
            } else if why.contains("certificate") || why.contains("TLS") || why.contains("tls") {
                " The server's certificate must be signed by an authority this computer trusts, for the host name in the URL; add ?sslrootcert=/path/to/ca.pem for a private authority."
            } else if why.contains("SSL") || why.contains("ssl") {
                " The server does not offer TLS: turn on ssl in postgresql.conf, or, on a network you trust, add ?sslmode=disable to the URL."
            } else {
                " Check that the server runs, that the URL names it, and that pg_hba.conf lets this user in."
            };
            DbError::Connect(format!(
                "PostgreSQL {shown} refused the connection: {why}.{hint}"
            ))
        };
        match tls {
            Some(tls) => {
                let make = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
                let (client, connection) = config.connect(make).await.map_err(refused)?;
                drive(connection, notifications);
                Ok(client)
            }
            None => {
                let (client, connection) = config.connect(NoTls).await.map_err(refused)?;
                drive(connection, notifications);
                Ok(client)
            }
        }
    })?
}

/// Drives a connection on the PostgreSQL runtime, handing its notifications on.
fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notifications: Option<std::sync::mpsc::Sender<(String, String)>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if let Some(tx) = &notifications
                        && tx
                            .send((n.channel().to_string(), n.payload().to_string()))
                            .is_err()
                    {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %describe(&e), "the PostgreSQL connection ended");
                    break;
                }
                None => break,
            }
        }
    });
}

/// Listens on `channel`; every notification's payload arrives on the returned receiver until
/// the returned guard is dropped. One connection per database serves every listener of the
/// process; a lost one is opened again, and then each listener gets an empty payload (it may
/// have missed something, so it looks again).
pub fn listen(
    target: &PgTarget,
    channel: &'static str,
) -> Result<(std::sync::mpsc::Receiver<String>, Listener), DbError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let hub = {
        let mut hubs = hubs().lock().unwrap_or_else(|p| p.into_inner());
        hubs.retain(|_, h| h.strong_count() > 0);
        match hubs.get(&target.shown).and_then(std::sync::Weak::upgrade) {
            Some(h) => h,
            None => {
                let h = Hub::start(target)?;
                hubs.insert(target.shown.clone(), std::sync::Arc::downgrade(&h));
                h
            }
        }
    };
    let id = hub.subscribe(channel, tx)?;
    Ok((rx, Listener { hub, id }))
}

type Subscribers = std::sync::Mutex<Vec<(u64, &'static str, std::sync::mpsc::Sender<String>)>>;

/// The listening connections of this process, one per database.
fn hubs() -> &'static std::sync::Mutex<HashMap<String, std::sync::Weak<Hub>>> {
    static HUBS: OnceLock<std::sync::Mutex<HashMap<String, std::sync::Weak<Hub>>>> =
        OnceLock::new();
    HUBS.get_or_init(Default::default)
}

/// One listening connection and whoever listens through it.
struct Hub {
    subscribers: std::sync::Arc<Subscribers>,
    client: std::sync::Arc<std::sync::Mutex<Option<Client>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    next: std::sync::atomic::AtomicU64,
}

impl Hub {
    fn start(target: &PgTarget) -> Result<std::sync::Arc<Hub>, DbError> {
        let subscribers: std::sync::Arc<Subscribers> = Default::default();
        let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
        let client = connect(target, Some(tx.clone()))?;
        let hub = std::sync::Arc::new(Hub {
            subscribers: subscribers.clone(),
            client: std::sync::Arc::new(std::sync::Mutex::new(Some(client))),
            stop: Default::default(),
            next: Default::default(),
        });
        // Hands each notification to the listeners of its channel.
        let fan = subscribers.clone();
        std::thread::Builder::new()
            .name("fabric-console-notify".into())
            .spawn(move || {
                while let Ok((channel, payload)) = rx.recv() {
                    let subs = fan.lock().unwrap_or_else(|p| p.into_inner());
                    for (_, c, s) in subs.iter() {
                        if channel.is_empty() || *c == channel {
                            let _ = s.send(payload.clone());
                        }
                    }
                }
            })
            .map_err(|e| DbError::Connect(format!("the listener thread could not start: {e}")))?;
        // Watches the connection; a closed one is opened again, listening as before.
        let (keep, held, subs, target) = (
            hub.stop.clone(),
            hub.client.clone(),
            subscribers,
            target.clone(),
        );
        std::thread::Builder::new()
            .name("fabric-console-listen".into())
            .spawn(move || {
                while !keep.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    let open = held
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .is_some_and(|c| !c.is_closed());
                    if open {
                        continue;
                    }
                    let Ok(client) = connect(&target, Some(tx.clone())) else {
                        continue;
                    };
                    let channels: BTreeSet<&'static str> = subs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|(_, c, _)| *c)
                        .collect();
                    if channels
                        .iter()
                        .all(|c| block_on(client.batch_execute(&format!("LISTEN {c}"))).is_ok())
                    {
                        *held.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
                        // Everyone looks again: something may have been missed meanwhile.
                        let _ = tx.send((String::new(), String::new()));
                    }
                }
                // Closing the connection ends its task, and with it the fan-out thread.
                held.lock().unwrap_or_else(|p| p.into_inner()).take();
            })
            .map_err(|e| DbError::Connect(format!("the listener thread could not start: {e}")))?;
        Ok(hub)
    }

    fn subscribe(
        &self,
        channel: &'static str,
        tx: std::sync::mpsc::Sender<String>,
    ) -> Result<u64, DbError> {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if !subs.iter().any(|(_, c, _)| *c == channel)
            && let Some(client) = self
                .client
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
        {
            block_on(client.batch_execute(&format!("LISTEN {channel}")))?;
        }
        subs.push((id, channel, tx));
        Ok(id)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Stops a [`listen`]er when dropped (and the connection, with its last listener).
pub struct Listener {
    hub: std::sync::Arc<Hub>,
    id: u64,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.hub
            .subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(id, _, _)| *id != self.id);
    }
}

/// An open PostgreSQL transaction.
pub struct PgTx<'a> {
    tx: tokio_postgres::Transaction<'a>,
    statements: std::cell::RefCell<&'a mut HashMap<String, Statement>>,
}

impl PgTx<'_> {
    fn statement(&self, sql: &str) -> Result<Statement, DbError> {
        let sql = placeholders(sql);
        if let Some(st) = self.statements.borrow().get(&sql) {
            return Ok(st.clone());
        }
        let st = block_on(self.tx.prepare(&sql))?;
        self.statements.borrow_mut().insert(sql, st.clone());
        Ok(st)
    }

    pub(super) fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        let st = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        Ok(block_on(self.tx.execute(&st, &params))? as usize)
    }

    pub(super) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let st = self.statement(sql)?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        block_on(self.tx.query(&st, &params))?
            .iter()
            .map(row_of)
            .collect()
    }

    pub(super) fn batch(&self, sql: &str) -> Result<(), DbError> {
        Ok(block_on(self.tx.batch_execute(sql))?)
    }

    pub(super) fn commit(self) -> Result<(), DbError> {
        Ok(block_on(self.tx.commit())?)
    }
}

fn row_of(row: &tokio_postgres::Row) -> Result<Row, DbError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let v = if *ty == Type::VOID {
            None
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map(|b| Value::Int(b.into()))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(v.into()))
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into()))
        } else if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Bytes)
        } else {
            row.try_get::<_, Option<String>>(i)?.map(Value::Text)
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => i.to_string().to_sql(ty, out),
            },
            Value::Text(s) => match *ty {
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Value::Bytes(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// `?1` placeholders as PostgreSQL's `$1` (outside quoted text).
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(|d| d.is_ascii_digit()) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// A schema step written for SQLite, as PostgreSQL takes it.
pub(super) fn schema_dialect(sql: &str) -> String {
    let sql = sql
        .replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace("WITHOUT ROWID", "")
        .replace(" BLOB", " BYTEA");
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    while let Some(at) = rest.find("INTEGER") {
        let before_ok = rest[..at]
            .chars()
            .last()
            .is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
        out.push_str(&rest[..at]);
        out.push_str(if before_ok { "BIGINT" } else { "INTEGER" });
        rest = &rest[at + "INTEGER".len()..];
    }
    out.push_str(rest);
    out
}

/// The server tests use: `FABRIC_CONSOLE_TEST_POSTGRES` (a URL whose user may create
/// databases). Without it the PostgreSQL half of a test is not run, and says so; with
/// `FABRIC_CONSOLE_REQUIRE_POSTGRES=1` (the test script sets both) its absence fails the test.
pub fn test_target() -> Option<PgTarget> {
    match std::env::var("FABRIC_CONSOLE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => {
            Some(PgTarget::parse(&url).expect("FABRIC_CONSOLE_TEST_POSTGRES"))
        }
        _ => {
            assert!(
                std::env::var("FABRIC_CONSOLE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FABRIC_CONSOLE_TEST_POSTGRES is not set; run the tests with scripts/test.sh"
            );
            eprintln!(
                "FABRIC_CONSOLE_TEST_POSTGRES is not set: the PostgreSQL half of this test did not run"
            );
            None
        }
    }
}

/// A database of its own for one test, dropped (with its connections) at the end.
pub struct TestDatabase {
    admin: PgTarget,
    target: PgTarget,
}

impl TestDatabase {
    pub fn create(admin: &PgTarget, purpose: &str) -> Result<Self, DbError> {
        let name = format!(
            "fc_test_{}_{}_{}",
            purpose,
            std::process::id(),
            rand::random::<u32>()
        );
        let mut conn = PgConn::connect(admin)?;
        conn.batch(&format!("CREATE DATABASE {name}"))?;
        Ok(TestDatabase {
            admin: admin.clone(),
            target: admin.with_dbname(&name),
        })
    }

    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    pub fn url(&self) -> String {
        self.target.to_string()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConn::connect(&self.admin) {
            let _ = conn.batch(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.target.dbname()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_computer_gets_checked_tls_unless_cleartext_is_chosen() {
        let tls = |url: &str| PgTarget::parse(url).map(|t| t.tls().clone());
        assert_eq!(tls("postgres://fc@127.0.0.1/fabric").unwrap(), Tls::Local);
        assert_eq!(
            tls("postgres://fc@localhost:5433/fabric").unwrap(),
            Tls::Local
        );
        assert_eq!(
            tls("postgres://fc@db.example/fabric").unwrap(),
            Tls::Verified { ca_file: None }
        );
        assert_eq!(
            tls("postgres://fc@db.example/fabric?sslmode=prefer").unwrap(),
            Tls::Verified { ca_file: None },
            "never a silent downgrade"
        );
        assert_eq!(
            tls("postgres://fc@127.0.0.1/fabric?sslmode=require").unwrap(),
            Tls::Verified { ca_file: None }
        );
        assert_eq!(
            tls("postgres://fc@db.example/fabric?sslmode=disable&connect_timeout=5").unwrap(),
            Tls::Cleartext
        );
        let err = tls("postgres://fc@db.example/fabric?sslmode=maybe").unwrap_err();
        assert!(err.to_string().contains("verify-full"), "{err}");
        let err =
            tls("postgres://fc@db.example/fabric?sslrootcert=/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let t = PgTarget::parse("postgres://fc@db.example/fabric?sslmode=disable").unwrap();
        assert!(t.security().contains("NOT ENCRYPTED"));
        assert_eq!(t.to_string(), "postgres://fc@db.example:5432/fabric");
    }

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            placeholders("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', x FROM t WHERE a = $1 AND b = $12"
        );
    }

    #[test]
    fn schema_steps_read_as_postgres() {
        let pg = schema_dialect(
            "CREATE TABLE j (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, b BLOB, nINTEGERx TEXT) WITHOUT ROWID;",
        );
        assert_eq!(
            pg,
            "CREATE TABLE j (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT, b BYTEA, nINTEGERx TEXT) ;"
        );
    }
}
