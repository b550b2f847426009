//! `fabric-console ipam-server [--listen ..] [--data DIR] [--tls] [--clock-offset 10m] [--allow-remote]`
//! `fabric-console ipam-server token --data DIR --role ROLE` and
//! `fabric-console ipam-server audit --data DIR [--limit N] [--since RFC3339]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{ADMIN_TOKEN_FILE, Role, RunningServer, ServerConfig, ServerError};

#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IpamServerArgs {
    #[command(subcommand)]
    pub command: Option<IpamServerCommand>,
    /// Address and port to listen on (loopback unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:48885")]
    pub listen: SocketAddr,
    /// Data directory for the database, tokens and TLS certificate; in memory when omitted.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate kept in the data directory.
    #[arg(long)]
    pub tls: bool,
    /// Shift the server's clock, e.g. 10m, -90s, 2h (for clock-skew tests).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = super::parse_clock_offset)]
    pub clock_offset: Option<chrono::Duration>,
    /// Allow listening on a non-loopback address (requires --tls, or --insecure-http).
    #[arg(long)]
    pub allow_remote: bool,
    /// With --allow-remote and without --tls: serve other machines over plain HTTP, so that
    /// every client's token crosses the network in cleartext.
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum IpamServerCommand {
    /// Print a new API token for a data directory, or list, revoke or rotate tokens. A running
    /// server notices within a second.
    Token(TokenArgs),
    /// Print the audit trail of writes, newest first: when, token id, role, method, outcome and
    /// what was changed.
    Audit(AuditArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// The server's data directory.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// At most this many rows.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=1_000_000))]
    pub limit: i64,
    /// Only writes at or after this time, e.g. 2025-01-31T09:00:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_utc_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: Option<TokenAction>,
    /// The server's data directory.
    #[arg(long, value_name = "DIR", required = true)]
    pub data: Option<PathBuf>,
    /// asm-administrator (read/write) or read-only.
    #[arg(long, value_enum, required = true)]
    pub role: Option<Role>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TokenAction {
    /// List the tokens: id, role and when each was issued (never the tokens themselves).
    List {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
    /// Revoke a token by the id `token list` shows.
    Revoke {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        id: String,
    },
    /// Replace a token by a new one with the same role; prints the new token.
    Rotate {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        id: String,
    },
}

/// Runs the subcommand to completion (the server until Ctrl+C). Builds its own tokio runtime.
pub fn run(args: IpamServerArgs) -> Result<(), ServerError> {
    match args.command {
        Some(IpamServerCommand::Token(t)) => token_command(t),
        Some(IpamServerCommand::Audit(a)) => {
            let lines = audit_lines(&a)?;
            if lines.is_empty() {
                eprintln!("No writes recorded in {}.", a.data.display());
            }
            for line in lines {
                println!("{line}");
            }
            Ok(())
        }
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| ServerError::Runtime(e.to_string()))?;
            runtime.block_on(serve(args))
        }
    }
}

fn token_command(t: TokenArgs) -> Result<(), ServerError> {
    let unknown = |data: &Path, id: &str| ServerError::DataDir {
        path: data.to_path_buf(),
        detail: format!("has no token with id {id}; `ipam-server token list` shows the ids"),
    };
    match t.action {
        None => {
            // Both are required by clap when no subcommand is given.
            let (Some(data), Some(role)) = (t.data, t.role) else {
                return Err(ServerError::Runtime(
                    "give --data DIR and --role, or a subcommand".into(),
                ));
            };
            println!("{}", super::issue_token_in(&data, role)?);
        }
        Some(TokenAction::List { data }) => {
            for (id, role, created) in super::list_tokens_in(&data)? {
                println!("{id}  {:<17}  issued {created}", role.as_str());
            }
        }
        Some(TokenAction::Revoke { data, id }) => match super::revoke_token_in(&data, &id)? {
            Some(role) => println!("Revoked token {id} ({role})."),
            None => return Err(unknown(&data, &id)),
        },
        Some(TokenAction::Rotate { data, id }) => match super::revoke_token_in(&data, &id)? {
            Some(role) => println!("{}", super::issue_token_in(&data, role)?),
            None => return Err(unknown(&data, &id)),
        },
    }
    Ok(())
}

/// The lines `ipam-server audit` prints, newest first.
pub fn audit_lines(args: &AuditArgs) -> Result<Vec<String>, ServerError> {
    Ok(super::audit_in(&args.data, args.limit, args.since)?
        .iter()
        .map(ToString::to_string)
        .collect())
}

async fn serve(args: IpamServerArgs) -> Result<(), ServerError> {
    let config = ServerConfig {
        listen: args.listen,
        data_dir: args.data.clone(),
        tls: args.tls,
        clock_offset: args.clock_offset.unwrap_or_else(chrono::Duration::zero),
        allow_remote: args.allow_remote,
        insecure_http: args.insecure_http,
        connections: Default::default(),
        deadlines: Default::default(),
    };
    let server = super::start(config).await?;
    println!(
        "Fabric Console IPAM Server listening on {}",
        server.base_url()
    );
    if let Some(fp) = server.tls_fingerprint() {
        println!("TLS certificate SHA-256 fingerprint: {fp}");
    }
    if let Some(token) = ensure_admin_token(&server, args.data.as_deref())? {
        use std::io::IsTerminal;
        // A token is shown only to a person at a terminal, never to a log that captures stdout.
        let on_terminal = std::io::stdout().is_terminal();
        match &args.data {
            Some(dir) if on_terminal => println!(
                "First start: administrator token (also saved to {}, mode 0600):\n{token}",
                dir.join(ADMIN_TOKEN_FILE).display()
            ),
            Some(dir) => println!(
                "First start: an administrator token was saved to {} (mode 0600).",
                dir.join(ADMIN_TOKEN_FILE).display()
            ),
            // In memory there is no file: the token is shown once, or the server is unusable.
            None => println!("Administrator token (in-memory server, shown once):\n{token}"),
        }
    }
    println!("Press Ctrl+C to stop.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!("cannot wait for Ctrl+C: {e}");
    }
    println!("Stopping...");
    server.shutdown().await;
    Ok(())
}

/// On a first start (no tokens yet) issues an administrator token and saves it to
/// `DATA/admin-token` (mode 0600). Returns the token to print once; `None` when tokens exist.
pub fn ensure_admin_token(
    server: &RunningServer,
    data: Option<&Path>,
) -> Result<Option<String>, ServerError> {
    let count = server
        .state
        .lock_db()
        .token_count()
        .map_err(|e| ServerError::Database(e.error))?;
    if count > 0 {
        return Ok(None);
    }
    let token = server.try_issue_token(Role::AsmAdministrator)?;
    if let Some(dir) = data {
        let path = dir.join(ADMIN_TOKEN_FILE);
        super::write_private_file(&path, &format!("{token}\n")).map_err(|e| {
            ServerError::DataDir {
                path: path.clone(),
                detail: format!("cannot write the admin token: {e}"),
            }
        })?;
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: IpamServerArgs,
    }

    #[test]
    fn arguments_parse() {
        let cli = Cli::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--data",
            "/tmp/d",
            "--tls",
            "--clock-offset",
            "-90s",
        ])
        .unwrap();
        assert!(cli.args.tls);
        assert_eq!(cli.args.clock_offset.unwrap().num_seconds(), -90);
        let cli =
            Cli::try_parse_from(["x", "token", "--data", "/tmp/d", "--role", "read-only"]).unwrap();
        assert!(matches!(
            cli.args.command,
            Some(IpamServerCommand::Token(TokenArgs {
                role: Some(Role::ReadOnly),
                action: None,
                ..
            }))
        ));
        assert!(Cli::try_parse_from(["x", "--clock-offset", "soon"]).is_err());
        // Issuing needs both; a subcommand needs neither.
        assert!(Cli::try_parse_from(["x", "token", "--data", "/tmp/d"]).is_err());
        let cli = Cli::try_parse_from(["x", "token", "revoke", "--data", "/tmp/d", "0123456789ab"])
            .unwrap();
        assert!(matches!(
            cli.args.command,
            Some(IpamServerCommand::Token(TokenArgs {
                action: Some(TokenAction::Revoke { .. }),
                ..
            }))
        ));
    }

    #[tokio::test]
    async fn audit_prints_the_writes_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..ServerConfig::ephemeral()
        };
        let server = super::super::start(config).await.unwrap();
        let token = server.issue_token(Role::AsmAdministrator);
        let client = reqwest::Client::new();
        for body in [
            serde_json::json!({"id": "s1", "name": "Blue", "kind": "provider", "vmm_logical_network": "LN1"}),
            serde_json::json!({"id": "s2", "name": "Green", "kind": "provider"}),
        ] {
            let r = client
                .post(format!("{}/api/v1/address-spaces", server.base_url()))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        server.shutdown().await;
        let cli = Cli::try_parse_from([
            "x",
            "audit",
            "--data",
            dir.path().to_str().unwrap(),
            "--limit",
            "5",
        ])
        .unwrap();
        let Some(IpamServerCommand::Audit(args)) = cli.args.command else {
            panic!("not the audit command");
        };
        let lines = audit_lines(&args).unwrap();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        let id = &super::super::auth::token_hash(&token)[..12];
        assert!(
            lines[0].contains(&format!("{id}  asm-administrator  POST    applied")),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].ends_with(
                "created IP address space \"Green\" (s2) (provider, no logical network)"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with("(s1) for logical network LN1"),
            "{}",
            lines[1]
        );
        assert!(lines.iter().all(|l| !l.contains(&token)));
        let limited = AuditArgs {
            limit: 1,
            ..args.clone()
        };
        assert_eq!(audit_lines(&limited).unwrap(), lines[..1]);
        let future = AuditArgs {
            since: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..args
        };
        assert!(audit_lines(&future).unwrap().is_empty());
        assert!(
            Cli::try_parse_from(["x", "audit", "--data", "/tmp/d", "--since", "yesterday"])
                .is_err()
        );
    }

    #[tokio::test]
    async fn first_start_writes_a_private_admin_token_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..ServerConfig::ephemeral()
        };
        let server = super::super::start(config).await.unwrap();
        let token = ensure_admin_token(&server, Some(dir.path()))
            .unwrap()
            .unwrap();
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(ensure_admin_token(&server, Some(dir.path())).unwrap(), None);
        server.shutdown().await;
    }
}
