//! The release builds the part measures: host (x86_64, to run) and arm64 (what SAM deploys),
//! each function one package at a time, so that each links only the adapter features it
//! enables (Cargo unifies features across the packages of one build).
//!
//! The two run side by side, the arm64 one in a target directory of its own
//! ([`arm64_target_dir`]): the release profile (fat LTO, one codegen unit) ends each function
//! with a link on one core, and a second build in the same target directory would wait for the
//! first one's lock. Side by side, each fills the core the other leaves idle.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The wall time of a build, in seconds, or why it failed.
pub type Built = Result<f64, String>;

/// What to build.
pub struct Plan<'a> {
    /// The workspace.
    pub root: &'a Path,
    /// The workspace's target directory (the host build's).
    pub target: &'a Path,
    /// The function packages.
    pub functions: &'a [String],
    /// Host packages built besides the functions (the bare runtime).
    pub host_extras: &'a [&'a str],
    /// Whether to build the arm64 bootstraps too.
    pub arm64: bool,
}

/// The arm64 build's own target directory under the workspace's `target`.
pub fn arm64_target_dir(target: &Path) -> PathBuf {
    target.join("arm64")
}

/// Where `cargo lambda build` puts a function's bootstrap in the arm64 target directory.
pub fn bootstrap(target: &Path, function: &str) -> PathBuf {
    arm64_target_dir(target)
        .join("lambda")
        .join(function)
        .join("bootstrap")
}

/// Builds host and (if asked) arm64 side by side; answers each one's wall time.
pub fn release_builds(plan: &Plan<'_>) -> (Built, Option<Built>) {
    std::thread::scope(|scope| {
        let arm64 = plan.arm64.then(|| {
            scope.spawn(|| {
                let dir = arm64_target_dir(plan.target);
                one_by_one(plan.functions.iter().map(String::as_str), |package| {
                    run(
                        plan.root,
                        Some(&dir),
                        "cargo",
                        &["lambda", "build", "--release", "--arm64", "-p", package],
                    )
                })
            })
        });
        let host = one_by_one(
            plan.functions
                .iter()
                .map(String::as_str)
                .chain(plan.host_extras.iter().copied()),
            |package| {
                run(
                    plan.root,
                    None,
                    "cargo",
                    &["build", "--release", "-p", package],
                )
            },
        );
        let arm64 = arm64.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err("the arm64 build's thread panicked".to_owned()))
        });
        (host, arm64)
    })
}

/// Runs `build` for each package in turn, stopping at the first failure; the summed time.
fn one_by_one<'a>(packages: impl Iterator<Item = &'a str>, build: impl Fn(&str) -> Built) -> Built {
    packages.map(build).sum()
}

/// Runs `program args` in `root` (the virtual environment's tools first on `PATH`, the target
/// directory `target_dir` if given) and returns its wall time in seconds.
pub fn run(root: &Path, target_dir: Option<&Path>, program: &str, args: &[&str]) -> Built {
    let path = std::env::var("PATH").unwrap_or_default();
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(root)
        .env(
            "PATH",
            format!("{}:{path}", root.join(".venv/bin").display()),
        )
        .stdout(Stdio::null());
    if let Some(dir) = target_dir {
        command.env("CARGO_TARGET_DIR", dir);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !status.success() {
        return Err(format!("{program} {} failed: {status}", args.join(" ")));
    }
    Ok(started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arm64_build_has_a_target_directory_of_its_own() {
        let target = Path::new("/w/target");
        assert_eq!(arm64_target_dir(target), Path::new("/w/target/arm64"));
        assert_eq!(
            bootstrap(target, "order-commands"),
            Path::new("/w/target/arm64/lambda/order-commands/bootstrap")
        );
    }

    #[test]
    fn builds_one_by_one_stop_at_the_first_failure_and_sum_the_rest() {
        let built = std::cell::RefCell::new(Vec::new());
        let sum = one_by_one(["a", "b"].into_iter(), |p| {
            built.borrow_mut().push(p.to_owned());
            Ok(1.5)
        });
        assert_eq!(sum, Ok(3.0));
        built.borrow_mut().clear();
        let failed = one_by_one(["a", "b", "c"].into_iter(), |p| {
            built.borrow_mut().push(p.to_owned());
            if p == "b" {
                Err("b failed".to_owned())
            } else {
                Ok(1.0)
            }
        });
        assert_eq!(failed, Err("b failed".to_owned()));
        assert_eq!(*built.borrow(), ["a", "b"]);
    }
}
