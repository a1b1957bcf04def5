//! `report.md`: the run, a summary of every target, then one table per part, its charts, and
//! what was not measured. The targets table is also what `make bench-readme` copies into the
//! README between [`README_BEGIN`] and [`README_END`].

use std::fmt::Write as _;
use std::path::Path;

use super::Report;
use crate::part::{Figure, Part};

/// The line after which `make bench-readme` writes the targets table.
pub const README_BEGIN: &str = "<!-- bench-report:begin (make bench-readme writes this) -->";
/// The line before which the targets table ends.
pub const README_END: &str = "<!-- bench-report:end -->";

/// A table cell: no line breaks, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A number as people read it: three significant digits, thousands grouped.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if magnitude >= 100.0 || magnitude == 0.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    };
    let text = format!("{value:.decimals$}");
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(i, f)| (i, f));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn value(figure: &Figure) -> String {
    match figure.value {
        Some(v) if figure.unit.is_empty() => number(v),
        Some(v) => format!("{} {}", number(v), figure.unit),
        None => "not measured".to_owned(),
    }
}

fn met(figure: &Figure) -> &'static str {
    match (figure.value, figure.met) {
        (None, _) => "⚠️",
        (Some(_), Some(true)) => "✅",
        (Some(_), Some(false)) => "❌",
        (Some(_), None) => "—",
    }
}

/// The run line and the summary counts.
pub fn header(report: &Report) -> String {
    let run = &report.run;
    let s = &report.summary;
    let commit: String = run.commit.chars().take(10).collect();
    let dirty = if run.dirty {
        " (with uncommitted changes)"
    } else {
        ""
    };
    let load = run
        .machine
        .load_average
        .as_ref()
        .map_or(String::new(), |l| format!(", load average {l}"));
    let memory = run
        .machine
        .memory_gib
        .map_or(String::new(), |m| format!(", {m} GiB"));
    let reassembled = run.reassembled.as_ref().map_or(String::new(), |again| {
        let commit: String = again.commit.chars().take(10).collect();
        format!(" Assembled again at {} on commit `{commit}`.", again.date)
    });
    format!(
        "Run {} on commit `{commit}`{dirty}; {} cores ({}{memory}{load}), {}; {}.{reassembled}\n\n\
         **{} met ✅, {} missed ❌, {} without target —, {} not measured ⚠️; {} part(s) missing.**\n",
        run.date,
        run.machine.cores,
        run.machine.cpu,
        run.machine.platform,
        run.rustc,
        s.met,
        s.missed,
        s.no_target,
        s.not_measured,
        s.missing_parts,
    )
}

fn provenance(part: &Part) -> Option<String> {
    part.measured_at.as_ref().map(|at| {
        let commit = part.commit.as_deref().unwrap_or("unknown commit");
        let commit: String = commit.chars().take(10).collect();
        format!(
            "measured by `make {}` at {at} on commit `{commit}`, not in this run",
            bench_target(&part.part)
        )
    })
}

fn bench_target(part: &str) -> String {
    match part {
        "loop" => "bench-loop".to_owned(),
        other => format!("bench ({other})"),
    }
}

/// Every figure with a target, and every target of a missing part: the headline table.
pub fn targets_table(report: &Report) -> String {
    let mut out =
        String::from("| part | figure | value | target | met |\n| --- | --- | --- | --- | --- |\n");
    for part in &report.parts {
        let when = provenance(part).map_or(String::new(), |p| format!(" ({p})"));
        for figure in part
            .figures
            .iter()
            .filter(|f| f.target.is_some() || f.value.is_none())
        {
            let _ = writeln!(
                out,
                "| {}{} | {} | {} | {} | {} |",
                cell(&part.part),
                cell(&when),
                cell(&figure.label),
                cell(&value(figure)),
                cell(figure.target.as_deref().unwrap_or("—")),
                met(figure),
            );
        }
    }
    for missing in &report.missing {
        for target in &missing.targets {
            let _ = writeln!(
                out,
                "| {} | part missing: not measured in this run | — | {} | ⚠️ |",
                cell(&missing.part),
                cell(target),
            );
        }
    }
    for bad in &report.unreadable {
        let _ = writeln!(
            out,
            "| {} | unreadable: {} | — | — | ⚠️ |",
            cell(&bad.file),
            cell(&bad.error)
        );
    }
    out
}

fn part_section(out: &mut String, part: &Part, dir: &Path) {
    let _ = writeln!(out, "## {} (`{}`)\n", part.title, part.part);
    if let Some(p) = provenance(part) {
        let _ = writeln!(out, "_{p}._\n");
    }
    out.push_str(
        "| figure | value | target | peer | met | note |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for f in &part.figures {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&f.label),
            cell(&value(f)),
            cell(f.target.as_deref().unwrap_or("—")),
            cell(f.peer.as_deref().unwrap_or("—")),
            met(f),
            cell(f.note.as_deref().unwrap_or("")),
        );
    }
    if part.figures.is_empty() {
        out.push_str("| (no figures) | not measured | — | — | ⚠️ | the part lists no figure |\n");
    }
    out.push('\n');
    for chart in &part.charts {
        if dir.join(&chart.file).is_file() {
            let _ = writeln!(out, "![{}]({})\n", chart.title, chart.file);
        } else {
            let _ = writeln!(
                out,
                "Chart _{}_: `{}` is missing.\n",
                chart.title, chart.file
            );
        }
    }
}

/// The whole `report.md`; chart links are relative to `dir`, where it is written.
pub fn render(report: &Report, dir: &Path) -> String {
    let mut out = String::from("# FTGO bench report\n\n");
    out.push_str(&header(report));
    out.push_str(
        "\n✅ met · ❌ missed · — no target (context) · ⚠️ not measured (the note or the part says why)\n\n\
         ## Targets\n\n",
    );
    out.push_str(&targets_table(report));
    out.push('\n');
    for part in &report.parts {
        part_section(&mut out, part, dir);
    }
    if !report.missing.is_empty() || !report.unreadable.is_empty() {
        out.push_str("## Not measured in this run\n\n");
        for m in &report.missing {
            let _ = writeln!(
                out,
                "- **{}** (`{}`): no `parts/{}.json`; written by {}. Targets left unmeasured:",
                m.title, m.part, m.part, m.producer
            );
            for t in &m.targets {
                let _ = writeln!(out, "  - {t}");
            }
        }
        for bad in &report.unreadable {
            let _ = writeln!(out, "- `{}` could not be read: {}", bad.file, bad.error);
        }
        out.push('\n');
    }
    out
}

/// `readme` with the text between the markers replaced by the run line and targets table;
/// `None` when the markers are not there.
pub fn readme_with(readme: &str, report: &Report) -> Option<String> {
    let begin = readme.find(README_BEGIN)? + README_BEGIN.len();
    let end = readme[begin..].find(README_END)? + begin;
    let table = format!("\n{}\n{}\n", header(report), targets_table(report));
    Some(format!("{}{table}{}", &readme[..begin], &readme[end..]))
}
