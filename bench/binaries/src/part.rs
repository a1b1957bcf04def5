//! The part file of `make bench`'s report (the team's part format): figures and charts.

use serde_json::{Value, json};

/// One figure of the part.
#[derive(Debug, Clone)]
pub struct Figure {
    id: String,
    label: String,
    value: Option<f64>,
    unit: String,
    target: Option<String>,
    met: Option<bool>,
    peer: Option<String>,
    note: Option<String>,
}

impl Figure {
    /// A measured value.
    pub fn measured(id: &str, label: &str, value: f64, unit: &str) -> Self {
        Self {
            id: id.to_owned(),
            label: label.to_owned(),
            value: value.is_finite().then_some(value),
            unit: unit.to_owned(),
            target: None,
            met: None,
            peer: None,
            note: None,
        }
    }

    /// A value this run could not measure, and why.
    pub fn missing(id: &str, label: &str, unit: &str, why: &str) -> Self {
        Self {
            value: None,
            note: Some(why.to_owned()),
            ..Self::measured(id, label, f64::NAN, unit)
        }
    }

    /// The target, and whether the value meets it.
    pub fn target(mut self, target: &str, met: bool) -> Self {
        self.target = Some(target.to_owned());
        self.met = self.value.map(|_| met);
        self
    }

    /// What the value is compared with.
    pub fn peer(mut self, peer: &str) -> Self {
        self.peer = Some(peer.to_owned());
        self
    }

    /// How it was measured.
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }

    fn to_json(&self) -> Value {
        let round = |value: f64| (value * 1000.0).round() / 1000.0;
        json!({
            "id": self.id,
            "label": self.label,
            "value": self.value.map(round),
            "unit": self.unit,
            "target": self.target,
            "peer": self.peer,
            "met": self.met,
            "note": self.note,
        })
    }
}

/// A part: its figures and charts.
#[derive(Debug)]
pub struct Part {
    part: String,
    title: String,
    figures: Vec<Figure>,
    charts: Vec<(String, String)>,
}

impl Part {
    /// An empty part.
    pub fn new(part: &str, title: &str) -> Self {
        Self {
            part: part.to_owned(),
            title: title.to_owned(),
            figures: Vec::new(),
            charts: Vec::new(),
        }
    }

    /// Adds a figure (and says it on stderr, as the run goes).
    pub fn push(&mut self, figure: Figure) {
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
        self.figures.push(figure);
    }

    /// Adds a chart (a file under the bench directory).
    pub fn chart(&mut self, file: &str, title: &str) {
        self.charts.push((file.to_owned(), title.to_owned()));
    }

    /// The part file's JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "part": self.part,
            "title": self.title,
            "figures": self.figures.iter().map(Figure::to_json).collect::<Vec<_>>(),
            "charts": self.charts.iter().map(|(file, title)| json!({"file": file, "title": title})).collect::<Vec<_>>(),
        })
    }
}
