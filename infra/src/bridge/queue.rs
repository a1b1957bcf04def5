//! What to delete after invoking a function with a batch of SQS messages — pure, as Lambda's SQS
//! event source decides it.

use super::verdict::Verdict;

/// The messages of a batch to delete (by position), the rest being left to become visible again
/// when their visibility timeout ends (the queue's redrive policy then does its job).
pub fn to_delete(verdict: &Verdict, batch_len: usize) -> Vec<usize> {
    match verdict {
        Verdict::Success => (0..batch_len).collect(),
        Verdict::Partial(failed) => (0..batch_len).filter(|i| !failed.contains(i)).collect(),
        Verdict::Failed { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_deletes_all_partial_deletes_the_others_failure_deletes_none() {
        assert_eq!(to_delete(&Verdict::Success, 3), vec![0, 1, 2]);
        assert_eq!(to_delete(&Verdict::Partial(vec![1]), 3), vec![0, 2]);
        let failed = Verdict::Failed {
            function_error: None,
            reason: String::new(),
        };
        assert!(to_delete(&failed, 3).is_empty());
    }
}
