//! Writes the files generated from the route declarations (`shared/domain/src/route.rs`):
//! `openapi.yaml` and `docs/ROUTES.md`, at the repository root. `make generate` runs it;
//! `infra/tests/repository.rs` (in `make lint`) fails when a checked-in copy drifts.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, text) in ftgo_infra::api_description::generated_files() {
        let written =
            text.and_then(|text| std::fs::write(root.join(file), text).map_err(|e| e.to_string()));
        match written {
            Ok(()) => println!("wrote {file}"),
            Err(problem) => {
                eprintln!("generate: {file}: {problem}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
