//! The calls list (`shared/aws/src/lambda/aws-calls.yaml`) says what the code calls: for each
//! function, the SDK operations its sources reach (tests/aws_calls/scan.rs) are exactly the
//! listed calls plus the listed `reached_by_name_only` exceptions, and every function has an
//! entry. The resources of the calls are reviewed in the list; the deployed-template test checks
//! the roles grant them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly"
)]

#[allow(dead_code, reason = "the fixture serves two test targets")]
use crate::calls;
#[path = "aws_calls/scan.rs"]
mod scan;

use std::collections::BTreeSet;
use std::path::Path;

use scan::Operation;

/// Everything the list and the code disagree on, one line each.
fn disagreements(
    function: &str,
    listed: &calls::FunctionCalls,
    reached: &BTreeSet<Operation>,
) -> Vec<String> {
    let mut found = Vec::new();
    let called: BTreeSet<Operation> = listed
        .calls
        .iter()
        .map(|call| calls::snake_operation(&call.operation))
        .collect();
    let by_name: BTreeSet<Operation> = listed
        .reached_by_name_only
        .keys()
        .map(|operation| calls::snake_operation(operation))
        .collect();
    let name = |(service, operation): &Operation| format!("{service}:{operation}");
    for operation in reached.difference(&called.union(&by_name).cloned().collect()) {
        found.push(format!(
            "{function}: the code calls {} and the list does not say so",
            name(operation)
        ));
    }
    for operation in called.union(&by_name).filter(|o| !reached.contains(*o)) {
        found.push(format!(
            "{function}: the list names {}, which the code does not reach",
            name(operation)
        ));
    }
    for operation in called.intersection(&by_name) {
        found.push(format!(
            "{function}: {} is both called and reached by name only",
            name(operation)
        ));
    }
    found
}

#[test]
fn the_calls_list_matches_what_each_function_calls() {
    let root = calls::repository();
    let list = calls::load();
    let sdk = scan::sdk_operations(&root);
    let code = scan::Crate::scan(&root.join("shared/aws/src"), &sdk);
    let mut functions = BTreeSet::new();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        let folder = entry.unwrap().path();
        let function = folder.file_name().unwrap().to_string_lossy().into_owned();
        let reached = code.reachable_from_main(&folder.join("src/main.rs"), &sdk);
        match list.get(&function) {
            Some(listed) => problems.extend(disagreements(&function, listed, &reached)),
            None => problems.push(format!("{function}: no entry in {}", calls::LIST)),
        }
        functions.insert(function);
    }
    for function in list.keys().filter(|f| !functions.contains(*f)) {
        problems.push(format!(
            "{function}: listed, but there is no functions/{function}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        calls::LIST,
        problems.join("\n")
    );
}

/// A crate of two files written here: `main.rs` reaches `put_item` through a typed field and an
/// untyped local, never `delete_item`, and the scan says exactly that.
#[test]
fn the_scan_follows_calls_to_the_sdk_and_no_further() {
    let folder = std::env::temp_dir().join(format!("ftgo-scan-{}", std::process::id()));
    let src = folder.join("src");
    std::fs::create_dir_all(src.join("store")).unwrap();
    std::fs::write(
        src.join("store/table.rs"),
        "use aws_sdk_dynamodb::Client;\n\
         pub struct Table { client: Client }\n\
         impl Table {\n\
             pub async fn write(&self) { self.client.put_item().send().await; }\n\
             pub async fn erase(&self) { self.client.delete_item().send().await; }\n\
         }\n\
         pub struct Service { table: Table }\n\
         impl Service {\n\
             pub fn new() -> Self { todo!() }\n\
             pub async fn run(&self) { self.table.write().await; }\n\
         }\n\
         #[cfg(test)]\n\
         mod tests { fn t(t: &super::Table) { t.erase(); } }\n",
    )
    .unwrap();
    let main = folder.join("main.rs");
    std::fs::write(
        &main,
        "fn main() { let service = ftgo_aws::store::table::Service::new(); service.run(); }\n",
    )
    .unwrap();
    let sdk = scan::sdk_operations(&calls::repository());
    let code = scan::Crate::scan(&src, &sdk);
    let reached = code.reachable_from_main(Path::new(&main), &sdk);
    std::fs::remove_dir_all(&folder).unwrap();
    assert_eq!(
        reached,
        BTreeSet::from([("dynamodb".to_owned(), "put_item".to_owned())])
    );
}

#[test]
fn a_missing_or_stale_entry_is_reported_by_name() {
    let listed: calls::FunctionCalls = serde_yaml_ng::from_str(
        "calls:\n  - { operation: s3:PutObject, resource: EventArchiveBucket/* }\n",
    )
    .unwrap();
    let op = |s: &str, o: &str| (s.to_owned(), o.to_owned());
    let reached = BTreeSet::from([op("s3", "put_object"), op("s3", "get_object")]);
    assert_eq!(
        disagreements("event-archiver", &listed, &reached),
        ["event-archiver: the code calls s3:get_object and the list does not say so"]
    );
    let reached = BTreeSet::new();
    assert_eq!(
        disagreements("event-archiver", &listed, &reached),
        ["event-archiver: the list names s3:put_object, which the code does not reach"]
    );
}
