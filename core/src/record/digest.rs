use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! sha256_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw digest bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// SHA-256 of `data`.
            pub fn of(data: &[u8]) -> Self {
                let d = ring::digest::digest(&ring::digest::SHA256, data);
                let mut out = [0u8; 32];
                out.copy_from_slice(d.as_ref());
                Self(out)
            }
        }

        impl FromStr for $name {
            type Err = String;
            /// Parses 64 lowercase hex digits (the only accepted spelling,
            /// so one digest has one text form).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    return Err("expected 64 lowercase hex digits".into());
                }
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).map_err(|e| e.to_string())?;
                Ok(Self(out))
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(d: $name) -> Self {
                d.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

sha256_newtype!(
    /// A record's id: SHA-256 of its body bytes, so the id commits to every
    /// field, and the same record always has the same id (the idempotency key
    /// for sync).
    RecordId
);

sha256_newtype!(
    /// A SHA-256 digest of something other than a record body (an attachment,
    /// a server tree head).
    Sha256Digest
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_hex_parses() {
        let id = RecordId::of(b"x");
        assert_eq!(id.to_string().parse::<RecordId>().unwrap(), id);
        assert!(id.to_string().to_uppercase().parse::<RecordId>().is_err());
        assert!("ab".parse::<RecordId>().is_err());
        assert!("g".repeat(64).parse::<RecordId>().is_err());
    }
}
