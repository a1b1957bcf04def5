//! How long `make bench` itself took: the `make_bench` part, made from the timings the
//! Makefile's loop writes as it runs the parts (`$FTGO_BENCH_DIR/timings.txt`):
//!
//! ```text
//! fresh yes
//! part binaries 1831 ok
//! part command_costs 64 failed
//! ```
//!
//! `fresh` says whether the run started without a build in `target/` (a fresh clone), which is
//! what the target of issue 17 is about: a run that found the builds done is faster than a
//! fresh one, so it can show the target missed but never met.

use crate::part::{Figure, Part};

/// The part's name.
pub const PART: &str = "make_bench";

/// The target of the whole run (issue 17), in minutes.
pub const WHOLE_RUN_TARGET_MIN: f64 = 15.0;

/// One part's run, as the Makefile timed it.
#[derive(Clone, Debug, PartialEq)]
pub struct PartRun {
    /// The part (`binaries`, ...).
    pub part: String,
    /// Wall time, in seconds.
    pub seconds: u64,
    /// Whether its producer succeeded.
    pub ok: bool,
}

/// The Makefile's timings of one `make bench`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timings {
    /// Whether the run started on a fresh clone (no build in `target/`); `None` if not said.
    pub fresh: Option<bool>,
    /// Each part, in run order.
    pub parts: Vec<PartRun>,
}

/// A line of the timings that does not read.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error(
    "timings line {line}: `{text}` is neither `fresh yes|no` nor `part <name> <seconds> ok|failed`"
)]
pub struct TimingsError {
    /// The line number, from 1.
    pub line: usize,
    /// The line.
    pub text: String,
}

impl Timings {
    /// Reads the Makefile's timings (blank lines are skipped).
    pub fn parse(text: &str) -> Result<Self, TimingsError> {
        let mut timings = Self::default();
        for (index, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = || TimingsError {
                line: index + 1,
                text: line.to_owned(),
            };
            match words.as_slice() {
                [] => {}
                ["fresh", "yes"] => timings.fresh = Some(true),
                ["fresh", "no"] => timings.fresh = Some(false),
                ["part", part, seconds, status @ ("ok" | "failed")] => {
                    timings.parts.push(PartRun {
                        part: (*part).to_owned(),
                        seconds: seconds.parse().map_err(|_| bad())?,
                        ok: *status == "ok",
                    });
                }
                _ => return Err(bad()),
            }
        }
        Ok(timings)
    }

    /// The `make_bench` part: the whole run against its target, then each part's wall time.
    pub fn part(&self) -> Part {
        let mut part = Part::new(PART, "`make bench` itself: wall time, whole and per part");
        let minutes = self.parts.iter().map(|p| p.seconds).sum::<u64>() as f64 / 60.0;
        let target = "≤ 15 min on a fresh clone (issue 17)";
        let whole = Figure::new(
            format!("{PART}.whole"),
            "`make bench`, every part",
            minutes,
            "min",
        );
        part.figures.push(match self.fresh {
            Some(true) => whole
                .target(target, |m| m <= WHOLE_RUN_TARGET_MIN)
                .note("a fresh clone: every build is in the time"),
            // With the builds done already, only a miss says anything.
            _ if minutes > WHOLE_RUN_TARGET_MIN => whole
                .target(target, |_| false)
                .note("not a fresh clone, and over the target all the same"),
            _ => {
                let mut whole = whole.note(
                    "not a fresh clone: builds already in target/ are not in the time, so the target is not judged",
                );
                whole.target = Some(target.to_owned());
                whole
            }
        });
        for run in &self.parts {
            let figure = Figure::new(
                format!("{PART}.{}", run.part),
                format!("part `{}`", run.part),
                run.seconds as f64 / 60.0,
                "min",
            );
            part.figures.push(if run.ok {
                figure
            } else {
                figure.note("its producer failed")
            });
        }
        part
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(text: &str) -> Timings {
        Timings::parse(text).expect("reads")
    }

    #[test]
    fn given_a_fresh_run_within_15_minutes_when_reported_then_the_target_is_met() {
        let part = timings("fresh yes\npart binaries 600 ok\npart archive 240 ok\n").part();
        let whole = &part.figures[0];
        assert_eq!(whole.value, Some(14.0));
        assert_eq!(whole.met, Some(true));
        assert_eq!(part.figures.len(), 3);
        assert_eq!(part.figures[1].id, "make_bench.binaries");
        assert_eq!(part.figures[1].value, Some(10.0));
    }

    #[test]
    fn given_a_fresh_run_over_15_minutes_when_reported_then_the_target_is_missed() {
        let part = timings("fresh yes\npart binaries 1800 ok\n").part();
        assert_eq!(part.figures[0].met, Some(false));
    }

    #[test]
    fn given_a_warm_run_when_reported_then_only_a_miss_is_judged() {
        let quick = timings("fresh no\npart binaries 60 ok\n").part();
        assert_eq!(quick.figures[0].met, None);
        assert!(quick.figures[0].target.is_some());
        let slow = timings("fresh no\npart binaries 1000 ok\n").part();
        assert_eq!(slow.figures[0].met, Some(false));
    }

    #[test]
    fn given_a_failed_producer_when_reported_then_its_figure_says_so() {
        let part = timings("fresh yes\npart local_lag 30 failed\n").part();
        assert_eq!(part.figures[1].note.as_deref(), Some("its producer failed"));
    }

    #[test]
    fn given_a_line_that_does_not_read_when_parsed_then_the_error_names_it() {
        let error = Timings::parse("fresh yes\npart binaries soon ok\n").expect_err("refused");
        assert_eq!(error.line, 2);
        assert!(error.to_string().contains("part binaries soon ok"));
    }
}
