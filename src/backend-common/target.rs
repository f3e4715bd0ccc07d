//! The command a backend launches: resolved against PATH once, in phoebe, so that the target's own exec is the
//! only one the backends see (the launcher's PATH search would otherwise fail `execve` once per PATH entry).

use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt,
    path::PathBuf,
};

/// A resolved command line.
#[derive(Debug, Clone)]
pub struct Target {
    /// The executable that will be exec'd.
    pub program: PathBuf,
    pub program_c: CString,
    pub argv: Vec<CString>,
    /// The command line as the user wrote it, for files and messages.
    pub display: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no command given")]
    Empty,
    #[error("command not found: '{0}'")]
    NotFound(String),
    #[error("argument {0:?} contains a NUL byte")]
    Nul(OsString),
}

impl phoebe_core::hint::Hinted for TargetError {
    fn hint(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            TargetError::Empty => Some("put the command after `--`, e.g. `phoebe observe -- ls /`".into()),
            TargetError::NotFound(_) => Some("give a path, or check that it is on PATH".into()),
            TargetError::Nul(_) => None,
        }
    }
}

impl Target {
    pub fn resolve(command: &[OsString]) -> Result<Self, TargetError> {
        let first = command.first().ok_or(TargetError::Empty)?;
        let program = if first.as_bytes().contains(&b'/') {
            let path = PathBuf::from(first);
            if !path.is_file() {
                return Err(TargetError::NotFound(first.to_string_lossy().into_owned()));
            }
            path
        } else {
            which::which(first).map_err(|_| TargetError::NotFound(first.to_string_lossy().into_owned()))?
        };
        let cstr = |s: &OsString| CString::new(s.as_bytes()).map_err(|_| TargetError::Nul(s.clone()));
        Ok(Target {
            program_c: cstr(&program.clone().into_os_string())?,
            program,
            argv: command.iter().map(cstr).collect::<Result<_, _>>()?,
            display: command.iter().map(|s| s.to_string_lossy().into_owned()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_path_and_refuses_missing() {
        let t = Target::resolve(&["sh".into(), "-c".into(), "true".into()]).unwrap();
        assert!(t.program.is_absolute());
        assert_eq!(t.display, ["sh", "-c", "true"]);
        assert!(matches!(Target::resolve(&[]), Err(TargetError::Empty)));
        let err = Target::resolve(&["phoebe-no-such-command".into()]).unwrap_err();
        assert_eq!(
            err.to_string().lines().next().unwrap(),
            "command not found: 'phoebe-no-such-command'"
        );
    }
}
