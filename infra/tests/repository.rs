//! The repository stands on its own (offline; `make lint` runs it):
//!
//! * one licence: `LICENSE` holds the Apache License 2.0, and every manifest says `Apache-2.0`
//!   (the workspace `Cargo.toml`, `package.json`, `openapi.yaml`'s `info.license`);
//! * no committed text file points outside the repository (the parent directory's `shared/`,
//!   the old place of the design contract): the contract is `docs/DESIGN.md`.
use std::path::{Path, PathBuf};

const LICENSE_ID: &str = "Apache-2.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every manifest's licence, as `(where, what it says)`.
fn manifest_licenses(root_files: impl Fn(&str) -> String) -> Vec<(&'static str, String)> {
    let cargo: toml_like::Table = toml_like::parse(&root_files("Cargo.toml"));
    let package: serde_json::Value =
        serde_json::from_str(&root_files("package.json")).expect("package.json");
    let openapi: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&root_files("openapi.yaml")).expect("openapi.yaml");
    let info = &openapi["info"]["license"];
    vec![
        (
            "Cargo.toml [workspace.package] license",
            cargo
                .get("workspace.package", "license")
                .unwrap_or_default(),
        ),
        (
            "package.json license",
            package["license"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "openapi.yaml info.license.identifier",
            info["identifier"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "openapi.yaml info.license.name",
            info["name"].as_str().unwrap_or_default().to_owned(),
        ),
    ]
}

/// Just enough TOML for `[section]` + `key = "value"` lines (the workspace manifest's package
/// table), so that this test needs no TOML crate.
mod toml_like {
    pub struct Table(Vec<(String, String, String)>);

    impl Table {
        pub fn get(&self, section: &str, key: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(s, k, _)| s == section && k == key)
                .map(|(_, _, v)| v.clone())
        }
    }

    pub fn parse(text: &str) -> Table {
        let mut section = String::new();
        let mut entries = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                name.clone_into(&mut section);
            } else if let Some((key, value)) = line.split_once('=') {
                let value = value.trim().trim_matches('"').to_owned();
                entries.push((section.clone(), key.trim().to_owned(), value));
            }
        }
        Table(entries)
    }
}

fn disagreements(files: impl Fn(&str) -> String) -> Vec<String> {
    manifest_licenses(files)
        .into_iter()
        .filter(|(_, id)| id != LICENSE_ID)
        .map(|(at, id)| format!("{at} = {id:?}"))
        .collect()
}

#[test]
fn one_licence_file_and_every_manifest_agrees_with_it() {
    let license = read("LICENSE");
    assert!(
        license.contains("Apache License") && license.contains("Version 2.0, January 2004"),
        "LICENSE is not the Apache License 2.0 text"
    );
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "LICENSE is not the whole text"
    );
    let wrong = disagreements(read);
    assert!(
        wrong.is_empty(),
        "manifests not saying {LICENSE_ID}: {wrong:?}"
    );
}

#[test]
fn a_manifest_with_another_licence_is_caught() {
    let mit = |path: &str| {
        let text = read(path);
        if path == "openapi.yaml" {
            text.replace("identifier: Apache-2.0", "identifier: MIT")
        } else {
            text
        }
    };
    assert_eq!(
        disagreements(mit),
        ["openapi.yaml info.license.identifier = \"MIT\""]
    );
}

/// Committed text files (not the tool trees, build output or git's own).
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    const SKIP: [&str; 5] = ["target", ".venv", "node_modules", ".git", ".aws-sam"];
    const TEXT: [&str; 9] = ["rs", "md", "toml", "yaml", "yml", "json", "py", "txt", "sh"];
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !SKIP.contains(&name.as_str()) {
                text_files(&path, out);
            }
        } else if name == "Makefile"
            || path
                .extension()
                .is_some_and(|e| TEXT.contains(&e.to_string_lossy().as_ref()))
        {
            out.push(path);
        }
    }
}

/// The parent directory's `shared/`, spelled in two pieces so that this file does not point
/// there itself.
const OUTSIDE: &str = concat!("..", "/shared/");

/// A path outside the repository in `text` (the design contract's old place).
fn points_outside(text: &str) -> Option<&'static str> {
    [OUTSIDE, "shared/DESIGN.md"]
        .into_iter()
        .find(|needle| text.contains(needle))
}

#[test]
fn no_committed_file_points_outside_the_repository() {
    assert!(
        root().join("docs/DESIGN.md").is_file(),
        "docs/DESIGN.md is the contract"
    );
    let mut files = Vec::new();
    text_files(&root(), &mut files);
    let this_file = Path::new(file!()).file_name().expect("file name");
    let offenders: Vec<String> = files
        .iter()
        .filter(|p| p.file_name() != Some(this_file))
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let needle = points_outside(&text)?;
            Some(format!("{} ({needle})", path.display()))
        })
        .collect();
    assert!(offenders.is_empty(), "{offenders:#?}");
    assert_eq!(
        points_outside(&format!("the contract: {OUTSIDE}DESIGN.md")),
        Some(OUTSIDE)
    );
}

/// The generated files (`openapi.yaml`, `docs/ROUTES.md`) are what the route declarations
/// generate today: `make generate` rewrites them.
#[test]
fn generated_files_are_current() {
    let mut stale = Vec::new();
    for (file, text) in ftgo_infra::api_description::generated_files() {
        let text = text.unwrap_or_else(|problem| panic!("{file} does not generate: {problem}"));
        if read(file) != text {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from what the route declarations generate: run `make generate` \
         and commit the result"
    );
}
