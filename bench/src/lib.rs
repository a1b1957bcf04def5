//! FTGO's `make bench` report.
//!
//! Every measurement of `make bench` writes one *part*, `$FTGO_BENCH_DIR/parts/<part>.json`
//! ([`part::Part`]: figures beside their target and peer, met or missed, and SVG charts under
//! `$FTGO_BENCH_DIR/charts/`). The last step, `bench-report`, assembles them into
//! `report.json` and `report.md` ([`report`]), and says which expected part is missing rather
//! than leaving its targets out.
//!
//! For producers: [`part::Part::write`] writes a part where the assembler looks for it,
//! [`chart`] draws a histogram or a line chart as SVG, [`stats`] gives percentiles.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chart;
pub mod part;
pub mod report;
pub mod stats;
pub mod timing;
