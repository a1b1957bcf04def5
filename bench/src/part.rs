//! The part format: what one measurement writes for the report (`parts/<part>.json`).
//!
//! ```json
//! { "part": "cold_start", "title": "Cold start (exec → first Runtime API poll)",
//!   "figures": [ { "id": "cold_start.order-commands", "label": "order-commands p50",
//!                  "value": 3.1, "unit": "ms", "target": "≤ 4.8 ms (2 × bare)",
//!                  "peer": "bare lambda_runtime 2.4 ms", "met": true, "note": "21 starts" } ],
//!   "charts": [ { "file": "charts/cold_start.svg", "title": "..." } ] }
//! ```
//!
//! `value` is `null` when a figure could not be measured (its `note` says why); `met` is `null`
//! when the figure has no target. A part measured outside `make bench` (the test loop) carries
//! `measuredAt` and `commit`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The environment variable naming the bench directory (default `target/bench` in the workspace).
pub const BENCH_DIR_ENV: &str = "FTGO_BENCH_DIR";

/// One measurement's contribution to the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// The part's name; also its file name (`parts/<part>.json`).
    pub part: String,
    /// A heading for people.
    pub title: String,
    /// The measured figures, in the order the report shows them.
    #[serde(default)]
    pub figures: Vec<Figure>,
    /// Charts drawn by the producer, relative to the bench directory.
    #[serde(default)]
    pub charts: Vec<Chart>,
    /// When it was measured (RFC 3339), for a part measured outside `make bench`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_at: Option<String>,
    /// The commit it was measured on, for a part measured outside `make bench`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// One measured number beside its target and peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Figure {
    /// A stable id, `<part>.<what>`.
    pub id: String,
    /// What it is, for people.
    pub label: String,
    /// The measurement; `None` when it could not be measured (the note says why).
    #[serde(default)]
    pub value: Option<f64>,
    /// The unit of `value` (`ms`, `events/s`, `MiB`, ...).
    #[serde(default)]
    pub unit: String,
    /// The target, as people read it (`≤ 0.5 s`); `None` when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What it compares with (a floor, another runtime), as people read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Whether the target is met; `None` without a target (or without a value).
    #[serde(default)]
    pub met: Option<bool>,
    /// How it was measured, or why it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An SVG chart of a part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// The file, relative to the bench directory (`charts/<name>.svg`).
    pub file: String,
    /// What it shows.
    pub title: String,
}

/// A part that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The file system refused.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The part does not serialise (never for these types).
    #[error("cannot encode the part: {0}")]
    Json(#[from] serde_json::Error),
}

impl Figure {
    /// A measured figure without target, peer or note.
    pub fn new(id: impl Into<String>, label: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            value: Some(value),
            unit: unit.to_owned(),
            target: None,
            peer: None,
            met: None,
            note: None,
        }
    }

    /// A figure that could not be measured, and why.
    pub fn not_measured(id: impl Into<String>, label: impl Into<String>, why: &str) -> Self {
        Self {
            value: None,
            note: Some(why.to_owned()),
            ..Self::new(id, label, 0.0, "")
        }
    }

    /// With a target: `met` is whether the value passes `check` (`None` without a value).
    pub fn target(mut self, target: &str, check: impl Fn(f64) -> bool) -> Self {
        self.target = Some(target.to_owned());
        self.met = self.value.map(check);
        self
    }

    /// With a peer to compare with.
    pub fn peer(mut self, peer: &str) -> Self {
        self.peer = Some(peer.to_owned());
        self
    }

    /// With a note on how it was measured.
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }
}

impl Part {
    /// An empty part.
    pub fn new(part: &str, title: &str) -> Self {
        Self {
            part: part.to_owned(),
            title: title.to_owned(),
            figures: Vec::new(),
            charts: Vec::new(),
            measured_at: None,
            commit: None,
        }
    }

    /// Writes `parts/<part>.json` under `dir` (see [`bench_dir`]); answers the file.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, PartError> {
        let parts = dir.join("parts");
        std::fs::create_dir_all(&parts).map_err(|source| PartError::Io {
            path: parts.clone(),
            source,
        })?;
        let path = parts.join(format!("{}.json", self.part));
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, json).map_err(|source| PartError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The bench directory: `$FTGO_BENCH_DIR`, else `target/bench` in the workspace.
pub fn bench_dir() -> PathBuf {
    std::env::var_os(BENCH_DIR_ENV)
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| workspace_root().join("target/bench"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brief_s_example_part_reads() {
        let json = r#"{ "part": "cold_start", "title": "Cold start",
          "figures": [ { "id": "cold_start.order-commands", "label": "order-commands p50",
                         "value": 3.1, "unit": "ms", "target": "≤ 4.8 ms (2 × bare)",
                         "peer": "bare 2.4 ms", "met": true, "note": "21 starts" },
                       { "id": "cold_start.python", "label": "python", "value": null,
                         "unit": "ms", "met": null, "note": "no python" } ],
          "charts": [ { "file": "charts/cold_start.svg", "title": "t" } ] }"#;
        let part: Part = serde_json::from_str(json).expect("reads");
        assert_eq!(part.figures.len(), 2);
        assert_eq!(part.figures[0].met, Some(true));
        assert_eq!(part.figures[1].value, None);
        assert_eq!(part.charts[0].file, "charts/cold_start.svg");
    }

    #[test]
    fn a_target_decides_met_only_for_a_measured_value() {
        let low = Figure::new("x.a", "a", 0.4, "s").target("≤ 0.5 s", |v| v <= 0.5);
        let high = Figure::new("x.b", "b", 0.6, "s").target("≤ 0.5 s", |v| v <= 0.5);
        let none = Figure::not_measured("x.c", "c", "no stack").target("≤ 0.5 s", |v| v <= 0.5);
        assert_eq!(
            (low.met, high.met, none.met),
            (Some(true), Some(false), None)
        );
    }

    #[test]
    fn a_written_part_reads_back() {
        let dir = std::env::temp_dir().join(format!("ftgo-bench-part-{}", std::process::id()));
        let mut part = Part::new("demo", "Demo");
        part.figures.push(Figure::new("demo.a", "a", 1.0, "ms"));
        let path = part.write(&dir).expect("writes");
        let back: Part =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("parses");
        std::fs::remove_dir_all(&dir).expect("cleans up");
        assert_eq!(back, part);
    }
}
