//! The parts `make bench` is expected to produce, with the targets each one answers for
//! (issue 17, and issue 18 for the test loop). A part missing from a run is reported with
//! these targets, so a target is never dropped from the report silently.

/// A part the report expects.
#[derive(Clone, Copy, Debug)]
pub struct Expected {
    /// The part's name (`parts/<part>.json`).
    pub part: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// What writes it.
    pub producer: &'static str,
    /// The targets it answers for, as people read them.
    pub targets: &'static [&'static str],
}

/// Every part of a complete report, in report order.
pub const EXPECTED: &[Expected] = &[
    Expected {
        part: "binaries",
        title: "Lean binaries: cold start, size, peak RSS",
        producer: "the `binaries` producer (issue 17, lean binaries)",
        targets: &[
            "cold start (exec → first Runtime API poll) ≤ 2 × a bare lambda_runtime binary, per function",
            "cold start ≥ 60 × faster than Python 3.11 + boto3",
            "no disk read before the first Runtime API poll",
            "stripped arm64 bootstrap ≤ 8 MiB, per function",
            "peak RSS on a 100-record stream batch and on a create (no target)",
        ],
    },
    Expected {
        part: "command_costs",
        title: "DynamoDB round trips and request units per operation",
        producer: "the `command_costs` producer (issue 17, commands at their floor)",
        targets: &[
            "create, approve, reject, revise, cancel, Idempotency-Key, GET /orders/{id} each at the floor of issue 17's table",
            "loading aggregates of 10 / 100 / 1,000 / 10,000 events beside the floor",
        ],
    },
    Expected {
        part: "projector",
        title: "Projector throughput per shard",
        producer: "the `projector` producer (issue 17, concurrent coalescing projector)",
        targets: &[
            "≥ 1,000 events/s per shard with 5 ms injected per DynamoDB call",
            "< 1 write per event under load",
        ],
    },
    Expected {
        part: "archive",
        title: "Archive: PUTs per event, replay",
        producer: "the `archive` producer (issue 17, archiver batching)",
        targets: &[
            "≤ 0.1 PUT per event at 1 event/s",
            "replay ≥ 500,000 events/s",
        ],
    },
    Expected {
        part: "local_lag",
        title: "Local lag: command answer → view",
        producer: "`make bench-part-local_lag` (`bench-local-lag` of ftgo-bench)",
        targets: &["p99 ≤ 0.5 s over ≥ 1,000 commands on the local stack"],
    },
    Expected {
        part: "loop",
        title: "Test loop: `.ci/run` on a fresh clone, warm `make test`",
        producer: "`make bench-loop` (too long for `make bench`; its latest part is kept)",
        targets: &[
            "`.ci/run` on a fresh clone ≤ 7 min (issue 18)",
            "warm `make test` after a one-line domain change ≤ 3 min (issue 18)",
        ],
    },
    Expected {
        part: "make_bench",
        title: "`make bench` itself: wall time, whole and per part",
        producer: "`make bench`'s own timings of its parts (`bench-report --timings`)",
        targets: &["`make bench` on a fresh clone ≤ 15 min (issue 17)"],
    },
];
