//! Reading and writing phoebe's JSON files: atomically (temp file + rename), with a version check and errors
//! that name the file.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Serialize, de::DeserializeOwned};

/// Held while a file is being written: a stop signal that ends phoebe waits for it (see [`hold_saves`]).
static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for the save under way, if any, and keeps any other from starting while the guard lives: the signal
/// thread holds it while it ends the process, so that no temporary file is left behind half-written.
pub fn hold_saves() -> std::sync::MutexGuard<'static, ()> {
    // A panic during a save left nothing to protect: the lock is still usable.
    SAVING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

use crate::model::{FORMAT_VERSION, OLDEST_READ_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid phoebe {what} file: {source}", path.display())]
    Parse {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{} has format version {found}, this phoebe reads versions {OLDEST_READ_VERSION} to {FORMAT_VERSION}",
        path.display()
    )]
    Version { path: PathBuf, found: u64 },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::hint::Hinted for FileError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            FileError::Version { .. } => Some("re-create it with this phoebe".into()),
            FileError::Read { .. } | FileError::Parse { .. } | FileError::Write { .. } => None,
        }
    }
}

/// Reads a phoebe JSON file of kind `what` (for messages), checking its `version` first.
pub fn load<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, FileError> {
    let text = fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.into(),
        source,
    })?;
    parse(&text, path, what)
}

/// Parses the text of a phoebe JSON file of kind `what` read from `path` (for messages), checking its `version`
/// first: what [`load`] does once the file is read.
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path, what: &'static str) -> Result<T, FileError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|source| FileError::Parse {
        path: path.into(),
        what,
        source,
    })?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if (u64::from(OLDEST_READ_VERSION)..=u64::from(FORMAT_VERSION)).contains(&v) => {}
        Some(found) => {
            return Err(FileError::Version {
                path: path.into(),
                found,
            });
        }
        None => {
            return Err(FileError::Parse {
                path: path.into(),
                what,
                source: serde::de::Error::custom("missing \"version\" field"),
            });
        }
    }
    serde_json::from_value(value).map_err(|source| FileError::Parse {
        path: path.into(),
        what,
        source,
    })
}

/// Checks, before a run, that [`save_text`] will be able to write `path`: a directory is not a file, and the
/// temporary file must be creatable beside it (a special file such as `/dev/null` must open for writing). A long
/// run must not end with "cannot write".
pub fn check_writable(path: &Path) -> Result<(), FileError> {
    let err = |source| FileError::Write {
        path: path.into(),
        source,
    };
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(err(std::io::Error::from(std::io::ErrorKind::IsADirectory)));
        }
        Ok(m) if !m.is_file() => {
            return fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map(drop)
                .map_err(err);
        }
        _ => {}
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A probe file of our own (tempfile's errors name its random path, not the user's).
    let probe = dir.join(format!(".phoebe-write-check-{}", std::process::id()));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(err)?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Writes `value` as pretty JSON to `path` atomically: readers see the old file or the new one, never half.
pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| FileError::Write {
        path: path.into(),
        source: e.into(),
    })?;
    text.push('\n');
    save_text(path, &text)
}

/// Writes `text` to `path` atomically (a temporary file in the same directory, synced, then renamed), with the
/// permissions any new file gets (0666 less the umask). A path
/// that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is written to directly: renaming
/// over it would replace the device with a file.
pub fn save_text(path: &Path, text: &str) -> Result<(), FileError> {
    let err = |source| FileError::Write {
        path: path.into(),
        source,
    };
    // Until the temporary file is renamed or removed (dropped on error), a stop signal waits.
    let _saving = hold_saves();
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(err);
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Created like any other output (0666 less the umask), not tempfile's private 0600: a report is for
    // others to read.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(text.as_bytes()).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InjectionLog;

    /// Regression: `-o /dev/null` as root renamed a temporary file over the device.
    #[test]
    fn special_files_are_written_in_place() {
        save_text(Path::new("/dev/null"), "discarded").unwrap();
        let meta = fs::metadata("/dev/null").unwrap();
        assert!(!meta.is_file(), "/dev/null was replaced by a regular file");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        fs::write(&bad, "{not json").unwrap();
        let err = load::<InjectionLog>(&bad, "injection log")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad.json is not a valid phoebe injection log file"),
            "{err}"
        );
        fs::write(&bad, r#"{"version": 9}"#).unwrap();
        let err = load::<InjectionLog>(&bad, "injection log")
            .unwrap_err()
            .to_string();
        assert!(err.contains("format version 9"), "{err}");
        assert!(err.contains("reads versions 1 to 2"), "{err}");
        let missing = load::<InjectionLog>(&dir.path().join("nope.json"), "injection log").unwrap_err();
        assert!(missing.to_string().starts_with("cannot read"));
    }

    /// Files from before call shapes (version 1) still load, as files without shapes.
    #[test]
    fn version_1_files_load_without_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("observation.json");
        fs::write(
            &old,
            r#"{"version": 1, "command": ["ls"], "backend": "ptrace", "kernel": "6.1", "started_at": "2026-01-01T00:00:00Z",
                "interval_ms": 1000, "duration_ms": 5, "syscalls": null, "exit": {"code": 0},
                "intervals": [{"syscalls": {"openat": {"calls": 3, "errors": {"ENOENT": 1},
                               "latency_ns_sum": 30, "latency_ns_max": 12}}}]}"#,
        )
        .unwrap();
        let obs: crate::model::Observation = load(&old, "observation").unwrap();
        assert_eq!(obs.version, 1);
        assert!(obs.intervals[0].syscalls.values().all(|s| s.shapes.is_empty()));
        assert_eq!(obs.failed_shapes(), None);
    }
}
