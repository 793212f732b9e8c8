//! The journal key: secrets the journal must keep (an ExternalId, for resume and bindings) are sealed with it, so a
//! copy of the journal file or a database dump reveals nothing.
//!
//! Sealing is ChaCha20-Poly1305 with a random 96-bit nonce; a sealed value reads `sealed:v1:` + base64url of
//! nonce ‖ ciphertext ‖ tag. The key is 32 random bytes held by crossroled, outside the journal: a key file
//! (64 hex characters, mode 0600) or an environment secret. Other keys are derived from it by label (HMAC-SHA-256),
//! such as the one that makes redaction marks.
//!
//! The journal remembers which key it is written under: a check value derived from the key ([`JournalKey::check`],
//! which tells nothing of the key) kept in its meta, so that crossroled refuses to start with no key or another
//! one before it writes anything ([`KeyEvidence`]). A journal from before the check value is judged by one of its
//! sealed values ([`SealedValue`]), which only the right key opens.

use std::{fmt, io::Write, path::Path};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{
    aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hmac,
    rand::{SecureRandom, SystemRandom},
};

use crate::StoreError;

const SEALED_PREFIX: &str = "sealed:v1:";

/// The journal key. `Debug` never shows it.
#[derive(Clone)]
pub struct JournalKey {
    bytes: [u8; 32],
}

impl fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JournalKey(<secret>)")
    }
}

impl JournalKey {
    /// A key from its 64 hex characters (surrounding whitespace ignored); `what` names the source in errors.
    pub fn from_hex(text: &str, what: &str) -> Result<JournalKey, StoreError> {
        let text = text.trim();
        let bytes = hex::decode(text).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()).ok_or_else(|| {
            StoreError::Key(format!(
                "{what}: must be 64 hex characters (32 bytes; `openssl rand -hex 32` makes one), got {} characters",
                text.len()
            ))
        })?;
        Ok(JournalKey { bytes })
    }

    /// A new random key.
    pub fn generate() -> Result<JournalKey, StoreError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| StoreError::Key("no random source".into()))?;
        Ok(JournalKey { bytes })
    }

    /// Reads the key file at `path`.
    pub fn read(path: &Path) -> Result<JournalKey, StoreError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StoreError::Key(format!("journal key file {}: {e}", path.display())))?;
        JournalKey::from_hex(&text, &format!("journal key file {}", path.display()))
    }

    /// Reads the key file at `path`, or creates it (mode 0600) with a new key when it does not exist.
    pub fn read_or_create(path: &Path) -> Result<(JournalKey, bool), StoreError> {
        if path.exists() {
            return Ok((JournalKey::read(path)?, false));
        }
        let key = JournalKey::generate()?;
        let mut file = private_file(path)
            .map_err(|e| StoreError::Key(format!("journal key file {}: cannot create: {e}", path.display())))?;
        file.write_all(format!("{}\n", hex::encode(key.bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::Key(format!("journal key file {}: cannot write: {e}", path.display())))?;
        Ok((key, true))
    }

    /// A 32-byte key for another purpose, derived by `label`.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.bytes);
        let tag = hmac::sign(&key, label.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn aead(&self) -> LessSafeKey {
        let key = self.derive("crossrole journal seal v1");
        // The key has the right length by construction.
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).unwrap_or_else(|_| unreachable!()))
    }

    /// Seals `plain`, bound to `context` (which must be given again to open it).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| StoreError::Key("no random source".into()))?;
        let mut data = plain.as_bytes().to_vec();
        self.aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| StoreError::Key("cannot seal".into()))?;
        let mut out = nonce.to_vec();
        out.extend(data);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens a value [`JournalKey::seal`] made for `context`. A value that is not sealed is returned as it is
    /// (journals written before sealing existed).
    pub fn open(&self, value: &str, context: &str) -> Result<String, StoreError> {
        let Some(body) = value.strip_prefix(SEALED_PREFIX) else { return Ok(value.to_string()) };
        let wrong = || {
            StoreError::Key(
                "a sealed value does not open with this journal key: is crossroled using the key the journal was \
                 written with?"
                    .into(),
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| wrong())?;
        if bytes.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut data = sealed.to_vec();
        let plain = self.aead().open_in_place(nonce, Aad::from(context.as_bytes()), &mut data).map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }

    /// Whether `value` is sealed.
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(SEALED_PREFIX)
    }

    /// The value the journal keeps to know its key again: keyed, so it tells nothing of the key.
    pub fn check(&self) -> String {
        hex::encode(self.derive("crossrole journal key check v1"))
    }

    /// Whether this key opens `sealed`. The value was found in a payload's bytes, which may run on past its end
    /// (a protobuf payload's next field): shorter readings are tried too, and only the right key opens any.
    pub fn opens(&self, sealed: &SealedValue) -> bool {
        let value = sealed.value.as_str();
        (0..8)
            .filter_map(|cut| value.get(..value.len().checked_sub(cut)?))
            .any(|v| self.open(v, &sealed.context).is_ok())
    }
}

/// What a journal says of the key it is written under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyEvidence {
    /// The check value it keeps ([`JournalKey::check`]); `None` before one was recorded.
    pub check: Option<String>,
    /// Whether it holds any operation, binding or audit entry: records written under a key (sealed ExternalIds,
    /// keyed fingerprints and marks).
    pub holds_records: bool,
    /// With no check value: one of its sealed values, if it holds any.
    pub sealed: Option<SealedValue>,
}

/// A sealed value found in the journal, with the context it was sealed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// The sealed text (`sealed:v1:…`).
    pub value: String,
    /// Its context: the operation's id, or `binding:` and the binding's name.
    pub context: String,
}

impl SealedValue {
    /// The first sealed value in a payload's bytes, for `context`.
    pub(crate) fn in_payload(payload: &[u8], context: String) -> Option<SealedValue> {
        let prefix = SEALED_PREFIX.as_bytes();
        let at = payload.windows(prefix.len()).position(|w| w == prefix)?;
        let body = &payload[at + prefix.len()..];
        let len = body.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_').count();
        let value = format!("{SEALED_PREFIX}{}", std::str::from_utf8(&body[..len]).ok()?);
        Some(SealedValue { value, context })
    }
}

/// The SQL that tells whether a journal holds records (both backends).
pub(crate) const HOLDS_RECORDS: &str = "SELECT EXISTS (SELECT 1 FROM operations) OR EXISTS (SELECT 1 FROM bindings) \
     OR EXISTS (SELECT 1 FROM audit)";

/// The key of the check value in `journal_meta`.
pub(crate) const CHECK_META_KEY: &str = "journal_key_check";

/// The bytes every sealed value starts with, to find one in payloads.
pub(crate) const SEALED_BYTES: &[u8] = SEALED_PREFIX.as_bytes();

/// Creates `path` for writing with mode 0600 (owner only), failing if it exists.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = JournalKey::generate().unwrap();
        let sealed = key.seal("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "op-1").unwrap();
        assert!(JournalKey::is_sealed(&sealed));
        assert!(!sealed.contains("Wq3vT9z"));
        // Random nonces: the same value seals differently each time.
        assert_ne!(sealed, key.seal("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "op-1").unwrap());
        assert_eq!(key.open(&sealed, "op-1").unwrap(), "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf");
        // Another context, another key, a tampered value: refused.
        assert!(key.open(&sealed, "op-2").is_err());
        assert!(JournalKey::generate().unwrap().open(&sealed, "op-1").is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(key.open(&tampered, "op-1").is_err());
        // Legacy clear values pass through.
        assert_eq!(key.open("plain", "op-1").unwrap(), "plain");
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.key");
        let (created, new) = JournalKey::read_or_create(&path).unwrap();
        assert!(new);
        let (read, new) = JournalKey::read_or_create(&path).unwrap();
        assert!(!new);
        assert_eq!(created.derive("x"), read.derive("x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "abc").unwrap();
        let e = JournalKey::read(&path).unwrap_err().to_string();
        assert!(e.contains("must be 64 hex characters"), "{e}");
        assert!(format!("{read:?}") == "JournalKey(<secret>)");
    }

    #[test]
    fn a_sealed_value_found_in_a_payload_opens_with_its_key_only() {
        let key = JournalKey::generate().unwrap();
        let sealed = key.seal("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "op-1").unwrap();
        // In a record (JSON), and in a protobuf message where the next field's tag reads as a base64 character.
        for payload in [format!(r#"{{"v":1,"external_id":"{sealed}"}}"#), format!("\x0a\x2c{sealed}2\x05abcde")] {
            let found = SealedValue::in_payload(payload.as_bytes(), "op-1".into()).unwrap();
            assert!(key.opens(&found), "{payload}");
            assert!(!JournalKey::generate().unwrap().opens(&found));
            assert!(!key.opens(&SealedValue { context: "op-2".into(), ..found }));
        }
        assert_eq!(SealedValue::in_payload(b"{\"v\":1}", "op-1".into()), None);
        assert_ne!(key.check(), JournalKey::generate().unwrap().check());
        assert_eq!(key.check(), key.clone().check());
        assert!(!key.check().contains(&hex::encode(key.bytes)));
    }
}
