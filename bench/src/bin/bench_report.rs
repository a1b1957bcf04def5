//! `bench-report`: the last step of `make bench`. Reads `$FTGO_BENCH_DIR/parts/*.json` (default
//! `target/bench`), writes `report.json` and `report.md` beside them, and prints the targets.
//!
//! `--timings <file>` first makes the `make_bench` part from the Makefile's timings of the run
//! ([`ftgo_bench::timing`]); `--readme <README.md>` also writes the targets table between the
//! README's bench-report markers (`make bench-readme`).
//!
//! Without `--timings` the parts are those of an earlier run: the report keeps that run's date,
//! commit and machine (from the `report.json` already there) and says when it was assembled
//! again, so that adding the `loop` part later does not date the run anew.

use std::path::PathBuf;
use std::process::ExitCode;

use ftgo_bench::part::{bench_dir, workspace_root};
use ftgo_bench::report::{self, Run, markdown};
use ftgo_bench::timing::Timings;

const USAGE: &str = "usage: bench-report [--timings <file>] [--readme README.md]";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut readme, mut timings) = (None, None);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--readme" => &mut readme,
            "--timings" => &mut timings,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
        let Some(path) = args.next() else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        *slot = Some(PathBuf::from(path));
    }
    let dir = bench_dir();
    let timings_given = timings.is_some();
    if let Some(path) = timings {
        let written = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| Timings::parse(&text).map_err(|e| e.to_string()))
            .and_then(|timings| timings.part().write(&dir).map_err(|e| e.to_string()));
        if let Err(error) = written {
            eprintln!("bench-report: {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let (parts, unreadable) = report::read_parts(&dir);
    // The end of `make bench` (`--timings`) is the run; any later assembly of the same parts
    // keeps that run's date, commit and machine, and says when it was assembled again.
    let here = Run::here(&workspace_root());
    let run = if timings_given {
        here
    } else {
        Run::of_report(&dir, &here).unwrap_or(here)
    };
    let report = report::assemble(run, parts, unreadable);
    match report::write(&dir, &report) {
        Ok((json, md)) => println!("bench report: {} and {}", json.display(), md.display()),
        Err(error) => {
            eprintln!("bench-report: {error}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "{}\n{}",
        markdown::header(&report),
        markdown::targets_table(&report)
    );
    if let Some(path) = readme {
        let updated = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                markdown::readme_with(&text, &report).ok_or_else(|| {
                    format!(
                        "no `{}` … `{}` markers",
                        markdown::README_BEGIN,
                        markdown::README_END
                    )
                })
            })
            .and_then(|text| std::fs::write(&path, text).map_err(|e| e.to_string()));
        match updated {
            Ok(()) => println!("targets table written into {}", path.display()),
            Err(error) => {
                eprintln!("bench-report: {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
