//! tmp
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test")]
#[path = "aws_calls/scan.rs"]
mod scan;
use std::path::Path;
#[test]
fn print_reachable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let sdk = scan::sdk_operations(&root);
    let krate = scan::Crate::scan(&root.join("shared/aws/src"), &sdk);
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        let dir = entry.unwrap().path();
        let ops = krate.reachable_from_main(&dir.join("src/main.rs"), &sdk);
        println!("{}: {:?}", dir.display(), ops);
    }
}
