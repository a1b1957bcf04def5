//! `bench-loop` (`make bench-loop`): part `loop` — the test loop in minutes, too long to run in
//! `make bench`, so its part is kept between runs and marked with its date and commit.
//!
//! Clones the workspace's committed `HEAD` into `$FTGO_BENCH_DIR/loop-clone` (a fresh clone:
//! no `target/`, `.venv` or `node_modules`), times `bash .ci/run` there as CI runs it
//! (`CI=true`), then makes a one-line change in the domain crate and times `make test` again
//! (warm). Writes `parts/loop.json`; logs go to `$FTGO_BENCH_DIR/loop/`. The clone is removed
//! afterwards unless `--keep`.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use ftgo_bench::part::{Figure, Part, bench_dir, workspace_root};
use ftgo_bench::report::run::now;

/// Issue 18's targets, in minutes.
const CI_TARGET_MIN: f64 = 7.0;
const WARM_TARGET_MIN: f64 = 3.0;
/// Where the loop stood before issue 18 (its text; not measured in this run).
const CI_BEFORE: &str = "last CI before issue 18: 1,399 s = 23.3 min";

/// Runs `program args` in `dir`, output to `log`; answers minutes taken and the exit code.
fn timed(dir: &Path, log: &Path, program: &str, args: &[&str]) -> Result<(f64, i32), String> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CI", "true")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("FTGO_BENCH_DIR")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    Ok((
        started.elapsed().as_secs_f64() / 60.0,
        status.code().unwrap_or(-1),
    ))
}

fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn figure(id: &str, label: &str, run: (f64, i32), target: f64, log: &Path) -> Figure {
    let (minutes, code) = run;
    // The log as the workspace names it (no path outside the repository in a report).
    let root = workspace_root();
    let log = log.strip_prefix(&root).unwrap_or(log);
    let mut f = Figure::new(format!("loop.{id}"), label, minutes, "min")
        .target(&format!("≤ {target} min (issue 18)"), |v| v <= target);
    if code == 0 {
        f.note = Some(format!("passed; log {}", log.display()));
    } else {
        f.met = Some(false);
        f.note = Some(format!("FAILED (exit {code}); log {}", log.display()));
    }
    f
}

fn measure(root: &Path, dir: &Path, keep: bool) -> Result<Part, String> {
    let commit = git(root, &["rev-parse", "HEAD"])?;
    if !git(root, &["status", "--porcelain", "--untracked-files=no"])?.is_empty() {
        eprintln!("bench-loop: uncommitted changes are not in the clone; measuring {commit}");
    }
    let clone = dir.join("loop-clone");
    let logs = dir.join("loop");
    let _ = std::fs::remove_dir_all(&clone);
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let clone_str = clone.display().to_string();
    git(
        root,
        &["clone", "--quiet", "--no-hardlinks", ".", &clone_str],
    )?;
    git(&clone, &["checkout", "--quiet", "--detach", &commit])?;
    let measured_at = now();

    let ci_log = logs.join("ci-run.log");
    eprintln!(
        "bench-loop: bash .ci/run in a fresh clone ({}) …",
        ci_log.display()
    );
    let ci = timed(&clone, &ci_log, "bash", &[".ci/run"])?;
    eprintln!("bench-loop: .ci/run took {:.1} min (exit {})", ci.0, ci.1);

    let lib = clone.join("shared/domain/src/lib.rs");
    let mut text = std::fs::read_to_string(&lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    text.push_str("// bench-loop: a one-line change, to time a warm `make test`.\n");
    std::fs::write(&lib, text).map_err(|e| format!("{}: {e}", lib.display()))?;
    let warm_log = logs.join("make-test-warm.log");
    eprintln!(
        "bench-loop: warm make test after a one-line domain change ({}) …",
        warm_log.display()
    );
    let warm = timed(&clone, &warm_log, "make", &["test"])?;
    eprintln!(
        "bench-loop: warm make test took {:.1} min (exit {})",
        warm.0, warm.1
    );
    if !keep {
        let _ = std::fs::remove_dir_all(&clone);
    }

    let mut part = Part::new(
        "loop",
        "Test loop: `.ci/run` on a fresh clone, warm `make test`",
    );
    part.measured_at = Some(measured_at);
    part.commit = Some(commit);
    part.figures.push(
        figure(
            "ci_fresh",
            "`.ci/run` on a fresh clone",
            ci,
            CI_TARGET_MIN,
            &ci_log,
        )
        .peer(CI_BEFORE),
    );
    part.figures.push(figure(
        "make_test_warm",
        "warm `make test` after a one-line domain change",
        warm,
        WARM_TARGET_MIN,
        &warm_log,
    ));
    Ok(part)
}

fn main() -> ExitCode {
    let keep = std::env::args().skip(1).any(|a| a == "--keep");
    let dir = bench_dir();
    match measure(&workspace_root(), &dir, keep)
        .and_then(|part| part.write(&dir).map_err(|e| e.to_string()))
    {
        Ok(path) => {
            println!("bench-loop: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-loop: {e}");
            ExitCode::FAILURE
        }
    }
}
