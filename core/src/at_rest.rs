//! Encryption at rest: what the store writes to disk that says what was
//! observed is encrypted under the store's data key.
//!
//! The data key is 32 random bytes, wrapped by the platform key store (like
//! the device key) and kept in the database only wrapped. Two subkeys are
//! derived from it with HKDF-SHA256, so one secret serves two purposes
//! without reusing key material across algorithms:
//!
//! * an AEAD key (ChaCha20-Poly1305) that encrypts rows: `nonce || ciphertext ||
//!   tag`, random 96-bit nonces (a phone writes far fewer than the 2^32
//!   messages per key that random nonces allow), with a *context* as
//!   associated data that binds each blob to its place (table, column,
//!   chain position), so a blob moved to another row does not open;
//! * an HMAC-SHA256 key for lookup tags: rows are found by
//!   `HMAC(index key, record id)` instead of the id itself, because a
//!   readable id (= SHA-256 of the body) would let whoever holds the file
//!   confirm a guessed body, and count forms have guessable bodies.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroizing;

/// Length of the data key's secret.
pub(crate) const SECRET_LEN: usize = 32;
/// Bytes an encrypted blob adds to its plaintext (nonce + tag).
pub(crate) const OVERHEAD: usize = NONCE_LEN + 16;
/// Where the plaintext starts in a blob opened in place.
pub(crate) const NONCE_AT: usize = NONCE_LEN;

/// An encrypted blob did not decrypt: it was altered, moved, or encrypted under
/// another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("encrypted data failed authentication (altered, moved, or encrypted under another key)")]
pub(crate) struct Unreadable;

/// The store's data key, expanded into its two subkeys.
pub(crate) struct DataKey {
    aead: LessSafeKey,
    index: hmac::Key,
}

struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(secret: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Salt::new(HKDF_SHA256, b"observer/at-rest/v1")
        .extract(secret)
        .expand(&[info], Len(32))
        .and_then(|okm| okm.fill(out.as_mut()))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

impl DataKey {
    /// A new random secret (to be wrapped and stored) and its key.
    pub(crate) fn generate() -> Result<(Zeroizing<[u8; SECRET_LEN]>, Self), Unavailable> {
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        SystemRandom::new()
            .fill(secret.as_mut())
            .map_err(|_| Unavailable)?;
        let key = Self::from_secret(secret.as_ref()).expect("length is SECRET_LEN");
        Ok((secret, key))
    }

    /// The key for a stored secret; `None` if it has the wrong length.
    pub(crate) fn from_secret(secret: &[u8]) -> Option<Self> {
        if secret.len() != SECRET_LEN {
            return None;
        }
        let aead = expand(secret, b"aead");
        let index = expand(secret, b"index");
        Some(Self {
            aead: LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, aead.as_ref()).expect("32-byte key"),
            ),
            index: hmac::Key::new(hmac::HMAC_SHA256, index.as_ref()),
        })
    }

    /// Seals `plaintext`, bound to `context`.
    pub(crate) fn encrypt(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Unavailable> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Unavailable)?;
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| Unavailable)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Seals in place: `buf` is `room for the nonce || plaintext || room for
    /// the tag` and becomes `nonce || ciphertext || tag` (media chunks, with
    /// no copy).
    pub(crate) fn encrypt_in_buffer(
        &self,
        context: &[u8],
        buf: &mut [u8],
    ) -> Result<(), Unavailable> {
        if buf.len() < OVERHEAD {
            return Err(Unavailable);
        }
        let (nonce_room, rest) = buf.split_at_mut(NONCE_LEN);
        SystemRandom::new()
            .fill(nonce_room)
            .map_err(|_| Unavailable)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce_room).map_err(|_| Unavailable)?;
        let (plain, tag_room) = rest.split_at_mut(rest.len() - 16);
        let tag = self
            .aead
            .seal_in_place_separate_tag(nonce, Aad::from(context), plain)
            .map_err(|_| Unavailable)?;
        tag_room.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens `nonce || ct || tag` in place, returning the plaintext slice.
    pub(crate) fn decrypt_in_place<'b>(
        &self,
        context: &[u8],
        blob: &'b mut [u8],
    ) -> Result<&'b mut [u8], Unreadable> {
        if blob.len() < OVERHEAD {
            return Err(Unreadable);
        }
        let (nonce, ct) = blob.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unreadable)?;
        self.aead
            .open_in_place(nonce, Aad::from(context), ct)
            .map_err(|_| Unreadable)
    }

    /// Opens a blob that [`DataKey::encrypt`] made with the same `context`.
    pub(crate) fn decrypt(&self, context: &[u8], blob: &[u8]) -> Result<Vec<u8>, Unreadable> {
        if blob.len() < OVERHEAD {
            return Err(Unreadable);
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unreadable)?;
        let mut buf = ct.to_vec();
        let len = self
            .aead
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| Unreadable)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// The lookup tag for `value` (a record id): equal values give equal
    /// tags, and nothing about the value can be learned without the key.
    pub(crate) fn tag(&self, value: &[u8]) -> [u8; 32] {
        hmac::sign(&self.index, value)
            .as_ref()
            .try_into()
            .expect("HMAC-SHA256 is 32 bytes")
    }
}

/// The system's random generator failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the system random generator failed")]
pub(crate) struct Unavailable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_opens_only_in_its_context_and_under_its_key() {
        let (_, k) = DataKey::generate().unwrap();
        let (_, other) = DataKey::generate().unwrap();
        let blob = k.encrypt(b"records/7", b"secret words").unwrap();
        assert_eq!(blob.len(), b"secret words".len() + OVERHEAD);
        assert!(!blob.windows(6).any(|w| w == b"secret"));
        assert_eq!(k.decrypt(b"records/7", &blob).unwrap(), b"secret words");
        assert_eq!(k.decrypt(b"records/8", &blob), Err(Unreadable));
        assert_eq!(other.decrypt(b"records/7", &blob), Err(Unreadable));
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x80;
            assert_eq!(k.decrypt(b"records/7", &bad), Err(Unreadable), "byte {i}");
        }
        assert_eq!(
            k.decrypt(b"records/7", &blob[..OVERHEAD - 1]),
            Err(Unreadable)
        );
    }

    #[test]
    fn tags_are_stable_per_key_and_differ_across_keys() {
        let (secret, k) = DataKey::generate().unwrap();
        let again = DataKey::from_secret(secret.as_ref()).unwrap();
        let (_, other) = DataKey::generate().unwrap();
        assert_eq!(k.tag(b"id"), again.tag(b"id"));
        assert_ne!(k.tag(b"id"), k.tag(b"id2"));
        assert_ne!(k.tag(b"id"), other.tag(b"id"));
        assert!(DataKey::from_secret(&[0u8; 31]).is_none());
    }
}
