//! Files the CLI writes that may hold secrets (exports with ExternalIds): created readable by their owner alone
//! (0600), and never written through a link already at the path: the text goes to a new file beside it, which then
//! replaces whatever was at the path — a symbolic link there is replaced, never followed.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// Writes `text` to `path` as described in the module docs.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("export");
    let temp = (0..100)
        .map(|i| dir.join(format!(".{name}.{}.{i}.tmp", std::process::id())))
        .find_map(|candidate| create_new_private(&candidate).ok().map(|f| (candidate, f)));
    let Some((temp, mut file)) = temp else {
        return Err(std::io::Error::other(format!("cannot create a temporary file in {}", dir.display())));
    };
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    drop(file);
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// A new file (never an existing one, nor through a link), readable and writable by its owner alone.
fn create_new_private(path: &PathBuf) -> std::io::Result<std::fs::File> {
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
    fn a_secret_file_is_its_owners_alone_and_replaces_a_link_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("crossrole-audit.config");
        write_private(&path, "first").unwrap_or_else(|e| panic!("{e}"));
        write_private(&path, "second").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read_to_string(&path).ok().as_deref(), Some("second"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            assert_eq!(mode, 0o600);
            // A link planted at the path, pointing at a file the attacker wants overwritten (or read later).
            let target = dir.path().join("elsewhere");
            std::fs::write(&target, "untouched").unwrap_or_else(|e| panic!("{e}"));
            let link = dir.path().join("linked.config");
            std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
            write_private(&link, "secret").unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(std::fs::read_to_string(&target).ok().as_deref(), Some("untouched"), "never through the link");
            let meta = std::fs::symlink_metadata(&link).unwrap_or_else(|e| panic!("{e}"));
            assert!(meta.file_type().is_file() && meta.permissions().mode() & 0o777 == 0o600);
        }
        // Nothing left behind.
        let left: Vec<_> =
            std::fs::read_dir(dir.path()).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
        assert!(left.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")), "{left:?}");
    }
}
