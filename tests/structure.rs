//! The house rules of the source tree (issue 9), checked on every `make lint`:
//!
//! * no Rust source file is over [`MAX_FILE_LINES`] lines (tests included);
//! * within each library crate, the module import graph has no circle: a module never reaches
//!   back to a module that imports it (through `crate::`, `super::` or `self::` paths, in `use`
//!   items or inline; `#[cfg(test)]` items are left out).
//!
//! Modules are files (`a/b.rs` and `a/b/mod.rs` are `a::b`); a path names the longest module
//! prefix it starts with. The files are parsed with `syn`, so comments and strings never count.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The longest a source file may be.
const MAX_FILE_LINES: usize = 800;

/// The crates whose module graphs must be acyclic, by their `src` folder.
const CRATE_SOURCES: [&str; 5] = [
    "shared/domain/src",
    "shared/aws/src",
    "cli/src",
    "infra/src",
    "bench/src",
];

/// The folders holding Rust sources.
const SOURCE_ROOTS: [&str; 6] = ["shared", "functions", "cli", "infra", "tests", "bench"];

type Module = Vec<String>;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("readable folder") {
            let path = entry.expect("readable entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() && name != "target" && !name.starts_with('.') {
                folders.push(path);
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `a/b.rs`, `a/b/mod.rs` → `["a", "b"]`; `lib.rs`, `main.rs` → the crate root `[]`.
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).expect("file under src");
    let mut parts: Module = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every `crate::`/`super::`/`self::` path of one file, made absolute.
struct Paths<'a> {
    module: &'a Module,
    found: Vec<Module>,
}

impl Paths<'_> {
    fn absolute(&self, segments: &[String]) -> Option<Module> {
        let (first, rest) = segments.split_first()?;
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.module.clone(),
            "super" => self.module[..self.module.len().saturating_sub(1)].to_vec(),
            _ => return None,
        };
        let mut rest = rest;
        while let Some((next, tail)) = rest.split_first() {
            if next != "super" {
                break;
            }
            base.pop();
            rest = tail;
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => self.record(prefix, Some(name.ident.to_string())),
            syn::UseTree::Rename(rename) => self.record(prefix, Some(rename.ident.to_string())),
            syn::UseTree::Glob(_) => self.record(prefix, None),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn record(&mut self, prefix: &[String], last: Option<String>) {
        let mut segments = prefix.to_vec();
        segments.extend(last);
        if let Some(path) = self.absolute(&segments) {
            self.found.push(path);
        }
    }
}

fn is_test_only(attributes: &[syn::Attribute]) -> bool {
    attributes.iter().any(|attribute| {
        attribute.path().is_ident("cfg")
            && attribute
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attributes = match item {
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attributes) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        self.record(&segments, None);
        syn::visit::visit_path(self, path);
    }
}

/// The crate's modules and, for each, the modules it imports (not itself, not its ancestors:
/// a child naming its parent's items is how Rust nests, not a layer reaching up).
fn import_graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let files = rust_files(src);
    let modules: BTreeSet<Module> = files.iter().map(|file| module_of(src, file)).collect();
    let longest_module = |path: &Module| {
        (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| modules.contains(prefix))
    };
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        let text = std::fs::read_to_string(file).expect("readable source");
        let syntax = syn::parse_file(&text)
            .unwrap_or_else(|error| panic!("{} does not parse: {error}", file.display()));
        let mut paths = Paths {
            module: &module,
            found: Vec::new(),
        };
        paths.visit_file(&syntax);
        let imports: BTreeSet<Module> = paths
            .found
            .iter()
            .filter_map(longest_module)
            .filter(|target| !module.starts_with(target))
            .collect();
        graph.insert(module, imports);
    }
    graph
}

/// One circle of the graph, if there is any (depth-first search for a back edge).
fn find_circle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn walk(
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        module: &Module,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.clone());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.clone());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = walk(graph, next, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| walk(graph, module, &mut Vec::new(), &mut done))
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

#[test]
fn no_source_file_is_over_the_limit() {
    let root = repository();
    let too_long: Vec<String> = SOURCE_ROOTS
        .iter()
        .flat_map(|folder| rust_files(&root.join(folder)))
        .filter_map(|file| {
            let lines = std::fs::read_to_string(&file).ok()?.lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(
        too_long.is_empty(),
        "over {MAX_FILE_LINES} lines: {too_long:#?}"
    );
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = repository();
    for src in CRATE_SOURCES {
        let graph = import_graph(&root.join(src));
        assert!(graph.len() > 3, "{src}: modules found: {}", graph.len());
        if let Some(circle) = find_circle(&graph) {
            let circle: Vec<String> = circle.iter().map(name).collect();
            panic!("{src}: import circle {}", circle.join(" → "));
        }
    }
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let module = |path: &str| -> Module { path.split("::").map(str::to_owned).collect() };
    let mut graph = BTreeMap::new();
    graph.insert(module("a"), BTreeSet::from([module("b")]));
    graph.insert(module("b"), BTreeSet::from([module("c")]));
    graph.insert(module("c"), BTreeSet::from([module("a")]));
    let circle = find_circle(&graph).expect("a → b → c → a");
    assert_eq!(circle.first(), circle.last());
    assert_eq!(circle.len(), 4);
    graph.insert(module("c"), BTreeSet::new());
    assert_eq!(find_circle(&graph), None);
}
