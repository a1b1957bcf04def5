//! `make bench`'s `binaries` part (issue 17): for each function (`functions/*`), release builds,
//! all measured in this run:
//!
//! * cold start — exec → first `GET /2018-06-01/runtime/invocation/next` on a fake Runtime API
//!   on loopback, `--starts` starts each (default 21), beside a bare `lambda_runtime` binary
//!   (`bench/bare-lambda`) and Python 3.11 + boto3 (`.venv/bin/python`, one DynamoDB client made
//!   before the poll, as a handler module does at import);
//! * the files each opens before that first poll (`strace -f -e trace=openat`, the loader's
//!   libraries and `/proc`, `/sys`, `/dev` left out): none is the target;
//! * stripped size, host (x86_64, `cargo build --release -p <fn>`, one package at a time so
//!   that each links only the adapter features it enables) and arm64 (`cargo lambda build
//!   --release --arm64`, what `make build` and SAM deploy: [`build`]; `--no-arm64` skips it);
//! * peak RSS (`VmHWM`) over one invocation, with moto server behind the SDK: a create on
//!   `order-commands`, a 100-record stream batch on `order-history-projector`;
//! * how long those builds took.
//!
//! Writes `$FTGO_BENCH_DIR/parts/binaries.json` (default `target/bench`) and
//! `charts/binaries.svg`. Run: `cargo run -p ftgo-bench-binaries -- [--starts N] [--no-arm64]
//! [--no-build] [--only fn1,fn2]` (`--no-build` measures the binaries `target/` holds; `--only`
//! narrows the functions).

mod build;
mod chart;
mod events;
mod measure;
mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ftgo_tests::Emulator;

use crate::measure::Program;
use ftgo_bench::part::{Chart, Figure, Part};

/// The bare runtime's package and binary.
const BARE: &str = "bare-lambda";
/// The arm64 size target (issue 17).
const ARM64_TARGET_BYTES: f64 = 8.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let starts = args
        .iter()
        .position(|a| a == "--starts")
        .and_then(|i| args.get(i + 1)?.parse::<usize>().ok())
        .unwrap_or(21);
    let arm64 = !args.iter().any(|a| a == "--no-arm64");
    let build = !args.iter().any(|a| a == "--no-build");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').map(str::to_owned).collect());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out = std::env::var_os("FTGO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("bench"));
    std::fs::create_dir_all(out.join("parts"))?;
    std::fs::create_dir_all(out.join("charts"))?;
    let scratch = out.join("binaries");
    std::fs::create_dir_all(&scratch)?;
    let functions: Vec<String> = functions(&root)?
        .into_iter()
        .filter(|f| only.as_ref().is_none_or(|only| only.contains(f)))
        .collect();
    let mut part = Part::new(
        "binaries",
        "Lean binaries: cold start, init reads, size, peak RSS",
    );

    // Builds: host, then arm64, one package at a time (build.rs).
    let (host_build, arm64_build) = if build {
        build::release_builds(&build::Plan {
            root: &root,
            functions: &functions,
            host_extras: &[BARE],
            arm64,
        })
    } else {
        (Ok(0.0), None)
    };
    let host_build = host_build?;
    let host_figure = if build {
        Figure::new(
            "binaries.build.host",
            "release build, host x86_64 (functions + bare)",
            host_build,
            "s",
        )
        .note("wall time in this run, one `cargo build --release -p` per package")
    } else {
        not_measured(
            "binaries.build.host",
            "release build, host x86_64",
            "s",
            "not built in this run (--no-build)",
        )
    };
    push(&mut part, host_figure);
    push(
        &mut part,
        match &arm64_build {
            Some(Ok(seconds)) => Figure::new(
                "binaries.build.arm64",
                "release build, arm64 (cargo lambda, 7 functions)",
                *seconds,
                "s",
            )
            .note(
                "wall time in this run, one `cargo lambda build --release --arm64 -p` per function, after the host build",
            ),
            Some(Err(error)) => not_measured(
                "binaries.build.arm64",
                "release build, arm64 (cargo lambda)",
                "s",
                &format!("build failed: {error}"),
            ),
            None => not_measured(
                "binaries.build.arm64",
                "release build, arm64 (cargo lambda)",
                "s",
                "not built in this run (--no-arm64 or --no-build)",
            ),
        },
    );

    // moto behind the SDK: the functions' environment as template.yaml sets it.
    let moto = Emulator::start_moto().await?;
    // `--binaries <dir>` measures binaries elsewhere (e.g. `target/debug` for a smoke run).
    let release = args
        .iter()
        .position(|a| a == "--binaries")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| target.join("release"), PathBuf::from);
    let program = |name: &str| Program {
        name: name.to_owned(),
        argv: vec![release.join(name).display().to_string()],
        env: moto.stack().function_env(name),
    };
    let bare = Program {
        name: BARE.to_owned(),
        argv: vec![release.join(BARE).display().to_string()],
        env: moto.stack().function_env("order-commands"),
    };

    // Cold starts, the peers first.
    let bare_times = measure::cold_starts(&bare, starts).await?;
    let bare_p50 = measure::percentile(&bare_times, 50.0);
    push(
        &mut part,
        Figure::new(
            "binaries.cold_start.bare",
            "bare lambda_runtime p50",
            bare_p50,
            "ms",
        )
        .note(&spread(&bare_times)),
    );
    let python = python(&root, &moto.stack().function_env("order-commands"));
    let python_p50 = match &python {
        Some(python) => match measure::cold_starts(python, starts).await {
            Ok(times) => {
                let p50 = measure::percentile(&times, 50.0);
                push(
                    &mut part,
                    Figure::new(
                        "binaries.cold_start.python",
                        "Python 3.11 + boto3 p50",
                        p50,
                        "ms",
                    )
                    .note(&format!(
                        "{}; `import boto3`, one DynamoDB client, then the poll",
                        spread(&times)
                    )),
                );
                Some(p50)
            }
            Err(error) => {
                push(
                    &mut part,
                    not_measured(
                        "binaries.cold_start.python",
                        "Python 3.11 + boto3 p50",
                        "ms",
                        &error,
                    ),
                );
                None
            }
        },
        None => {
            push(
                &mut part,
                not_measured(
                    "binaries.cold_start.python",
                    "Python 3.11 + boto3 p50",
                    "ms",
                    "no .venv/bin/python with boto3 (make .venv)",
                ),
            );
            None
        }
    };
    let mut chart_rows = vec![(BARE.to_owned(), bare_p50)];
    for function in &functions {
        let times = measure::cold_starts(&program(function), starts).await?;
        let p50 = measure::percentile(&times, 50.0);
        chart_rows.push((function.clone(), p50));
        let faster = python_p50.map(|python| python / p50);
        let peer = match (python_p50, faster) {
            (Some(python), Some(faster)) => format!(
                "bare lambda_runtime {bare_p50:.1} ms; Python 3.11 + boto3 {python:.0} ms ({faster:.0}× slower)"
            ),
            _ => format!("bare lambda_runtime {bare_p50:.1} ms; Python + boto3 not measured"),
        };
        push(
            &mut part,
            Figure::new(
                format!("binaries.cold_start.{function}"),
                format!("{function} cold start p50"),
                p50,
                "ms",
            )
            .target(
                &format!(
                    "≤ {:.1} ms (2 × bare) and ≥ 60 × faster than Python + boto3",
                    2.0 * bare_p50
                ),
                |p50| p50 <= 2.0 * bare_p50 && faster.is_some_and(|f| f >= 60.0),
            )
            .peer(&peer)
            .note(&format!("{}; release x86_64", spread(&times))),
        );
    }

    // Files read before the first poll.
    for function in &functions {
        let id = format!("binaries.init_reads.{function}");
        let label = format!("{function} files opened before the first poll");
        push(
            &mut part,
            match measure::files_before_first_poll(&program(function), &scratch).await {
                Ok(files) => {
                    let shown: Vec<&str> = files.iter().take(3).map(String::as_str).collect();
                    let note = if files.is_empty() {
                        "strace -f -e trace=openat; loader libraries, /proc, /sys, /dev left out"
                            .to_owned()
                    } else {
                        format!("e.g. {}", shown.join(", "))
                    };
                    Figure::new(&id, &label, files.len() as f64, "files")
                        .target("0 (no disk read before the first poll)", |n| n == 0.0)
                        .note(&note)
                }
                Err(error) => not_measured(&id, &label, "files", &format!("strace: {error}")),
            },
        );
    }

    // Sizes.
    let bare_size = size(&release.join(BARE));
    for function in &functions {
        let host = size(&release.join(function));
        push(
            &mut part,
            match host {
                Some(bytes) => Figure::new(
                    format!("binaries.size.host.{function}"),
                    format!("{function} stripped, x86_64"),
                    bytes / MIB,
                    "MiB",
                )
                .peer(&bare_size.map_or("bare not built".to_owned(), |bare| {
                    format!("bare lambda_runtime {:.2} MiB", bare / MIB)
                })),
                None => not_measured(
                    &format!("binaries.size.host.{function}"),
                    &format!("{function} stripped, x86_64"),
                    "MiB",
                    "not built",
                ),
            },
        );
        let id = format!("binaries.size.arm64.{function}");
        let label = format!("{function} bootstrap, arm64");
        let bootstrap = build::bootstrap(&target, function);
        push(
            &mut part,
            match (&arm64_build, size(&bootstrap)) {
                (Some(Ok(_)), Some(bytes)) => Figure::new(&id, &label, bytes / MIB, "MiB")
                    .target("≤ 8 MiB", |mib| mib * MIB <= ARM64_TARGET_BYTES)
                    .note("cargo lambda build --release --arm64, stripped"),
                (Some(Err(error)), _) => {
                    not_measured(&id, &label, "MiB", &format!("arm64 build failed: {error}"))
                }
                // `--no-build`: the bootstrap `cargo lambda build` left in target/, said so.
                (None, Some(bytes)) if !build && arm64 => {
                    Figure::new(&id, &label, bytes / MIB, "MiB")
                        .target("≤ 8 MiB", |mib| mib * MIB <= ARM64_TARGET_BYTES)
                        .note("cargo lambda build --release --arm64, stripped; built before this run (--no-build)")
                }
                (None, _) => not_measured(
                    &id,
                    &label,
                    "MiB",
                    "not built in this run (--no-arm64 or --no-build)",
                ),
                (Some(Ok(_)), None) => {
                    not_measured(&id, &label, "MiB", "no bootstrap after the build")
                }
            },
        );
    }

    // Peak RSS over one invocation.
    let invocations = [
        (
            "order-commands",
            "a create",
            events::create(&root)?,
            r#""statusCode":201"#,
        ),
        (
            "order-history-projector",
            "a 100-record stream batch",
            events::stream_batch(&root, 100)?,
            r#""batchItemFailures":[]"#,
        ),
    ];
    for (function, what, event, success) in invocations {
        let id = format!("binaries.rss.{function}");
        let label = format!("{function} peak RSS, {what}");
        push(
            &mut part,
            match measure::one_invocation(&program(function), event).await {
                Ok((answer, kib)) if answer.replace(' ', "").contains(success) => {
                    Figure::new(&id, &label, kib as f64 / 1024.0, "MiB")
                        .note("VmHWM after the answer, moto server behind the SDK")
                }
                Ok((answer, _)) => not_measured(
                    &id,
                    &label,
                    "MiB",
                    &format!(
                        "unexpected answer: {}",
                        answer.chars().take(200).collect::<String>()
                    ),
                ),
                Err(error) => not_measured(&id, &label, "MiB", &error),
            },
        );
    }

    let chart = out.join("charts/binaries.svg");
    std::fs::write(&chart, chart::cold_starts(&chart_rows, 2.0 * bare_p50))?;
    part.charts.push(Chart {
        file: "charts/binaries.svg".to_owned(),
        title: "Cold start p50, exec → first Runtime API poll (ms)".to_owned(),
    });
    let path = part.write(&out)?;
    eprintln!("binaries: wrote {}", path.display());
    Ok(())
}

/// The Lambda packages: the directories of `functions/`, sorted.
fn functions(root: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("functions"))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Python 3.11 with boto3, from the repository's virtual environment, when it is there.
fn python(root: &Path, env: &BTreeMap<String, String>) -> Option<Program> {
    let python = root.join(".venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    let script = "import os, urllib.request, boto3\n\
                  client = boto3.client('dynamodb')\n\
                  urllib.request.urlopen('http://%s/2018-06-01/runtime/invocation/next' % os.environ['AWS_LAMBDA_RUNTIME_API'])\n";
    // Lambda sets both AWS_REGION and AWS_DEFAULT_REGION in every runtime (its reserved
    // variables); boto3 reads only the second.
    let mut env = env.clone();
    if let Some(region) = env.get("AWS_REGION").cloned() {
        env.entry("AWS_DEFAULT_REGION".to_owned()).or_insert(region);
    }
    ok.then(|| Program {
        name: "python-boto3".to_owned(),
        argv: vec![
            python.display().to_string(),
            "-c".to_owned(),
            script.to_owned(),
        ],
        env,
    })
}

/// A file's size in bytes, when it exists.
fn size(path: &Path) -> Option<f64> {
    std::fs::metadata(path).ok().map(|m| m.len() as f64)
}

/// The spread of a set of start times, for a figure's note.
fn spread(times: &[f64]) -> String {
    format!(
        "{} starts, min {:.1} ms, p90 {:.1} ms",
        times.len(),
        measure::percentile(times, 0.0),
        measure::percentile(times, 90.0)
    )
}

/// A figure that could not be measured in `unit`, and why.
fn not_measured(id: &str, label: &str, unit: &str, why: &str) -> Figure {
    Figure {
        unit: unit.to_owned(),
        ..Figure::not_measured(id, label, why)
    }
}

/// Adds `figure` to `part`, and says it on the terminal as it is measured.
fn push(part: &mut Part, figure: Figure) {
    eprintln!(
        "binaries: {} = {} {}{}",
        figure.label,
        figure.value.map_or("-".to_owned(), |v| format!("{v:.2}")),
        figure.unit,
        figure
            .note
            .as_ref()
            .map_or(String::new(), |n| format!(" ({n})"))
    );
    part.figures.push(figure);
}
