//! Bearer tokens: random 32 bytes (hex) handed out once, stored only as their SHA-256.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
pub enum Role {
    /// Read and write (the IPAM ASM Administrators group of the seed).
    #[serde(rename = "asm-administrator")]
    #[value(name = "asm-administrator")]
    AsmAdministrator,
    /// GET only.
    #[serde(rename = "read-only")]
    #[value(name = "read-only")]
    ReadOnly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::AsmAdministrator => "asm-administrator",
            Role::ReadOnly => "read-only",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "asm-administrator" => Some(Role::AsmAdministrator),
            "read-only" => Some(Role::ReadOnly),
            _ => None,
        }
    }
    pub fn can_write(self) -> bool {
        self == Role::AsmAdministrator
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A new random token: 32 bytes from the OS generator, hex-encoded.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let t = token.trim();
        (!t.is_empty()).then_some(t)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn bearer_header_is_parsed() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Token abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
