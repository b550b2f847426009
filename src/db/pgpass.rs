//! Passwords for PostgreSQL from a libpq password file (`PGPASSFILE`, else `~/.pgpass`):
//! lines of `hostname:port:database:username:password`, `*` matching anything, `\:` and `\\`
//! escaped. As libpq does, a file others can read is ignored (and said so).

use std::path::{Path, PathBuf};

/// The password file's path.
pub fn path() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => directories::BaseDirs::new().map(|d| d.home_dir().join(".pgpass")),
    }
}

/// The password of the first line matching host, port, database and user.
pub fn lookup(host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let path = path()?;
    let text = read_private(&path)?;
    find(&text, host, port, dbname, user)
}

fn read_private(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the password file is readable by others and is not used; run chmod 0600 on it"
            );
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

fn find(text: &str, host: &str, port: u16, dbname: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(fields)
        .find(|f| {
            f.len() == 5
                && [host, port.as_str(), dbname, user]
                    .iter()
                    .zip(f.iter())
                    .all(|(want, have)| have == "*" || have == want)
        })
        .map(|mut f| f.remove(4))
}

fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().expect("one field").push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            _ => out.last_mut().expect("one field").push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_gives_the_password() {
        let text =
            "# comment\nother:5432:*:fc:no\n127.0.0.1:5432:fabric:fc:pa\\:ss\\\\w\n*:*:*:*:any\n";
        assert_eq!(
            find(text, "127.0.0.1", 5432, "fabric", "fc").as_deref(),
            Some("pa:ss\\w")
        );
        assert_eq!(find(text, "db", 5433, "x", "y").as_deref(), Some("any"));
        assert_eq!(find("h:1:d:u\n", "h", 1, "d", "u"), None);
    }
}
