//! `cargo bench -p ftgo-tests --bench command_costs`: DynamoDB round trips and consumed
//! capacity (`ReturnConsumedCapacity = TOTAL`, as DynamoDB Local reports it) of every command and
//! query of issue 17's table, and of loading aggregates of 10 / 100 / 1,000 / 10,000 events,
//! each beside its floor. Writes the `command_costs` report part,
//! `$FTGO_BENCH_DIR/parts/command_costs.json` (`FTGO_BENCH_DIR` defaults to `target/bench`).
//!
//! Measured through the real handlers and store against DynamoDB Local; without Java it says
//! so in every figure's note (values null) rather than measure moto, whose capacity figures are
//! not DynamoDB's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench: a failure stops it loudly"
)]

#[path = "../fixtures/command_costs.rs"]
mod command_costs;
#[path = "../fixtures/read_side.rs"]
mod read_side;
#[path = "../fixtures/write_side.rs"]
mod write_side;

use std::path::PathBuf;

use command_costs::{Measured, load_of, operations};
use ftgo_tests::{Emulator, repository_root};
use serde_json::{Value, json};

/// The history lengths loaded.
const LENGTHS: [u64; 4] = [10, 100, 1_000, 10_000];

fn bench_dir() -> PathBuf {
    std::env::var_os("FTGO_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repository_root().join("target/bench"))
}

fn units(measured: &Measured) -> String {
    format!(
        "{} RCU + {} WCU",
        measured.tally.read_units, measured.tally.write_units
    )
}

/// The figures of one measured operation: its round trips against the floor, and its units.
fn figures(measured: &Measured, unit_target: Option<(&str, bool)>) -> [Value; 2] {
    let trips = measured.tally.round_trips();
    let total = measured.tally.read_units + measured.tally.write_units;
    [
        json!({
            "id": format!("command_costs.{}.round_trips", measured.id),
            "label": format!("{}: round trips", measured.label),
            "value": trips,
            "unit": "round trips",
            "target": format!("≤ {} ({})", measured.floor, measured.floor_text),
            "peer": format!("before: {}", measured.before),
            "met": trips <= measured.floor,
            "note": format!("{}; DynamoDB Local", measured.tally.describe()),
        }),
        json!({
            "id": format!("command_costs.{}.units", measured.id),
            "label": format!("{}: request units", measured.label),
            "value": total,
            "unit": "RU",
            "target": unit_target.map(|(text, _)| text),
            "peer": format!("before: {}", measured.before),
            "met": unit_target.map(|(_, met)| met),
            "note": format!("{} (ConsumedCapacity, DynamoDB Local)", units(measured)),
        }),
    ]
}

fn unmeasured(reason: &str) -> Vec<Value> {
    let ids = [
        "create",
        "approve",
        "revise",
        "cancel",
        "keyed",
        "keyed_retry",
        "get_order",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(LENGTHS.iter().map(|n| format!("load.{n}")));
    ids.map(|id| {
        json!({
            "id": format!("command_costs.{id}.round_trips"),
            "label": format!("{id}: round trips"),
            "value": null, "unit": "round trips", "target": null, "peer": null, "met": null,
            "note": format!("not measured: {reason}"),
        })
    })
    .collect()
}

async fn measure(emulator: &Emulator) -> (Vec<Value>, Vec<(u64, f64)>) {
    let operations = operations(emulator).await;
    let find = |id: &str| {
        operations
            .iter()
            .find(|m| m.id == id)
            .expect("measured")
            .clone()
    };
    let revise = find("revise");
    let mut out = Vec::new();
    for measured in &operations {
        let target = match measured.id.as_str() {
            "get_order" => Some(("≤ 0.5 RCU", measured.tally.read_units <= 0.5)),
            "keyed" => Some((
                "no more than the same command unkeyed",
                measured.tally.read_units + measured.tally.write_units
                    <= revise.tally.read_units + revise.tally.write_units,
            )),
            _ => None,
        };
        out.extend(figures(measured, target));
        println!(
            "{:<40} {:<45} {}",
            measured.label,
            measured.tally.describe(),
            units(measured)
        );
    }
    let mut chart = Vec::new();
    for length in LENGTHS {
        let measured = load_of(emulator, length).await;
        println!(
            "{:<40} {:<45} {}",
            measured.label,
            measured.tally.describe(),
            units(&measured)
        );
        chart.push((length, measured.tally.read_units));
        out.extend(figures(&measured, None));
    }
    (out, chart)
}

/// A bar chart of the read units one load costs by history length.
fn chart_svg(points: &[(u64, f64)]) -> String {
    let max = points.iter().map(|p| p.1).fold(1.0_f64, f64::max);
    let mut bars = String::new();
    for (i, (length, rcu)) in points.iter().enumerate() {
        let x = 60 + i * 110;
        let height = (rcu / max * 200.0).max(1.0);
        let y = 240.0 - height;
        bars.push_str(&format!(
            r##"<rect x="{x}" y="{y:.1}" width="70" height="{height:.1}" fill="#4a7ab5"/><text x="{tx}" y="258" font-size="12" text-anchor="middle">{length} events</text><text x="{tx}" y="{ly:.1}" font-size="12" text-anchor="middle">{rcu} RCU</text>"##,
            tx = x + 35,
            ly = y - 4.0,
        ));
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="520" height="290" font-family="sans-serif"><text x="10" y="20" font-size="14">Read units of one aggregate load by history length (snapshot every 100)</text><line x1="50" y1="240" x2="510" y2="240" stroke="black"/>{bars}</svg>"#
    )
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let (figures, charts) = match Emulator::dynamodb_local().await {
        Ok(emulator) => {
            let (figures, chart) = measure(emulator).await;
            let dir = bench_dir().join("charts");
            std::fs::create_dir_all(&dir).expect("charts dir");
            std::fs::write(dir.join("command_costs.svg"), chart_svg(&chart)).expect("chart");
            (
                figures,
                json!([{ "file": "charts/command_costs.svg",
                         "title": "Read units of one aggregate load by history length" }]),
            )
        }
        Err(skipped) => {
            eprintln!("{skipped}");
            (unmeasured(&skipped.to_string()), json!([]))
        }
    };
    let part = json!({
        "part": "command_costs",
        "title": "DynamoDB round trips and request units per operation",
        "figures": figures,
        "charts": charts,
    });
    let dir = bench_dir().join("parts");
    std::fs::create_dir_all(&dir).expect("parts dir");
    let path = dir.join("command_costs.json");
    std::fs::write(&path, serde_json::to_string_pretty(&part).expect("JSON")).expect("part");
    println!("wrote {}", path.display());
}
