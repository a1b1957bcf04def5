//! `ftgo`: the FTGO command line (DESIGN §10). Links no emulator code: the local stack's
//! commands are handed over to `ftgo-local` ([`ftgo_cli::handover`]).
//!
//! ```text
//! ftgo token      print a local JWT for the local API gateway (`--sub <id> [--scope …] [--ttl …]`)
//! ftgo order      create|approve|reject|cancel|revise|get over the HTTP API (`--api`, `--token`)
//! ftgo delivery   pickup|deliver over the HTTP API
//! ftgo history    a consumer's order history, as a table (`--all` follows every page)
//! ftgo seed       demo orders over the HTTP API (`--orders N`)
//! ftgo status     tables, queue and DLQ depths, stream consumers' progress, projection lag
//! ftgo dlq        list|redrive|discard the dead-letter queues
//! ftgo replay     rebuild a view table from the event archive (in process, or over the replay queue)
//! ftgo verify-view  compare a view table with the fold of the events
//! ftgo archive    verify the archive against the event table, backfill what it misses
//! ftgo snapshot-view  a compacted snapshot of a view table at its replay watermark
//! ftgo completions  the shell completion script (bash, zsh, fish, elvish, powershell)
//! ftgo run|provision|gateway|bridge|lambda-config   the local stack: handed over to `ftgo-local`
//! ```
//!
//! Every command that prints data takes `--json` (one JSON document on standard output); `status`
//! and `dlq` print JSON whenever standard output is not a terminal.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use ftgo_cli::{api_cmd, completions, handover, ops, replay_cmd, runtime, token};

/// The FTGO command line: the HTTP API's commands, operations on a stack (local or in AWS), and
/// the local stack (`ftgo run`, through `ftgo-local`).
#[derive(Parser, Debug)]
#[command(name = "ftgo", version, about)]
struct Cli {
    /// Log filter (tracing-subscriber `EnvFilter` syntax).
    #[arg(long, env = "FTGO_LOG", default_value = "info", global = true)]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a local JWT (HS256, `FTGO_LOCAL_JWT_SECRET`) for the local API gateway.
    Token(token::TokenArgs),
    #[command(flatten)]
    Api(api_cmd::ApiCommand),
    /// Tables, queue and DLQ depths, stream consumers' progress and projection lag.
    Status(ops::StatusArgs),
    /// Look at (`list`), re-drive (`redrive`) and drop one of (`discard`) the dead-letter
    /// queues.
    Dlq(ops::DlqArgs),
    /// Rebuild a view table from the event archive: in this process, or (`--queue`) one
    /// message per archive partition on the replay queue, applied by `archive-replayer`.
    Replay(replay_cmd::ReplayArgs),
    /// Fold the event table (or the archive) and compare it with a view table item by item;
    /// exit 0 only when equal.
    VerifyView(replay_cmd::VerifyViewArgs),
    /// Compare the archive with the event table, or re-archive what it misses.
    Archive(replay_cmd::ArchiveArgs),
    /// Write a compacted snapshot of a replayed view table at its replay watermark to S3 (for
    /// `ftgo replay --from-snapshot`).
    SnapshotView(replay_cmd::SnapshotViewArgs),
    /// Print the shell completion script: `ftgo completions bash > ~/.local/share/bash-completion/completions/ftgo`.
    Completions(completions::CompletionsArgs),
    /// The local stack until Ctrl-C: moto server, the template's resources, `cargo lambda
    /// watch`, the API gateway and the event-source bridge (`ftgo-local run`; `ftgo run --help`).
    #[command(disable_help_flag = true)]
    Run(LocalArgs),
    /// Create the template's tables, buckets, queues and secrets at an endpoint
    /// (`ftgo-local provision`).
    #[command(disable_help_flag = true)]
    Provision(LocalArgs),
    /// Serve the template's HTTP API in front of a running function runtime
    /// (`ftgo-local gateway`).
    #[command(disable_help_flag = true)]
    Gateway(LocalArgs),
    /// Poll the template's streams and queues and invoke their functions (`ftgo-local bridge`).
    #[command(disable_help_flag = true)]
    Bridge(LocalArgs),
    /// Write CargoLambda.toml from the template (`ftgo-local lambda-config`).
    #[command(disable_help_flag = true)]
    LambdaConfig(LocalArgs),
}

/// The arguments of a local-stack command, handed to `ftgo-local` as they are.
#[derive(Args, Debug)]
struct LocalArgs {
    /// Passed to `ftgo-local` (`--help` for its flags).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

impl Command {
    /// The local stack's command and its arguments, when this is one.
    fn local(&self) -> Option<(&'static str, &[OsString])> {
        match self {
            Command::Run(a) => Some(("run", &a.args)),
            Command::Provision(a) => Some(("provision", &a.args)),
            Command::Gateway(a) => Some(("gateway", &a.args)),
            Command::Bridge(a) => Some(("bridge", &a.args)),
            Command::LambdaConfig(a) => Some(("lambda-config", &a.args)),
            _ => None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some((command, args)) = cli.command.local() {
        let log = std::env::args_os()
            .any(|a| a == "--log" || a.to_string_lossy().starts_with("--log="))
            .then_some(cli.log.as_str());
        return handover::hand_over(command, args, log);
    }
    if let Command::Completions(args) = &cli.command {
        completions::write(args.shell, &mut Cli::command(), &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    runtime::block_on("ftgo", async_main(cli))
}

async fn async_main(cli: Cli) -> ExitCode {
    ftgo_cli::logs::init(&cli.log);
    let result = match cli.command {
        // Exit codes of their own.
        Command::Api(command) => return api_cmd::run(command).await,
        Command::Token(args) => args.run(),
        Command::Status(args) => ops::status(args).await,
        Command::Dlq(args) => ops::dlq(args).await,
        Command::Replay(args) => replay_cmd::replay(args).await,
        Command::VerifyView(args) => replay_cmd::verify_view(args).await,
        Command::Archive(args) => replay_cmd::archive(args).await,
        Command::SnapshotView(args) => replay_cmd::snapshot_view(args).await,
        Command::Completions(_)
        | Command::Run(_)
        | Command::Provision(_)
        | Command::Gateway(_)
        | Command::Bridge(_)
        | Command::LambdaConfig(_) => Err("handled before the runtime starts".to_owned()),
    };
    runtime::exit_code("ftgo", result)
}
