//! The Connection String page's grammar: `FQDN[:port]`, an IPv4 literal, `[IPv6]:port`,
//! optionally prefixed with `http://` or `https://`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed connection string. Displayed exactly as it would be typed back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionString {
    pub scheme: Option<Scheme>,
    pub host: Host,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    #[error(
        "Connection string is empty: type the IPAM server's fully qualified domain name, e.g. ipamserver1.contoso.com"
    )]
    Empty,
    #[error("Connection string has an unsupported scheme \"{0}\": use http://, https:// or none")]
    Scheme(String),
    #[error(
        "Connection string must not contain a path, query or user name (\"{0}\"): type only the host name and an optional :port"
    )]
    Extra(String),
    #[error("Connection string port \"{0}\" is not a number from 1 to 65535")]
    Port(String),
    #[error("Connection string host \"{host}\" is not valid: {reason}")]
    Host { host: String, reason: &'static str },
    #[error(
        "Connection string IPv6 address \"{0}\" must be written in brackets, e.g. [2001:db8::1]:443"
    )]
    Ipv6Brackets(String),
}

impl ConnectionString {
    pub fn parse(input: &str) -> Result<Self, ConnectionStringError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ConnectionStringError::Empty);
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((sch, rest)) => match sch.to_ascii_lowercase().as_str() {
                "http" => (Some(Scheme::Http), rest),
                "https" => (Some(Scheme::Https), rest),
                _ => return Err(ConnectionStringError::Scheme(sch.to_string())),
            },
            None => (None, s),
        };
        // A single trailing slash after a URL is harmless; anything more is a path.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(ConnectionStringError::Empty);
        }
        if let Some(c) = rest
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@' | ' '))
        {
            return Err(ConnectionStringError::Extra(c.to_string()));
        }
        let (host_part, port_part) = if let Some(after) = rest.strip_prefix('[') {
            let Some((v6, tail)) = after.split_once(']') else {
                return Err(ConnectionStringError::Host {
                    host: rest.to_string(),
                    reason: "the closing ] is missing",
                });
            };
            let addr = Ipv6Addr::from_str(v6).map_err(|_| ConnectionStringError::Host {
                host: v6.to_string(),
                reason: "not an IPv6 address",
            })?;
            let port = match tail {
                "" => None,
                t => match t.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return Err(ConnectionStringError::Extra(t.to_string())),
                },
            };
            (Host::V6(addr), port)
        } else {
            if rest.matches(':').count() > 1 {
                return Err(ConnectionStringError::Ipv6Brackets(rest.to_string()));
            }
            let (h, p) = match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            };
            (parse_host(h)?, p)
        };
        let port = match port_part {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n >= 1 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
                _ => return Err(ConnectionStringError::Port(p.to_string())),
            },
        };
        Ok(ConnectionString {
            scheme,
            host: host_part,
            port,
        })
    }

    /// The port to connect to: the given one, else the provider's default.
    pub fn port_or(&self, default: u16) -> u16 {
        self.port.unwrap_or(default)
    }

    /// The base URL for an HTTP API, using `default_scheme` and `default_port` when none was typed.
    pub fn base_url(&self, default_scheme: Scheme, default_port: u16) -> String {
        let scheme = self.scheme.unwrap_or(default_scheme);
        format!(
            "{}://{}:{}",
            scheme.as_str(),
            self.host,
            self.port_or(default_port)
        )
    }

    /// This computer: `localhost` (or a name under it), 127.0.0.0/8 or ::1. A token sent there
    /// over plain HTTP does not cross a network.
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Name(n) => n == "localhost" || n.ends_with(".localhost"),
            Host::V4(a) => a.is_loopback(),
            Host::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        }
    }

    /// The same server with the scheme spelled out.
    pub fn with_scheme(&self, scheme: Scheme) -> Self {
        ConnectionString {
            scheme: Some(scheme),
            ..self.clone()
        }
    }

    /// The host as a TLS server name and a socket address string take it (no brackets).
    pub fn host_name(&self) -> String {
        match &self.host {
            Host::Name(n) => n.clone(),
            Host::V4(a) => a.to_string(),
            Host::V6(a) => a.to_string(),
        }
    }

    pub fn host_ip(&self) -> Option<IpAddr> {
        match self.host {
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
            Host::Name(_) => None,
        }
    }
}

fn parse_host(h: &str) -> Result<Host, ConnectionStringError> {
    let bad = |reason| ConnectionStringError::Host {
        host: h.to_string(),
        reason,
    };
    if h.is_empty() {
        return Err(bad("the host name is missing"));
    }
    if h.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ipv4Addr::from_str(h)
            .map(Host::V4)
            .map_err(|_| bad("not a valid IPv4 address"));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("it has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(bad("a label is longer than 63 characters"));
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(bad("only letters, digits, hyphens and dots are allowed"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("a label starts or ends with a hyphen"));
        }
    }
    Ok(Host::Name(name.to_ascii_lowercase()))
}

impl fmt::Display for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.scheme {
            write!(f, "{}://", s.as_str())?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl FromStr for ConnectionString {
    type Err = ConnectionStringError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ConnectionString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConnectionString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let c = ConnectionString::parse("IPAMserver1.contoso.com").unwrap();
        assert_eq!(c.host, Host::Name("ipamserver1.contoso.com".into()));
        assert_eq!(c.port, None);
        let c = ConnectionString::parse("IPAMserver1.contoso.com:443").unwrap();
        assert_eq!(c.port, Some(443));
        let c = ConnectionString::parse("https://ipam.example.org:8443/").unwrap();
        assert_eq!(c.scheme, Some(Scheme::Https));
        assert_eq!(c.to_string(), "https://ipam.example.org:8443");
        let c = ConnectionString::parse("127.0.0.1:48885").unwrap();
        assert_eq!(c.host, Host::V4(Ipv4Addr::LOCALHOST));
        let c = ConnectionString::parse("[::1]:48885").unwrap();
        assert_eq!(c.host, Host::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(c.to_string(), "[::1]:48885");
        assert_eq!(c.base_url(Scheme::Http, 1), "http://[::1]:48885");
    }

    #[test]
    fn rejects_with_reasons() {
        use ConnectionStringError as E;
        assert_eq!(ConnectionString::parse("  "), Err(E::Empty));
        let rejected = |input: &str| ConnectionString::parse(input).unwrap_err();
        assert!(matches!(rejected("ftp://x"), E::Scheme(_)));
        for input in ["host:0", "host:70000", "host:+80"] {
            assert!(matches!(rejected(input), E::Port(_)), "{input}");
        }
        assert!(matches!(rejected("host/path"), E::Extra(_)));
        assert!(matches!(rejected("::1"), E::Ipv6Brackets(_)));
        for input in ["a..b", "bad_name.com", "300.1.1.1", "-a.com", "[::1"] {
            assert!(matches!(rejected(input), E::Host { .. }), "{input}");
        }
        let msg = ConnectionString::parse("host:x").unwrap_err().to_string();
        assert!(msg.contains("Connection string port"), "{msg}");
    }

    #[test]
    fn loopback_hosts_are_this_computer() {
        for local in [
            "localhost:1",
            "127.0.0.1",
            "127.9.0.1:80",
            "[::1]:5",
            "api.localhost",
        ] {
            assert!(
                ConnectionString::parse(local).unwrap().is_loopback(),
                "{local}"
            );
        }
        for remote in [
            "ipam.contoso.com",
            "10.0.0.1",
            "[2001:db8::1]:443",
            "localhost.com",
        ] {
            assert!(
                !ConnectionString::parse(remote).unwrap().is_loopback(),
                "{remote}"
            );
        }
        let msg = ConnectionString::parse("host:x").unwrap_err().to_string();
        assert!(msg.contains("Connection string port"), "{msg}");
    }
}
