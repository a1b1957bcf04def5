//! The DynamoDB round trips of every command and query, counted (not timed) through the real
//! handlers on moto server and, when Java is here, DynamoDB Local: the floor of issue 17 cannot
//! silently regress. The same measurement, with request units, is `benches/command_costs.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::collections::BTreeMap;

use crate::costs::{load_of, operations};
use ftgo_tests::emulators;

fn calls(pairs: &[(&'static str, u32)]) -> BTreeMap<&'static str, u32> {
    pairs.iter().copied().collect()
}

#[tokio::test]
async fn every_operation_makes_its_floor_of_round_trips_and_no_more() {
    for emulator in emulators().await {
        let measured = operations(emulator).await;
        let expected = [
            ("create", calls(&[("PutItem", 1)])),
            ("approve", calls(&[("Query", 1), ("PutItem", 1)])),
            ("revise", calls(&[("Query", 1), ("PutItem", 1)])),
            ("cancel", calls(&[("Query", 2), ("TransactWriteItems", 1)])),
            ("keyed", calls(&[("Query", 1), ("PutItem", 1)])),
            ("keyed_retry", calls(&[("Query", 1)])),
            ("pickup", calls(&[("Query", 2), ("TransactWriteItems", 1)])),
            ("deliver", calls(&[("Query", 2), ("TransactWriteItems", 1)])),
            ("get_order", calls(&[("GetItem", 1)])),
            ("get_order_consistent", calls(&[("GetItem", 1)])),
        ];
        assert_eq!(measured.len(), expected.len());
        for (measured, (id, calls)) in measured.iter().zip(expected) {
            assert_eq!(measured.id, id);
            assert_eq!(
                measured.tally.calls,
                calls,
                "{}: {} on {}",
                measured.label,
                measured.tally.describe(),
                emulator.kind()
            );
            assert_eq!(measured.tally.round_trips(), measured.floor, "{id}");
        }
    }
}

#[tokio::test]
async fn a_load_reads_the_snapshot_only_when_the_stream_can_have_one() {
    for emulator in emulators().await {
        for (length, expected) in [
            (10, calls(&[("Query", 1)])),
            (100, calls(&[("Query", 1)])),
            (150, calls(&[("Query", 1), ("GetItem", 1)])),
        ] {
            let measured = load_of(emulator, length).await;
            assert_eq!(
                measured.tally.calls,
                expected,
                "{}: {} on {}",
                measured.label,
                measured.tally.describe(),
                emulator.kind()
            );
        }
    }
}
