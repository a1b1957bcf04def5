//! The `ftgo` binary as people and scripts meet it: every data command takes `--json`, shell
//! completions cover the whole tree, `ftgo token --json` mints what the gateway verifies, and
//! the local stack's commands are handed over to `ftgo-local` (arguments, exit status, `--log`)
//! or answered with how to install it. The commands against a running stack are exercised by
//! `tests/e2e_local_stack.rs` (order, delivery, history, seed, status, dlq) and
//! `tests/e2e_archive_backfill.rs` (archive verify).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test's set-up stops the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ftgo_cli::token::{DEFAULT_SECRET, LocalJwt};

const FTGO: &str = env!("CARGO_BIN_EXE_ftgo");

fn ftgo(args: &[&str]) -> Output {
    Command::new(FTGO)
        .args(args)
        .env_remove("FTGO_LOCAL_JWT_SECRET")
        .output()
        .expect("ftgo runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands `ftgo --help` lists.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect()
}

/// Every command, sorted by what it prints: data (`--json` required), a script, or the local
/// stack's own (handed over). A new command fails here until it is placed; the body-free
/// `order`/`delivery` verbs of the declared routes are added by [`data_commands`].
const DATA: &[&[&str]] = &[
    &["token"],
    &["order", "create"],
    &["order", "revise"],
    &["order", "get"],
    &["history"],
    &["seed"],
    &["status"],
    &["dlq", "list"],
    &["dlq", "redrive"],
    &["dlq", "discard"],
    &["replay"],
    &["verify-view"],
    &["archive", "verify"],
    &["archive", "backfill"],
    &["snapshot-view"],
];
const SCRIPT: &[&str] = &["completions"];
const LOCAL: &[&str] = &["run", "provision", "gateway", "bridge", "lambda-config"];

/// [`DATA`] with, after each noun's own verbs, one verb per declared route under it
/// (`ftgo_cli::route_verbs`, in declaration order), as `ftgo <noun> --help` lists them.
fn data_commands() -> Vec<Vec<&'static str>> {
    let mut commands: Vec<Vec<&str>> = Vec::new();
    for noun in ["order", "delivery"] {
        let own = DATA.iter().filter(|c| c[0] == noun).map(|c| c.to_vec());
        let routes = ftgo_cli::route_verbs::verbs(noun).map(|(_, verb, _)| vec![noun, verb]);
        commands.extend(own.chain(routes));
    }
    let others = DATA
        .iter()
        .filter(|c| !["order", "delivery"].contains(&c[0]));
    commands.extend(others.map(|c| c.to_vec()));
    commands
}

#[test]
fn every_command_that_prints_data_takes_json() {
    let top = subcommands(&stdout(&ftgo(&["--help"])));
    let data = data_commands();
    let placed: Vec<&str> = data
        .iter()
        .map(|c| c[0])
        .chain(SCRIPT.iter().copied())
        .chain(LOCAL.iter().copied())
        .collect();
    for command in &top {
        assert!(
            placed.contains(&command.as_str()),
            "`ftgo {command}` is new: place it in DATA, SCRIPT or LOCAL"
        );
    }
    for command in &data {
        let first: Vec<&Vec<&str>> = data.iter().filter(|c| c[0] == command[0]).collect();
        if command.len() > 1 {
            let listed = subcommands(&stdout(&ftgo(&[command[0], "--help"])));
            assert_eq!(
                listed,
                first.iter().map(|c| c[1]).collect::<Vec<_>>(),
                "`ftgo {} --help`",
                command[0]
            );
        }
        let mut args = command.clone();
        args.push("--help");
        let help = stdout(&ftgo(&args));
        assert!(
            help.contains("--json"),
            "`ftgo {}` has no --json:\n{help}",
            command.join(" ")
        );
    }
}

#[test]
fn completions_cover_the_whole_command_tree_in_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = ftgo(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = stdout(&out);
        for word in [
            "order", "delivery", "history", "status", "dlq", "replay", "run", "json",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    assert!(stdout(&ftgo(&["completions", "bash"])).contains("complete -F"));
    let refused = ftgo(&["completions", "tcsh"]);
    assert!(!refused.status.success(), "an unknown shell is refused");
}

#[test]
fn token_json_carries_a_token_the_local_gateway_accepts() {
    let out = ftgo(&[
        "token",
        "--sub",
        "c-9",
        "--scope",
        "ftgo/courier",
        "--ttl",
        "5m",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["sub"], "c-9");
    assert_eq!(answer["scopes"], serde_json::json!(["ftgo/courier"]));
    assert_eq!(answer["expiresInSeconds"], 300);
    let claims = LocalJwt::new(DEFAULT_SECRET)
        .verify(answer["token"].as_str().expect("token"))
        .expect("the gateway's secret verifies it");
    assert_eq!(claims.claims["sub"], "c-9");
    let plain = stdout(&ftgo(&["token", "--sub", "c-9"]));
    assert_eq!(
        plain.lines().count(),
        1,
        "a bare token without --json: {plain}"
    );
    assert_eq!(plain.trim().split('.').count(), 3, "{plain}");
}

/// A stand-in `ftgo-local` that prints its arguments and `FTGO_LOG`, and exits with 7.
fn fake_local(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("ftgo-local");
    std::fs::write(
        &file,
        "#!/bin/sh\necho \"args:$*\"\necho \"log:$FTGO_LOG\"\nexit 7\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    file
}

#[test]
fn the_local_stack_commands_are_handed_over_to_ftgo_local() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("handover-fake");
    let local = fake_local(&dir);
    for command in LOCAL {
        let out = Command::new(FTGO)
            .args(["--log", "debug", command, "--api-port", "3500", "--help"])
            .env("FTGO_LOCAL", &local)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(7),
            "ftgo-local's exit status: {out:?}"
        );
        let text = stdout(&out);
        assert!(
            text.contains(&format!("args:{command} --api-port 3500 --help")),
            "{text}"
        );
        assert!(text.contains("log:debug"), "{text}");
    }
}

#[test]
fn without_ftgo_local_run_says_how_to_get_it() {
    // `ftgo` alone in a directory, with nothing on PATH: nothing to hand over to.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("handover-alone");
    std::fs::create_dir_all(&dir).unwrap();
    let alone = dir.join("ftgo");
    let _ = std::fs::remove_file(&alone);
    std::fs::copy(FTGO, &alone).unwrap();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(&alone)
        .args(["run"])
        .env("PATH", &empty)
        .env_remove("FTGO_LOCAL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("ftgo-local"), "{error}");
    assert!(error.contains("cargo install --path infra"), "{error}");
    let _ = std::fs::remove_file(&alone);
}

#[test]
fn the_cli_links_no_emulator_code() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "ftgo-cli", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = stdout(&out);
    assert!(
        tree.contains("ftgo-aws"),
        "the CLI is built on ftgo-aws:\n{tree}"
    );
    for emulator in ["ftgo-infra ", "axum ", "nix ", "matchit "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(emulator)),
            "`cargo tree -p ftgo-cli` shows {emulator}"
        );
    }
}
