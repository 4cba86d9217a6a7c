//! Secrets: Gemini keys encrypted at rest (AES-256-GCM), their fingerprints (HMAC-SHA-256, for
//! uniqueness and look-up by value without decrypting every row), masking for display, and
//! constant-time token comparison.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Generate, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "ENCRYPTION_KEY must be 32 bytes, base64-encoded (generate one with `openssl rand -base64 32`)"
    )]
    BadKey,
    #[error("a stored key value cannot be decrypted: wrong ENCRYPTION_KEY or corrupt row")]
    Undecryptable,
    #[error("encryption key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Encrypts, decrypts and fingerprints key values under one `ENCRYPTION_KEY`.
#[derive(Clone)]
pub struct KeyCipher {
    aead: Aes256Gcm,
    fingerprint_key: [u8; 32],
    caller_key: [u8; 32],
}

/// A key derived from `ENCRYPTION_KEY` for one purpose: knowing it reveals nothing of the key
/// it comes from nor of the others.
fn derived_key(key_bytes: &[u8; 32], purpose: &[u8]) -> Result<[u8; 32], SecretError> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key_bytes).map_err(|_| SecretError::BadKey)?;
    mac.update(purpose);
    Ok(mac.finalize().into_bytes().into())
}

/// Hex of HMAC-SHA-256 under `key`.
fn keyed_hex(key: &[u8; 32], value: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(value.as_bytes());
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

impl KeyCipher {
    /// From `ENCRYPTION_KEY`: 32 bytes in standard base64.
    pub fn from_base64(encoded: &str) -> Result<Self, SecretError> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|_| SecretError::BadKey)?;
        let key_bytes: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        // The fingerprint and caller keys are derived, so that what they make reveals nothing
        // usable for decryption.
        let fingerprint_key = derived_key(&key_bytes, b"gemini-balance key fingerprint v1")?;
        let caller_key = derived_key(&key_bytes, b"gemini-balance caller id v1")?;
        let key = Key::<Aes256Gcm>::from(key_bytes);
        Ok(KeyCipher {
            aead: Aes256Gcm::new(&key),
            fingerprint_key,
            caller_key,
        })
    }

    /// A fresh random key, base64-encoded as `ENCRYPTION_KEY` expects.
    pub fn generate_base64() -> String {
        let key = Key::<Aes256Gcm>::generate();
        BASE64.encode(key.as_slice())
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`, with a random nonce per value.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce = Nonce::generate();
        // Encryption into a Vec fails only on lengths beyond 2^36 bytes; a key value is tiny.
        let ciphertext = self
            .aead
            .encrypt(&nonce, plaintext.as_bytes())
            .unwrap_or_default();
        let mut stored = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        stored.extend_from_slice(nonce.as_slice());
        stored.extend_from_slice(&ciphertext);
        BASE64.encode(stored)
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, SecretError> {
        let bytes = BASE64
            .decode(stored)
            .map_err(|_| SecretError::Undecryptable)?;
        if bytes.len() <= NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce_bytes, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce_bytes).map_err(|_| SecretError::Undecryptable)?;
        let plaintext = self
            .aead
            .decrypt(&nonce, ciphertext)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::Undecryptable)
    }

    /// A stable, keyed fingerprint of a key value (hex), unique per value.
    pub fn fingerprint(&self, value: &str) -> String {
        keyed_hex(&self.fingerprint_key, value)
    }

    /// The name logs and statistics give a client token (`token-` and 12 hex digits): keyed
    /// by the server's secret, so that a weak token cannot be found from the statistics by
    /// hashing guesses.
    pub fn caller_id(&self, token: &str) -> String {
        let hex = keyed_hex(&self.caller_key, token);
        format!("token-{}", &hex[..hex.len().min(12)])
    }
}

/// Reads the generated key file beside the SQLite database, or creates it (mode 0600).
/// Returns the key and whether it was created now.
pub fn load_or_create_key_file(path: &Path) -> Result<(String, bool), SecretError> {
    let to_error = |source| SecretError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(existing) => return Ok((existing.trim().to_owned(), false)),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(to_error(error)),
        Err(_) => {}
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(to_error)?;
    }
    // Written whole under a temporary name, then linked into place: services starting
    // together never read a half-written key, and only one key ever wins.
    let key = KeyCipher::generate_base64();
    static ATTEMPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_extension(format!("tmp-{}-{attempt}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        std::io::Write::write_all(&mut file, format!("{key}\n").as_bytes())?;
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(to_error(error));
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok((key, true)),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read_to_string(path).map_err(to_error)?;
            Ok((existing.trim().to_owned(), false))
        }
        Err(error) => Err(to_error(error)),
    }
}

/// `AIzaSy…a1b2`: enough to tell keys apart, never enough to use one.
pub fn mask_key(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 12 {
        let tail: String = chars[chars.len().saturating_sub(2)..].iter().collect();
        return format!("…{tail}");
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Compares a presented token with an expected one in time independent of where they differ.
pub fn tokens_match(presented: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Replaces every occurrence of `secret` in `text` by its mask.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        return text.to_owned();
    }
    text.replace(secret, &mask_key(secret))
}

/// Masks in `text` every piece of `value` it repeats: the whole value, and each run of it
/// between quotes, commas, brackets, braces, colons and spaces that is long enough to be a
/// secret (4 characters or more).
pub fn redact_pieces(text: &str, value: &str) -> String {
    let mut redacted = redact(text, value.trim());
    let mut pieces: Vec<&str> = value
        .split(|c: char| c.is_whitespace() || "\"',[]{}:".contains(c))
        .filter(|piece| piece.chars().count() >= 4)
        .collect();
    // The longest first, so that a piece inside another does not break its mask.
    pieces.sort_by_key(|piece| std::cmp::Reverse(piece.len()));
    for piece in pieces {
        redacted = redact(&redacted, piece);
    }
    redacted
}

/// The key under which values are encrypted: `ENCRYPTION_KEY`, or, on SQLite without one, a key
/// generated on first start and kept beside the database file (mode 0600).
pub fn resolve_cipher(settings: &crate::settings::Settings) -> anyhow::Result<KeyCipher> {
    if let Some(encoded) = &settings.shared.encryption_key {
        return Ok(KeyCipher::from_base64(encoded.expose())?);
    }
    let crate::settings::DatabaseLocation::Sqlite(path) = &settings.shared.database else {
        anyhow::bail!(
            "setting ENCRYPTION_KEY: required with a Postgres DATABASE_URL (32 bytes, base64)"
        );
    };
    let key_path = path.with_file_name("encryption.key");
    let (encoded, created) = load_or_create_key_file(&key_path)?;
    if created {
        tracing::warn!(
            path = %key_path.display(),
            "no ENCRYPTION_KEY given: generated one and stored it beside the database; back it up, the keys cannot be read without it"
        );
    } else {
        tracing::info!(path = %key_path.display(), "using the encryption key stored beside the database");
    }
    Ok(KeyCipher::from_base64(&encoded)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_random_nonce() {
        let cipher = KeyCipher::from_base64(&KeyCipher::generate_base64()).unwrap();
        let first = cipher.encrypt("AIzaSyExampleExampleExampleExample1234");
        let second = cipher.encrypt("AIzaSyExampleExampleExampleExample1234");
        assert_ne!(first, second);
        assert!(!first.contains("AIzaSy"));
        assert_eq!(
            cipher.decrypt(&first).unwrap(),
            "AIzaSyExampleExampleExampleExample1234"
        );
    }

    #[test]
    fn wrong_key_cannot_decrypt() {
        let one = KeyCipher::from_base64(&KeyCipher::generate_base64()).unwrap();
        let other = KeyCipher::from_base64(&KeyCipher::generate_base64()).unwrap();
        assert!(other.decrypt(&one.encrypt("secret")).is_err());
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let cipher = KeyCipher::from_base64(&KeyCipher::generate_base64()).unwrap();
        assert_eq!(cipher.fingerprint("a"), cipher.fingerprint("a"));
        assert_ne!(cipher.fingerprint("a"), cipher.fingerprint("b"));
        assert_eq!(cipher.fingerprint("a").len(), 64);
    }

    #[test]
    fn bad_encryption_key_is_refused() {
        assert!(KeyCipher::from_base64("short").is_err());
        assert!(KeyCipher::from_base64("not base64 at all!!").is_err());
    }

    #[test]
    fn masks() {
        assert_eq!(
            mask_key("AIzaSyABCDEFGHIJKLMNOPQRSTUVWXYZ0123a1b2"),
            "AIzaSy…a1b2"
        );
        assert!(!mask_key("shortkey").contains("short"));
        assert_eq!(
            redact("bad key k-123456789012345 here", "k-123456789012345"),
            "bad key k-1234…2345 here"
        );
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/encryption.key");
        let (key, created) = load_or_create_key_file(&path).unwrap();
        assert!(created);
        let (again, created_again) = load_or_create_key_file(&path).unwrap();
        assert!(!created_again);
        assert_eq!(key, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "abcd"));
    }
}
