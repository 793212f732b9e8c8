//! One writer per journal: an exclusive lock on the data directory, taken before anything in it is read.
//!
//! A second crossroled on the same directory would resume live operations beside the first and both would write
//! the same rows. The lock is an OS file lock (`flock`) on `crossroled.lock`, released by the kernel when the
//! process ends however it ends (kill -9 included), so a stale lock file never blocks a restart. The file holds the
//! holder's pid and host, for the refusal message.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::StoreError;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Locks `dir` (which must exist), or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StoreError> {
        let path = dir.join("crossroled.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    dir: dir.display().to_string(),
                    holder: if holder.is_empty() { "another process".into() } else { holder.to_string() },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Io(format!("cannot lock {}: {e}", path.display())));
            }
        }
        let me = format!("crossroled pid {} on host {}", std::process::id(), hostname());
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(me.as_bytes()))
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            return Err(StoreError::Io(format!("cannot write {}: {e}", path.display())));
        }
        Ok(DataDirLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDirLock::acquire(dir.path()).unwrap();
        let e = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("crossroled pid {}", std::process::id())), "{e}");
        assert!(e.contains("is in use"), "{e}");
        drop(held);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
