//! The journal key: read from where the configuration says, and checked against the journal before crossroled
//! writes anything to it.
//!
//! A journal keeps a check value of the key it is written under (`crossrole_store::JournalKey::check`), recorded
//! the first time a crossroled opens it; a journal from before the check value is judged by one of its sealed
//! ExternalIds, which only its key opens, and then gets one. A journal that holds records written under a key and
//! is opened with another key, or with none (the data directory's `journal.key` gone), stops the start with what
//! is wrong and what to do: starting anyway would leave the ExternalIds it keeps unopenable and what it writes
//! next under two keys. Only a journal that holds nothing and knows no key yet gets a new data-directory key.

use std::path::PathBuf;

use anyhow::bail;
use crossrole_store::{Journal, JournalKey, KeyEvidence};

use crate::config::{Config, JournalKeySource};

/// Where a key may come from, for messages.
const SETTINGS: &str = "journal_key_file (--journal-key-file, CROSSROLE_JOURNAL_KEY_FILE), CROSSROLE_JOURNAL_KEY, or \
                        journal.key in the data directory";

/// The key the configuration names, read; or, for the data directory's key, the place it would be created.
#[derive(Debug, Clone)]
pub(crate) struct Configured {
    /// The key, when there is one.
    key: Option<JournalKey>,
    /// Where it came from, for messages (`CROSSROLE_JOURNAL_KEY`, `journal_key_file /etc/…`).
    from: String,
    /// The data directory's key file, when the key is to be there.
    data_dir_key: Option<PathBuf>,
}

/// The key as the configuration names it. A key file or variable that is not a key fails here; the data
/// directory's key may not exist yet ([`Configured::settle`] decides whether it may be made).
pub(crate) fn configured(config: &Config) -> anyhow::Result<Configured> {
    Ok(match &config.journal_key {
        JournalKeySource::Env(hex) => Configured {
            key: Some(JournalKey::from_hex(hex, "CROSSROLE_JOURNAL_KEY")?),
            from: "CROSSROLE_JOURNAL_KEY".into(),
            data_dir_key: None,
        },
        JournalKeySource::File(path) => Configured {
            key: Some(JournalKey::read(path)?),
            from: format!("journal_key_file {}", path.display()),
            data_dir_key: None,
        },
        JournalKeySource::DataDir => {
            let path = config.data_dir.join("journal.key");
            let key = if path.exists() { Some(JournalKey::read(&path)?) } else { None };
            Configured { key, from: format!("the data directory's key {}", path.display()), data_dir_key: Some(path) }
        }
    })
}

impl Configured {
    /// The key to run `journal` (at `at`, for messages) with, once the journal says it is the one it is written
    /// under; `record` (the writer, not a standby that only reads) records the check value where there is none yet.
    pub(crate) async fn settle(&self, journal: &dyn Journal, at: &str, record: bool) -> anyhow::Result<JournalKey> {
        let mut key = self.key.clone();
        // Replicas starting together may race to record: the loser reads again and compares.
        for _ in 0..3 {
            let evidence = journal.key_evidence().await?;
            let candidate = match key.take() {
                Some(k) => self.judged(k, &evidence, at)?,
                None => self.made(&evidence, at)?,
            };
            if evidence.check.is_some() || !record || journal.record_key_check(&candidate.check()).await? {
                return Ok(candidate);
            }
            key = Some(candidate);
        }
        bail!("the journal {at}: cannot record which key it is written under (it keeps changing); start again")
    }

    /// `key`, if the journal is written under it (or under no key yet).
    fn judged(&self, key: JournalKey, evidence: &KeyEvidence, at: &str) -> anyhow::Result<JournalKey> {
        let wrong = match (&evidence.check, &evidence.sealed) {
            (Some(check), _) => *check != key.check(),
            (None, Some(sealed)) => !key.opens(sealed),
            (None, None) => false,
        };
        if wrong {
            bail!(
                "the journal {at} is written under another journal key than the one crossroled has ({}): with it, \
                 the ExternalIds the journal keeps would not open and what crossroled writes next would be under \
                 two keys, so it does not start. Give crossroled the key the journal was written with ({SETTINGS}); \
                 to start over with an empty journal instead, move the journal away",
                self.from
            );
        }
        Ok(key)
    }

    /// A new data-directory key, for a journal that holds nothing and knows no key yet.
    fn made(&self, evidence: &KeyEvidence, at: &str) -> anyhow::Result<JournalKey> {
        let Some(path) = &self.data_dir_key else { bail!("the journal {at}: crossroled has no journal key") };
        if evidence.check.is_some() || evidence.holds_records {
            bail!(
                "the journal {at} holds records written under a journal key, and crossroled has none: {} does not \
                 exist. crossroled makes a new key only for a new journal (with another, the ExternalIds this one \
                 keeps would not open), so it does not start. Put the journal's key back at {}, or give it as \
                 journal_key_file or CROSSROLE_JOURNAL_KEY; to start over with an empty journal instead, move the \
                 journal away",
                path.display(),
                path.display()
            );
        }
        let (key, _) = JournalKey::read_or_create(path)?;
        tracing::warn!(
            path = %path.display(),
            "created a journal key in the data directory; a copy of the directory carries the key with the journal: \
             in production, keep the key apart (journal_key_file or CROSSROLE_JOURNAL_KEY)"
        );
        Ok(key)
    }
}
