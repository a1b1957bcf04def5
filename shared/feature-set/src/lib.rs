//! Nothing to use: this crate only asks for the workspace's features of third-party crates (see
//! its `Cargo.toml`), so that the functions built alone with `--features local` reuse what
//! `cargo test --workspace` compiled.
