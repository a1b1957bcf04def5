//! The release builds the part measures: host (x86_64, to run) and arm64 (what SAM deploys),
//! each function one package at a time, so that each links only the adapter features it
//! enables (Cargo unifies features across the packages of one build).
//!
//! One after the other, in the workspace's target directory. Side by side (arm64 in a target
//! directory of its own, each build filling the core the other's one-unit LTO link leaves
//! idle) was measured once, on a fresh clone: 1,833 s of wall time for both. One after the
//! other would take about 1,720 s (arm64 alone took 773 s at this profile; host estimated by
//! the 1,250 / 1,021 s ratio of the `opt-level = 3` builds). That run's machine was slower
//! than usual (Python's cold start 770 ms against 302), so the comparison is rough, but it
//! showed no gain, and the simpler build was kept.
//!
//! One `cargo lambda build` of all seven would link two functions at a time (the arm64 build of
//! commit `5d2f721`, alone on an idle machine: 784 s one by one, of which about 200 s are the
//! dependencies; the seven links in one build took 304 s), but the seven's features are then
//! unified, and five bootstraps came out up to 57 KB larger than the ones SAM builds and ships.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The wall time of a build, in seconds, or why it failed.
pub type Built = Result<f64, String>;

/// What to build.
pub struct Plan<'a> {
    /// The workspace.
    pub root: &'a Path,
    /// The function packages.
    pub functions: &'a [String],
    /// Host packages built besides the functions (the bare runtime).
    pub host_extras: &'a [&'a str],
    /// Whether to build the arm64 bootstraps too.
    pub arm64: bool,
}

/// Where `cargo lambda build` puts a function's bootstrap under the target directory.
pub fn bootstrap(target: &Path, function: &str) -> PathBuf {
    target.join("lambda").join(function).join("bootstrap")
}

/// Builds host, then (if asked) arm64; answers each one's wall time. The arm64 build does not
/// run when the host build failed.
pub fn release_builds(plan: &Plan<'_>) -> (Built, Option<Built>) {
    let host = one_by_one(
        plan.functions
            .iter()
            .map(String::as_str)
            .chain(plan.host_extras.iter().copied()),
        |package| run(plan.root, "cargo", &["build", "--release", "-p", package]),
    );
    let arm64 = (plan.arm64 && host.is_ok()).then(|| {
        one_by_one(plan.functions.iter().map(String::as_str), |package| {
            run(
                plan.root,
                "cargo",
                &["lambda", "build", "--release", "--arm64", "-p", package],
            )
        })
    });
    (host, arm64)
}

/// Runs `build` for each package in turn, stopping at the first failure; the summed time.
fn one_by_one<'a>(packages: impl Iterator<Item = &'a str>, build: impl Fn(&str) -> Built) -> Built {
    packages.map(build).sum()
}

/// Runs `program args` in `root` (the virtual environment's tools first on `PATH`) and returns
/// its wall time in seconds.
pub fn run(root: &Path, program: &str, args: &[&str]) -> Built {
    let path = std::env::var("PATH").unwrap_or_default();
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(root)
        .env(
            "PATH",
            format!("{}:{path}", root.join(".venv/bin").display()),
        )
        .stdout(Stdio::null())
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
    fn the_bootstrap_is_where_cargo_lambda_puts_it() {
        assert_eq!(
            bootstrap(Path::new("/w/target"), "order-commands"),
            Path::new("/w/target/lambda/order-commands/bootstrap")
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
