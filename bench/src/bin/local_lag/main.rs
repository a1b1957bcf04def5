//! `bench-local-lag`: part `local_lag` of `make bench` — how long after a command's answer its
//! event shows in the order-history view, on the local stack.
//!
//! Starts `ftgo run` on free loopback ports (`$FTGO_BIN`, default `target/debug/ftgo`), sends
//! `--commands` (default 1,000) creates and approves from `--clients` (default 2) concurrent
//! clients, paced at `--rate` commands/s in all (default 4; 0 sends as fast as answers come, which
//! measures the backlog of a saturated projector rather than its lag), and polls the view table (`ftgo-order-history`, a consistent `BatchGetItem` of every
//! order still waiting) until each answered version shows. Writes `parts/local_lag.json` and
//! `charts/local_lag.svg` under the bench directory, then stops the stack.
//!
//! ```text
//! cargo run -p ftgo-bench --bin bench-local-lag -- [--commands N] [--clients N]
//!     [--rate R] [--concurrency N] [--settle-secs N]
//! ```

mod load;
mod stack;

use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use ftgo_bench::chart::{self, Axes, Marker};
use ftgo_bench::part::{Figure, Part, bench_dir, workspace_root};
use ftgo_bench::stats::percentile;

/// The target of issue 17: p99 lag on the local stack.
const TARGET_P99_MS: f64 = 500.0;
const TARGET: &str = "≤ 500 ms";
/// Where main stood before issue 17 (its text; not measured in this run).
const BEFORE: &str =
    "main@48daca8: p50 1,180 ms, max 1,200 ms over 40 sequential creates (issue 17)";
/// The view table of the local stack (stack `ftgo`, DESIGN §4).
const VIEW_TABLE: &str = "ftgo-order-history";

struct Args {
    commands: usize,
    clients: usize,
    rate: f64,
    concurrency: u32,
    settle: Duration,
}

fn args() -> Result<Args, String> {
    let mut parsed = Args {
        commands: 1000,
        clients: 2,
        rate: 4.0,
        concurrency: 4,
        settle: Duration::from_secs(60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--commands" => parsed.commands = number(&value)? as usize,
            "--clients" => parsed.clients = number(&value)?.max(1) as usize,
            "--rate" => {
                parsed.rate = value
                    .parse::<f64>()
                    .map_err(|e| format!("{flag} {value}: {e}"))?
                    .max(0.0)
            }
            "--concurrency" => parsed.concurrency = number(&value)?.max(1) as u32,
            "--settle-secs" => parsed.settle = Duration::from_secs(number(&value)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(parsed)
}

fn not_measured(why: &str) -> Part {
    let mut part = Part::new("local_lag", "Local lag: command answer → view");
    part.figures.push(
        Figure::not_measured("local_lag.p99", "lag p99", why)
            .target(TARGET, |v| v <= TARGET_P99_MS)
            .peer(BEFORE),
    );
    part
}

fn part(args: &Args, outcome: &load::Outcome, dir: &std::path::Path) -> Part {
    let mut part = Part::new("local_lag", "Local lag: command answer → view");
    // An answered command that never showed counts with the time it waited: a lower bound.
    let mut lags = outcome.lags_ms.clone();
    lags.extend(outcome.unseen_waited_ms.iter().copied());
    let answered = lags.len();
    let how = format!(
        "{answered} answered commands (creates and approves, {} clients, paced at {} commands/s, after a warm-up), ftgo run --concurrency {}, \
         moto, functions in debug via cargo lambda watch; the view polled with consistent \
         BatchGetItem, {:.1} ms a sweep (lag overstated by up to one sweep); load average {} at the end",
        args.clients,
        args.rate,
        args.concurrency,
        outcome.sweep_ms,
        ftgo_bench::report::run::load_average().unwrap_or_else(|| "unknown".into())
    );
    let p = |q: f64| percentile(&lags, q);
    let figure = |id: &str, label: &str, v: Option<f64>| match v {
        Some(v) => Figure::new(format!("local_lag.{id}"), label, v, "ms"),
        None => Figure::not_measured(format!("local_lag.{id}"), label, "no command was answered"),
    };
    part.figures
        .push(figure("p50", "lag p50", p(50.0)).peer(BEFORE).note(&how));
    part.figures.push(
        figure("p99", "lag p99", p(99.0))
            .target(TARGET, |v| v <= TARGET_P99_MS)
            .peer(BEFORE),
    );
    part.figures.push(figure("max", "lag max", p(100.0)));
    part.figures.push(
        Figure::new(
            "local_lag.commands",
            "commands answered 2xx",
            answered as f64,
            "",
        )
        .target("≥ 1,000", |v| v >= 1000.0)
        .note(&format!("{} not answered 2xx", outcome.failed)),
    );
    part.figures.push(
        Figure::new(
            "local_lag.unseen",
            "answered but never in the view",
            outcome.unseen as f64,
            "",
        )
        .target("0", |v| v == 0.0)
        .note(&format!(
            "waited {} s after the last answer",
            args.settle.as_secs()
        )),
    );
    part.figures.push(Figure::new(
        "local_lag.rate",
        "commands/s sent",
        answered as f64 / outcome.send_seconds.max(f64::MIN_POSITIVE),
        "/s",
    ));
    let axes = Axes {
        title: format!("Local lag, command answer → view ({answered} commands)"),
        x: "lag (ms)".into(),
        y: "commands".into(),
    };
    let mut markers: Vec<Marker> = [("p50", p(50.0)), ("p99", p(99.0))]
        .into_iter()
        .filter_map(|(n, v)| {
            v.map(|x| Marker {
                label: format!("{n} {x:.0} ms"),
                x,
            })
        })
        .collect();
    markers.push(Marker {
        label: format!("target p99 {TARGET}"),
        x: TARGET_P99_MS,
    });
    match chart::histogram(dir, "local_lag", &axes, &lags, 60, &markers) {
        Ok(c) => part.charts.push(c),
        Err(e) => eprintln!("bench-local-lag: {e}"),
    }
    part
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench-local-lag: {e}");
            return ExitCode::from(2);
        }
    };
    let root = workspace_root();
    let dir = bench_dir();
    let ftgo = stack::ftgo_binary(&root);
    let started = stack::token(&ftgo).and_then(|token| {
        eprintln!("bench-local-lag: starting ftgo run (the first start builds the functions)…");
        stack::Stack::start(
            &ftgo,
            &root,
            &dir.join("local-lag"),
            args.concurrency,
            Duration::from_secs(1500),
        )
        .map(|s| (s, token))
    });
    let (mut running, token) = match started {
        Ok(s) => s,
        Err(why) => {
            eprintln!("bench-local-lag: {why}");
            let _ = not_measured(&why).write(&dir);
            return ExitCode::FAILURE;
        }
    };
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&running.aws)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .build();
    let load = load::Load {
        api: running.api.clone(),
        token,
        table: VIEW_TABLE.to_owned(),
        commands: args.commands,
        clients: args.clients,
        rate: args.rate,
        settle: args.settle,
    };
    let db = aws_sdk_dynamodb::Client::from_conf(config);
    // Warm-up, not measured: the first invocation of each function builds and starts it.
    let warm_up = load::Load {
        commands: 2 * args.clients,
        ..load.clone()
    };
    let warmed = load::run(warm_up, db.clone()).await;
    eprintln!(
        "bench-local-lag: warm-up: {} commands shown in the view, {} not",
        warmed.lags_ms.len(),
        warmed.unseen + warmed.failed
    );
    eprintln!(
        "bench-local-lag: {} commands from {} clients on {}",
        args.commands, args.clients, running.api
    );
    let outcome = load::run(load, db).await;
    running.stop();
    let part = part(&args, &outcome, &dir);
    for f in &part.figures {
        eprintln!("  {}: {:?} {}", f.label, f.value, f.unit);
    }
    match part.write(&dir) {
        Ok(path) => {
            println!("bench-local-lag: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-local-lag: {e}");
            ExitCode::FAILURE
        }
    }
}
