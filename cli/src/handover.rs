//! `ftgo run`, `provision`, `gateway`, `bridge` and `lambda-config`: the local stack's commands,
//! handed over to its own binary, [`LOCAL_BINARY`] (`ftgo-infra`), as git and cargo hand over to
//! external subcommands — so that `ftgo` links no emulator code and `ftgo run` stays the one
//! command.
//!
//! Where it is looked for: [`LOCAL_BINARY_ENV`] when set (a path), else next to the running
//! `ftgo` (as `cargo build`, `cargo install` and `make run` put them), else on `PATH`. On Unix the
//! `ftgo` process becomes `ftgo-local` (`exec`): signals, standard input and the exit status are
//! the local stack's own.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The local stack's binary (the `ftgo-infra` crate's).
pub const LOCAL_BINARY: &str = "ftgo-local";

/// Set to a path to use that `ftgo-local` instead of looking for one.
pub const LOCAL_BINARY_ENV: &str = "FTGO_LOCAL";

/// How to get [`LOCAL_BINARY`] when it is missing.
pub const INSTALL_HINT: &str = "install it with `cargo install --path infra` from the repository \
     (next to `cargo install --path cli`), or run the stack with `make run`";

/// The `ftgo-local` to hand over to: `explicit` ([`LOCAL_BINARY_ENV`]) when given, else the one
/// in `beside` (the directory of the running `ftgo`), else the first on `path` (`PATH`).
pub fn locate(
    explicit: Option<&OsStr>,
    beside: Option<&Path>,
    path: Option<&OsStr>,
) -> Result<PathBuf, String> {
    if let Some(explicit) = explicit.filter(|e| !e.is_empty()) {
        let explicit = PathBuf::from(explicit);
        return if is_executable(&explicit) {
            Ok(explicit)
        } else {
            Err(format!(
                "{LOCAL_BINARY_ENV}={} is not an executable file",
                explicit.display()
            ))
        };
    }
    let name = format!("{LOCAL_BINARY}{}", std::env::consts::EXE_SUFFIX);
    let beside_ftgo = beside.map(|dir| dir.join(&name));
    if let Some(found) = beside_ftgo.iter().find(|p| is_executable(p)) {
        return Ok(found.clone());
    }
    let on_path = path
        .map(|p| std::env::split_paths(p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(found) = on_path
        .iter()
        .map(|dir| dir.join(&name))
        .find(|p| is_executable(p))
    {
        return Ok(found);
    }
    let looked = beside_ftgo
        .map(|p| format!("{} nor ", p.display()))
        .unwrap_or_default();
    Err(format!(
        "the local stack's binary `{LOCAL_BINARY}` was found neither at {looked}on PATH; {INSTALL_HINT}"
    ))
}

/// Runs `ftgo-local <command> <args>` in place of this process (Unix), or as a child whose exit
/// status becomes ours. `log` (the `--log` filter given to `ftgo`) is passed on as `FTGO_LOG`.
pub fn hand_over(command: &str, args: &[OsString], log: Option<&str>) -> ExitCode {
    let exe = std::env::current_exe().ok();
    let beside = exe.as_deref().and_then(Path::parent);
    let path = std::env::var_os("PATH");
    let binary = match locate(
        std::env::var_os(LOCAL_BINARY_ENV).as_deref(),
        beside,
        path.as_deref(),
    ) {
        Ok(binary) => binary,
        Err(message) => {
            eprintln!("ftgo {command}: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut child = Command::new(&binary);
    child.arg(command).args(args);
    if let Some(log) = log {
        child.env("FTGO_LOG", log);
    }
    run(child, &binary)
}

#[cfg(unix)]
fn run(mut command: Command, binary: &Path) -> ExitCode {
    use std::os::unix::process::CommandExt as _;
    // Returns only when the exec failed.
    let error = command.exec();
    eprintln!("ftgo: cannot run {}: {error}", binary.display());
    ExitCode::FAILURE
}

#[cfg(not(unix))]
fn run(mut command: Command, binary: &Path) -> ExitCode {
    match command.status() {
        Ok(status) => status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .map_or(ExitCode::FAILURE, ExitCode::from),
        Err(error) => {
            eprintln!("ftgo: cannot run {}: {error}", binary.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used, reason = "a test's set-up stops the test loudly")]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ftgo-handover-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn executable(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let file = dir.join(LOCAL_BINARY);
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        file
    }

    #[test]
    fn the_binary_beside_ftgo_comes_before_the_one_on_the_path() {
        let (beside, on_path) = (dir("beside"), dir("path"));
        let local = executable(&beside);
        let other = executable(&on_path);
        let path = std::env::join_paths([&on_path]).unwrap();
        assert_eq!(locate(None, Some(&beside), Some(&path)), Ok(local.clone()));
        std::fs::remove_file(&local).unwrap();
        assert_eq!(locate(None, Some(&beside), Some(&path)), Ok(other.clone()));
        let explicit = executable(&dir("explicit"));
        assert_eq!(
            locate(Some(explicit.as_os_str()), Some(&beside), Some(&path)),
            Ok(explicit)
        );
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_how_to_install_it() {
        let empty = dir("empty");
        let path = std::env::join_paths([&empty]).unwrap();
        let error = locate(None, Some(&empty), Some(&path)).unwrap_err();
        assert!(error.contains("cargo install --path infra"), "{error}");
        assert!(error.contains("make run"), "{error}");
        let text_file = empty.join("not-executable");
        std::fs::write(&text_file, "").unwrap();
        let error = locate(Some(text_file.as_os_str()), None, None).unwrap_err();
        assert!(error.contains(LOCAL_BINARY_ENV), "{error}");
    }
}
