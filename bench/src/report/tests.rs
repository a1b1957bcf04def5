use super::*;
use crate::part::{Chart, Figure};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ftgo-bench-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn lag_part() -> Part {
    let mut part = Part::new("local_lag", "Local lag: command answer → view");
    part.figures
        .push(Figure::new("local_lag.p99", "p99", 0.42, "s").target("≤ 0.5 s", |v| v <= 0.5));
    part.figures
        .push(Figure::new("local_lag.p50", "p50", 0.2, "s"));
    part.figures
        .push(Figure::new("local_lag.max", "max", 0.9, "s").target("≤ 0.5 s", |v| v <= 0.5));
    part
}

fn md(dir: &Path) -> String {
    let (parts, unreadable) = read_parts(dir);
    let report = assemble(Run::default(), parts, unreadable);
    write(dir, &report).expect("writes");
    std::fs::read_to_string(dir.join("report.md")).expect("report.md")
}

#[test]
fn a_missing_part_is_reported_with_every_target_it_answers_for() {
    let dir = scratch("missing");
    lag_part().write(&dir).expect("part");
    let (parts, unreadable) = read_parts(&dir);
    let report = assemble(Run::default(), parts, unreadable);
    let missing: Vec<&str> = report.missing.iter().map(|m| m.part.as_str()).collect();
    assert_eq!(
        missing,
        [
            "binaries",
            "command_costs",
            "projector",
            "archive",
            "loop",
            "make_bench"
        ]
    );
    assert_eq!(report.summary.missing_parts, 6);
    let text = md(&dir);
    std::fs::remove_dir_all(&dir).expect("cleans up");
    for expected in catalogue::EXPECTED.iter().filter(|e| e.part != "local_lag") {
        for target in expected.targets {
            assert!(
                text.contains(&format!(
                    "| {} | part missing: not measured in this run | — | {} | ⚠️ |",
                    expected.part,
                    target.replace('|', "\\|")
                )),
                "{} target `{target}` not in the targets table:\n{text}",
                expected.part
            );
        }
    }
    assert!(text.contains("## Not measured in this run"));
    assert!(text.contains("- **Test loop"));
}

#[test]
fn figures_show_met_missed_context_and_not_measured() {
    let dir = scratch("figures");
    let mut part = lag_part();
    part.figures.push(
        Figure::not_measured("local_lag.p999", "p99.9", "too few commands")
            .target("≤ 1 s", |v| v <= 1.0),
    );
    part.write(&dir).expect("part");
    let (parts, unreadable) = read_parts(&dir);
    let report = assemble(Run::default(), parts, unreadable);
    assert_eq!(
        report.summary,
        Summary {
            met: 1,
            missed: 1,
            no_target: 1,
            not_measured: 1,
            missing_parts: 6
        }
    );
    let text = md(&dir);
    std::fs::remove_dir_all(&dir).expect("cleans up");
    assert!(
        text.contains("| p99 | 0.420 s | ≤ 0.5 s | — | ✅ |"),
        "{text}"
    );
    assert!(
        text.contains("| max | 0.900 s | ≤ 0.5 s | — | ❌ |"),
        "{text}"
    );
    assert!(text.contains("| p50 | 0.200 s | — | — | — |"), "{text}");
    assert!(
        text.contains("| p99.9 | not measured | ≤ 1 s | — | ⚠️ | too few commands |"),
        "{text}"
    );
    // The targets table has the targeted and unmeasured figures, not the context ones.
    let targets = text.split("## Local lag").next().expect("head");
    assert!(targets.contains("| local_lag | p99 |") && !targets.contains("| local_lag | p50 |"));
}

#[test]
fn an_unreadable_or_misnamed_part_file_is_reported_not_skipped() {
    let dir = scratch("unreadable");
    std::fs::create_dir_all(dir.join("parts")).expect("dir");
    std::fs::write(dir.join("parts/projector.json"), "{ not json").expect("write");
    let mut misnamed = lag_part();
    misnamed.part = "archive".into();
    let json = serde_json::to_string(&misnamed).expect("json");
    std::fs::write(dir.join("parts/local_lag.json"), json).expect("write");
    let (parts, unreadable) = read_parts(&dir);
    assert!(parts.is_empty());
    let files: Vec<&str> = unreadable.iter().map(|u| u.file.as_str()).collect();
    assert_eq!(files, ["parts/local_lag.json", "parts/projector.json"]);
    assert!(unreadable[0].error.contains("names part `archive`"));
    let text = md(&dir);
    std::fs::remove_dir_all(&dir).expect("cleans up");
    assert!(
        text.contains("`parts/projector.json` could not be read"),
        "{text}"
    );
    assert!(
        text.contains("| parts/local_lag.json | unreadable: names part `archive`"),
        "{text}"
    );
}

#[test]
fn a_part_measured_outside_the_run_says_when_and_on_which_commit() {
    let dir = scratch("loop");
    let mut part = Part::new("loop", "Test loop");
    part.measured_at = Some("2026-12-07T12:00:00Z".into());
    part.commit = Some("0123456789abcdef".into());
    part.figures
        .push(Figure::new("loop.ci", "ci", 6.5, "min").target("≤ 7 min", |v| v <= 7.0));
    part.write(&dir).expect("part");
    let text = md(&dir);
    std::fs::remove_dir_all(&dir).expect("cleans up");
    assert!(
        text.contains("measured by `make bench-loop` at 2026-12-07T12:00:00Z on commit `0123456789`, not in this run"),
        "{text}"
    );
}

#[test]
fn charts_are_linked_and_a_missing_chart_file_is_said() {
    let dir = scratch("charts");
    let mut part = lag_part();
    part.charts.push(Chart {
        file: "charts/there.svg".into(),
        title: "There".into(),
    });
    part.charts.push(Chart {
        file: "charts/gone.svg".into(),
        title: "Gone".into(),
    });
    part.write(&dir).expect("part");
    std::fs::create_dir_all(dir.join("charts")).expect("dir");
    std::fs::write(dir.join("charts/there.svg"), "<svg/>").expect("svg");
    let text = md(&dir);
    std::fs::remove_dir_all(&dir).expect("cleans up");
    assert!(text.contains("![There](charts/there.svg)"));
    assert!(text.contains("Chart _Gone_: `charts/gone.svg` is missing."));
}

#[test]
fn parts_come_in_catalogue_order_then_unknown_ones_by_name() {
    let names = ["zeta", "loop", "binaries", "alpha", "local_lag"];
    let parts = names.iter().map(|n| Part::new(n, n)).collect();
    let report = assemble(Run::default(), parts, Vec::new());
    let order: Vec<&str> = report.parts.iter().map(|p| p.part.as_str()).collect();
    assert_eq!(order, ["binaries", "local_lag", "loop", "alpha", "zeta"]);
}

#[test]
fn the_readme_table_replaces_only_the_text_between_the_markers() {
    let report = assemble(Run::default(), vec![lag_part()], Vec::new());
    let readme = format!(
        "# T\nbefore\n{}\nold table\n{}\nafter\n",
        markdown::README_BEGIN,
        markdown::README_END
    );
    let new = markdown::readme_with(&readme, &report).expect("markers");
    assert!(new.starts_with("# T\nbefore\n"));
    assert!(new.ends_with(&format!("{}\nafter\n", markdown::README_END)));
    assert!(!new.contains("old table"));
    assert!(
        new.contains("| local_lag | p99 | 0.420 s | ≤ 0.5 s | ✅ |"),
        "{new}"
    );
    assert!(markdown::readme_with("# no markers", &report).is_none());
}

#[test]
fn numbers_read_as_people_write_them() {
    use markdown::number;
    assert_eq!(number(1_234_567.0), "1,234,567");
    assert_eq!(number(412.4), "412");
    assert_eq!(number(12.34), "12.3");
    assert_eq!(number(4.567), "4.57");
    assert_eq!(number(0.0123), "0.012");
    assert_eq!(number(-1500.0), "-1,500");
    assert_eq!(number(0.0), "0");
}

#[test]
fn the_cpu_model_comes_from_cpuinfo() {
    let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n";
    assert_eq!(run::cpu_model(text).as_deref(), Some("AMD EPYC 7B13"));
}

#[test]
fn a_report_assembled_again_keeps_its_run_and_says_when_it_was_assembled_again() {
    let dir = std::env::temp_dir().join(format!("ftgo-bench-reassembled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = Run {
        date: "2026-12-07T19:23:02Z".into(),
        commit: "73428ff86e0000".into(),
        ..Run::default()
    };
    let report = assemble(first, Vec::new(), Vec::new());
    write(&dir, &report).unwrap();

    let now = Run {
        date: "2026-12-07T21:00:00Z".into(),
        commit: "5db4f642850000".into(),
        ..Run::default()
    };
    let again = Run::of_report(&dir, &now).expect("the run of report.json");
    assert_eq!(
        (again.date.as_str(), again.commit.as_str()),
        ("2026-12-07T19:23:02Z", "73428ff86e0000")
    );
    let text = markdown::header(&assemble(again, Vec::new(), Vec::new()));
    assert!(
        text.starts_with("Run 2026-12-07T19:23:02Z on commit `73428ff86e`"),
        "{text}"
    );
    assert!(
        text.contains("Assembled again at 2026-12-07T21:00:00Z on commit `5db4f64285`."),
        "{text}"
    );

    assert!(
        Run::of_report(&dir.join("none"), &now).is_none(),
        "no report.json: no run"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
