//! The assembler: every `parts/*.json` of a bench directory, the run's metadata, and the
//! expected parts that are missing, into `report.json` and `report.md`.
//!
//! Nothing is dropped silently: a part that is missing is listed with the targets it answers
//! for ([`catalogue::EXPECTED`]), a part file that does not parse is listed with its error, a
//! figure without a value shows as not measured, and a part measured outside this run (the
//! test loop) says when and on which commit.

pub mod catalogue;
pub mod markdown;
pub mod run;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::part::Part;
use catalogue::EXPECTED;
pub use run::Run;

/// The assembled report (`report.json`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Where and on what the report was assembled.
    pub run: Run,
    /// Counts over every figure and part.
    pub summary: Summary,
    /// The parts found, expected ones first in catalogue order, then any others by name.
    pub parts: Vec<Part>,
    /// Expected parts with no file in this run, with the targets they answer for.
    pub missing: Vec<Missing>,
    /// Part files that could not be read, and why.
    pub unreadable: Vec<Unreadable>,
}

/// Counts over the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Figures whose target is met.
    pub met: usize,
    /// Figures whose target is missed.
    pub missed: usize,
    /// Measured figures without a target.
    pub no_target: usize,
    /// Figures without a value.
    pub not_measured: usize,
    /// Expected parts with no file, plus unreadable files.
    pub missing_parts: usize,
}

/// An expected part that was not written.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    /// The part's name.
    pub part: String,
    /// Its heading.
    pub title: String,
    /// What should have written it.
    pub producer: String,
    /// The targets left unmeasured.
    pub targets: Vec<String>,
}

/// A part file that could not be read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unreadable {
    /// The file, relative to the bench directory.
    pub file: String,
    /// Why.
    pub error: String,
}

/// The report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Encoding failed (never for these types).
    #[error("cannot encode the report: {0}")]
    Json(#[from] serde_json::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads every `parts/*.json` under `dir`: the parts that parse, and the files that do not.
pub fn read_parts(dir: &Path) -> (Vec<Part>, Vec<Unreadable>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("parts"))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut parts = Vec::new();
    let mut unreadable = Vec::new();
    for path in files {
        let file = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        let read = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<Part>(&text).map_err(|e| e.to_string()));
        match read {
            Ok(part) => {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if part.part == stem {
                    parts.push(part);
                } else {
                    unreadable.push(Unreadable {
                        file,
                        error: format!("names part `{}`, not `{stem}`", part.part),
                    });
                }
            }
            Err(error) => unreadable.push(Unreadable { file, error }),
        }
    }
    (parts, unreadable)
}

/// Assembles the report from the parts found, in catalogue order.
pub fn assemble(run: Run, mut parts: Vec<Part>, unreadable: Vec<Unreadable>) -> Report {
    let rank = |name: &str| {
        EXPECTED
            .iter()
            .position(|e| e.part == name)
            .unwrap_or(EXPECTED.len())
    };
    parts.sort_by(|a, b| (rank(&a.part), &a.part).cmp(&(rank(&b.part), &b.part)));
    let missing: Vec<Missing> = EXPECTED
        .iter()
        .filter(|e| !parts.iter().any(|p| p.part == e.part))
        .map(|e| Missing {
            part: e.part.to_owned(),
            title: e.title.to_owned(),
            producer: e.producer.to_owned(),
            targets: e.targets.iter().map(|t| (*t).to_owned()).collect(),
        })
        .collect();
    let mut summary = Summary {
        missing_parts: missing.len() + unreadable.len(),
        ..Summary::default()
    };
    for figure in parts.iter().flat_map(|p| &p.figures) {
        match (figure.value, figure.met) {
            (None, _) => summary.not_measured += 1,
            (Some(_), Some(true)) => summary.met += 1,
            (Some(_), Some(false)) => summary.missed += 1,
            (Some(_), None) => summary.no_target += 1,
        }
    }
    Report {
        run,
        summary,
        parts,
        missing,
        unreadable,
    }
}

/// Writes `report.json` and `report.md` into `dir`; answers their paths.
pub fn write(dir: &Path, report: &Report) -> Result<(PathBuf, PathBuf), ReportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)?).map_err(io(&json))?;
    let md = dir.join("report.md");
    std::fs::write(&md, markdown::render(report, dir)).map_err(io(&md))?;
    Ok((json, md))
}

#[cfg(test)]
mod tests;
