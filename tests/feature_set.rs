//! The local stack's build of the functions (`cargo build --features local --bin <function>`, as
//! `ftgo run` and the e2e tests build them), and the e2e tests' build of `ftgo`
//! (`cargo build -p ftgo-cli --features local`), give every third-party crate the features
//! `cargo test --workspace` gives it, so it reuses what the test build compiled: `local` adds
//! `shared/feature-set`, whose dependency table asks for the workspace's features. When a new
//! dependency or feature anywhere in the workspace makes them differ, the function build would
//! compile the AWS SDK a second time; this names each crate and the table line to paste.
//! The workspace's own crates are held the same way (`ftgo-aws` has no `default` feature, and
//! the tests' build turns `local` on for `ftgo-cli` and `ftgo-infra`), so inside the e2e tests
//! only the functions' `main.rs` compile.
//!
//! Both sides come from `cargo tree` (a node per crate and feature set, host and target apart):
//! a crate built for the target must have a feature set the workspace builds for the target; a
//! build-time crate (build scripts, proc macros) one the workspace builds at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Feature sets (sorted names) by package (`name vX.Y.Z`).
type Nodes = BTreeMap<String, BTreeSet<Vec<String>>>;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// The packages of `functions/` (each folder one package of its name).
fn functions() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repository().join("functions"))
        .expect("functions/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no function under functions/");
    names
}

/// `cargo tree`'s nodes for `selection` over `edges`: third-party crates, and the workspace's
/// own (named with their path, `name vX (/path)`), whose features must agree as well.
fn tree(selection: &[String], edges: &str) -> Nodes {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--prefix", "none"])
        .args(["--format", "{p}|{f}", "--edges", edges])
        .args(selection)
        .current_dir(repository())
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree {selection:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut nodes = Nodes::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((package, features)) = line
            .replace(" (*)", "")
            .split_once('|')
            .map(|(p, f)| (p.trim().to_owned(), f.trim().to_owned()))
        else {
            continue;
        };
        let package = package.trim_end_matches(" (proc-macro)").to_owned();
        let mut features: Vec<String> = features
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        features.sort();
        nodes.entry(package).or_default().insert(features);
    }
    nodes
}

/// The workspace's test build: every node, and the target's.
fn workspace() -> &'static (Nodes, Nodes) {
    static WORKSPACE: OnceLock<(Nodes, Nodes)> = OnceLock::new();
    WORKSPACE.get_or_init(|| {
        let workspace = ["--workspace".to_owned()];
        (
            tree(&workspace, "normal,build,dev"),
            tree(&workspace, "normal,dev,no-proc-macro"),
        )
    })
}

/// Each crate of the build of `packages` (with `extra` flags) whose feature set the workspace's
/// test build does not have, with the workspace's; the crates of `own` are left out (they are
/// what the build is for: binaries the test build does not make).
fn differences(packages: &[String], extra: &[&str], own: &[String]) -> Vec<String> {
    let mut selection: Vec<String> = packages
        .iter()
        .flat_map(|p| ["-p".to_owned(), p.clone()])
        .collect();
    selection.extend(extra.iter().map(|s| (*s).to_owned()));
    let (ours, our_target) = (
        tree(&selection, "normal,build"),
        tree(&selection, "normal,no-proc-macro"),
    );
    let (theirs, their_target) = workspace();
    let none = BTreeSet::new();
    let mut found = Vec::new();
    let is_own = |package: &str| own.iter().any(|o| package.starts_with(&format!("{o} v")));
    for (package, sets) in ours.iter().filter(|(package, _)| !is_own(package)) {
        for features in sets {
            let target = our_target
                .get(package)
                .is_some_and(|s| s.contains(features));
            let (pool, kind) = if target {
                (their_target.get(package).unwrap_or(&none), "")
            } else {
                (theirs.get(package).unwrap_or(&none), " (build time)")
            };
            if !pool.contains(features) {
                let wanted: Vec<String> = pool
                    .iter()
                    .filter(|w| features.iter().all(|f| w.contains(f)))
                    .map(|w| format!("[{}]", w.join(", ")))
                    .collect();
                found.push(format!(
                    "{package}{kind}: [{}] here, the workspace builds it with {}",
                    features.join(", "),
                    if wanted.is_empty() {
                        "no such set".to_owned()
                    } else {
                        wanted.join(" or ")
                    }
                ));
            }
        }
    }
    found
}

#[test]
fn the_local_build_of_the_functions_has_the_workspace_features_of_every_crate() {
    let found = differences(&functions(), &["--features", "local"], &functions());
    assert!(
        found.is_empty(),
        "the functions built with `--features local` would compile these crates again (a \
         third-party crate: add it to shared/feature-set/Cargo.toml with the workspace's \
         features, `[dependencies]`, or `[build-dependencies]` for build time; one of ours: \
         give it the same features in both builds):\n{}",
        found.join("\n")
    );
}

#[test]
fn without_local_the_functions_build_differs_so_the_feature_set_is_needed() {
    let found = differences(&functions(), &[], &functions());
    assert!(
        !found.is_empty(),
        "the functions alone already build every crate as the workspace does: shared/feature-set \
         and the functions' `local` feature can go"
    );
}

/// The e2e tests build `ftgo` and `ftgo-local` alone (tests/fixtures/local_stack.rs): with
/// their `local` features they reuse the test build's crates too.
#[test]
fn the_local_build_of_the_command_lines_has_the_workspace_features_of_every_crate() {
    let packages = ["ftgo-cli".to_owned(), "ftgo-infra".to_owned()];
    let found = differences(&packages, &["--features", ftgo_tests::LOCAL_FEATURES], &[]);
    assert!(
        found.is_empty(),
        "`cargo build -p ftgo-cli -p ftgo-infra --features {}` would compile these crates again \
         (a third-party crate: add it to shared/feature-set/Cargo.toml with the workspace's \
         features; one of ours: give it the same features in both builds, as tests/Cargo.toml \
         turns `local` on for ftgo-cli and ftgo-infra):\n{}",
        ftgo_tests::LOCAL_FEATURES,
        found.join("\n")
    );
}
