//! What a run left behind: the names in the directories where programs leave their files — the working
//! directory the campaign runs the program in and the temporary directory (`$TMPDIR`, else `/tmp`) — before a
//! run, and after it the ones that are new and still there. When a run leaves the program failing without
//! injection (a test suite whose crashed run left sockets of fixed names in `/tmp`), the campaign stops, and
//! these names tell the user what to remove before `--resume`.
//!
//! Only the top level of each directory, by name: a listing costs one `readdir` per run. A name is new if it
//! was not there when the run started, whoever made it: another program on the machine may have made some,
//! which the sentence says.

use std::{
    collections::HashSet,
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
};

/// How many names a sentence shows; the rest are counted.
const SHOWN: usize = 5;

/// The names in each watched directory at one moment.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    dirs: Vec<(PathBuf, HashSet<OsString>)>,
}

impl Snapshot {
    /// The names now in the working directory and the temporary directory (once, when they are the same). A
    /// directory that cannot be listed is left out.
    pub(super) fn take() -> Self {
        let mut watched: Vec<PathBuf> = Vec::new();
        for dir in [std::env::current_dir().ok(), Some(std::env::temp_dir())]
            .into_iter()
            .flatten()
        {
            let dir = fs::canonicalize(&dir).unwrap_or(dir);
            if !watched.contains(&dir) {
                watched.push(dir);
            }
        }
        Self::of(&watched)
    }

    /// The names now in each of `dirs`.
    pub(super) fn of(dirs: &[PathBuf]) -> Self {
        let dirs = dirs
            .iter()
            .filter_map(|dir| Some((dir.clone(), names(dir)?)))
            .collect();
        Self { dirs }
    }

    /// The entries of the watched directories that are there now and were not in this snapshot, sorted by path.
    pub(super) fn new_since(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .dirs
            .iter()
            .flat_map(|(dir, before)| {
                names(dir)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|name| !before.contains(name))
                    .map(|name| dir.join(name))
            })
            .collect();
        out.sort();
        out
    }
}

/// The names in `dir`, `None` when it cannot be listed.
fn names(dir: &Path) -> Option<HashSet<OsString>> {
    let entries = fs::read_dir(dir).ok()?;
    Some(entries.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
}

/// What a sentence about a broken program adds: `; new since run K started and still there (another program may
/// have made some): /tmp/a.sock, /tmp/b.sock and 3 more`, or nothing when there is none.
pub(super) fn clause(k: u32, left: &[PathBuf]) -> String {
    if left.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = left.iter().take(SHOWN).map(|p| p.display().to_string()).collect();
    let more = match left.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "; new since run {k} started and still there (another program may have made some): {}{more}",
        shown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_made_after_the_snapshot_is_new_and_one_removed_is_not() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("kept"), b"").unwrap();
        fs::write(dir.path().join("removed"), b"").unwrap();
        let snapshot = Snapshot::of(&[dir.path().to_path_buf()]);
        fs::remove_file(dir.path().join("removed")).unwrap();
        fs::write(dir.path().join("tmpA.sock"), b"").unwrap();
        fs::create_dir(dir.path().join("tmpdir")).unwrap();
        assert_eq!(
            snapshot.new_since(),
            vec![dir.path().join("tmpA.sock"), dir.path().join("tmpdir")]
        );
    }

    #[test]
    fn the_clause_shows_five_names_and_counts_the_rest() {
        let left: Vec<PathBuf> = (0..7).map(|i| PathBuf::from(format!("/tmp/t{i}"))).collect();
        assert_eq!(
            clause(3, &left),
            "; new since run 3 started and still there (another program may have made some): /tmp/t0, /tmp/t1, \
             /tmp/t2, /tmp/t3, /tmp/t4 and 2 more"
        );
        assert_eq!(clause(1, &[]), "");
    }

    #[test]
    fn a_directory_that_cannot_be_listed_is_left_out() {
        let snapshot = Snapshot::of(&[PathBuf::from("/nonexistent/phoebe-leftovers")]);
        assert!(snapshot.new_since().is_empty());
    }
}
