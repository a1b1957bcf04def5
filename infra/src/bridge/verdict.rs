//! What an invocation's answer means for its batch, under Lambda's partial-batch-response rules
//! (`FunctionResponseTypes: [ReportBatchItemFailures]`).

use serde_json::Value;

use crate::invoke::Invocation;

/// The meaning of one invocation for the batch it carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every record succeeded.
    Success,
    /// The records at these batch positions failed (ascending, not empty); the others succeeded.
    Partial(Vec<usize>),
    /// The whole batch failed: a function error, or a response Lambda would not accept.
    Failed {
        /// `responseContext.functionError` (`Unhandled`), when the function itself failed.
        function_error: Option<String>,
        /// Why, for logs.
        reason: String,
    },
}

/// Judges `invocation` of a batch whose records have the identifiers `ids` (sequence numbers
/// for streams, message ids for SQS), with `report_batch_item_failures` as the event source says.
///
/// As Lambda: a function error fails the batch; without `ReportBatchItemFailures` anything else is
/// a success; with it, a `null`/empty answer or a missing, `null` or empty `batchItemFailures`
/// list is a success, and an answer that is not JSON, a list that is not a list, an item without
/// a non-empty string `itemIdentifier`, or an identifier not in the batch fails the whole batch.
pub fn judge(invocation: &Invocation, ids: &[&str], report_batch_item_failures: bool) -> Verdict {
    if let Some(kind) = &invocation.function_error {
        return Verdict::Failed {
            function_error: Some(kind.clone()),
            reason: invocation.error_message(),
        };
    }
    if !report_batch_item_failures {
        return Verdict::Success;
    }
    let failed = |reason: String| Verdict::Failed {
        function_error: None,
        reason,
    };
    if invocation.payload.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Success;
    }
    let answer: Value = match serde_json::from_slice(&invocation.payload) {
        Ok(v) => v,
        Err(e) => return failed(format!("the answer is not JSON: {e}")),
    };
    let list = match &answer {
        Value::Null => return Verdict::Success,
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return Verdict::Success,
            Some(Value::Array(items)) => items,
            Some(_) => return failed("batchItemFailures is not a list".to_owned()),
        },
        _ => return failed("the answer is not a batch response object".to_owned()),
    };
    let mut positions = Vec::with_capacity(list.len());
    for item in list {
        let Some(id) = item
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return failed(format!("invalid batch item failure {item}"));
        };
        let Some(position) = ids.iter().position(|candidate| *candidate == id) else {
            return failed(format!("itemIdentifier {id} is not in the batch"));
        };
        positions.push(position);
    }
    if positions.is_empty() {
        return Verdict::Success;
    }
    positions.sort_unstable();
    positions.dedup();
    Verdict::Partial(positions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [&str; 3] = ["100", "200", "300"];

    fn ok(body: &str) -> Invocation {
        Invocation::ok(body.to_owned())
    }

    #[test]
    fn empty_or_missing_failure_lists_are_success() {
        for body in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":null}"#,
            r#"{"batchItemFailures":[]}"#,
        ] {
            assert_eq!(judge(&ok(body), &IDS, true), Verdict::Success, "{body}");
        }
    }

    #[test]
    fn listed_failures_give_their_positions_sorted() {
        let body = r#"{"batchItemFailures":[{"itemIdentifier":"300"},{"itemIdentifier":"200"}]}"#;
        assert_eq!(judge(&ok(body), &IDS, true), Verdict::Partial(vec![1, 2]));
    }

    #[test]
    fn an_unknown_or_empty_identifier_fails_the_whole_batch() {
        for body in [
            r#"{"batchItemFailures":[{"itemIdentifier":"999"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"id":"100"}]}"#,
            r#"{"batchItemFailures":"100"}"#,
            "not json",
        ] {
            assert!(
                matches!(judge(&ok(body), &IDS, true), Verdict::Failed { .. }),
                "{body}"
            );
        }
    }

    #[test]
    fn without_report_batch_item_failures_the_answer_is_ignored() {
        let body = r#"{"batchItemFailures":[{"itemIdentifier":"100"}]}"#;
        assert_eq!(judge(&ok(body), &IDS, false), Verdict::Success);
    }

    #[test]
    fn a_function_error_fails_the_batch() {
        let inv = Invocation::failed(r#"{"errorType":"X","errorMessage":"boom"}"#);
        assert_eq!(
            judge(&inv, &IDS, true),
            Verdict::Failed {
                function_error: Some("Unhandled".to_owned()),
                reason: "X: boom".to_owned()
            }
        );
    }
}
