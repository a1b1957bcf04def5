//! `ftgo`: the local stack's command-line tool.
//!
//! ```text
//! ftgo run        the whole local stack (moto, provisioning, cargo lambda watch, API, bridge)
//! ftgo provision  create the template's tables, buckets, queues and secrets at an endpoint
//! ftgo gateway    only the local API gateway, in front of a running `cargo lambda watch`
//! ftgo bridge     only the event-source bridge, between an endpoint and `cargo lambda watch`
//! ftgo replay     rebuild a view table from the event archive (in process, or over the replay queue)
//! ftgo verify-view  compare a view table with the fold of the events
//! ftgo archive    verify the archive against the event table, backfill what it misses
//! ftgo snapshot-view  a compacted snapshot of a view table at its replay watermark
//! ftgo lambda-config  write CargoLambda.toml (every function's environment for a plain
//!                 `cargo lambda watch` against `make run`'s emulator) from the template
//! ftgo token      print a local JWT for the local API gateway (`--sub <id> [--scope …] [--ttl …]`)
//! ftgo order      create|approve|reject|cancel|revise|get over the HTTP API (`--api`, `--token`)
//! ftgo delivery   pickup|deliver over the HTTP API
//! ftgo history    a consumer's order history, as a table (`--all` follows every page)
//! ftgo seed       demo orders over the HTTP API (`--orders N`)
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ftgo_infra::invoke::RuntimeInvoker;
use ftgo_infra::provision::{ProvisionOptions, provision};
use ftgo_infra::replay_cmd;
use ftgo_infra::stack::{
    LocalStack, StackOptions, claim, local_bridge, local_gateway, resolve_root, sdk_config,
    shutdown_signal,
};
use ftgo_infra::template::{self, Stack, Template};

/// The FTGO local stack.
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
    /// Run the whole local stack until Ctrl-C: moto server, the template's resources, `cargo
    /// lambda watch`, the API gateway and the event-source bridge.
    Run(RunArgs),
    /// Create the template's tables, buckets, queues and secrets at an endpoint.
    Provision(ProvisionArgs),
    /// Serve the template's HTTP API in front of a running function runtime.
    Gateway(GatewayArgs),
    /// Poll the template's streams and queues and invoke their functions.
    Bridge(RuntimeArgs),
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
    /// Tables, queue and DLQ depths, stream consumers' progress and projection lag.
    Status(ftgo_infra::ops::StatusArgs),
    /// Look at (`list`) and re-drive (`redrive`) the dead-letter queues.
    Dlq(ftgo_infra::ops::DlqArgs),
    /// Write CargoLambda.toml from the template: every function's environment on `make run`'s
    /// emulator, for a plain `cargo lambda watch` (`--check`: exit 1 when it has drifted).
    LambdaConfig(LambdaConfigArgs),
    /// Print a local JWT (HS256, `FTGO_LOCAL_JWT_SECRET`) for the local API gateway.
    Token(ftgo_infra::token::TokenArgs),
    #[command(flatten)]
    Api(ftgo_infra::api_cmd::ApiCommand),
}

#[derive(Args, Debug, Clone)]
struct TemplateArgs {
    /// The workspace root (default: the nearest ancestor with template.yaml and Cargo.toml).
    #[arg(long)]
    root: Option<PathBuf>,
    /// The SAM template (default: <root>/template.yaml).
    #[arg(long)]
    template: Option<PathBuf>,
    /// The stack name resources are named for.
    #[arg(long, default_value = template::LOCAL_STACK_NAME)]
    stack: String,
}

impl TemplateArgs {
    fn root(&self) -> Result<PathBuf, String> {
        resolve_root(self.root.as_deref())
    }

    fn template_path(&self) -> Result<PathBuf, String> {
        match &self.template {
            Some(t) => Ok(t.clone()),
            None => Ok(self.root()?.join("template.yaml")),
        }
    }

    fn load(&self, endpoint: &str) -> Result<Template, String> {
        let path = self.template_path()?;
        Template::load(&path, Stack::named(&self.stack).with_endpoint(endpoint))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    template: TemplateArgs,
    #[command(flatten)]
    stack: StackOptions,
    /// Also stop when standard input closes (for supervisors and tests).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

#[derive(Args, Debug)]
struct LambdaConfigArgs {
    #[command(flatten)]
    template: TemplateArgs,
    /// Only check that the file matches the template; change nothing.
    #[arg(long)]
    check: bool,
}

#[derive(Args, Debug)]
struct ProvisionArgs {
    #[command(flatten)]
    template: TemplateArgs,
    /// The AWS endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    endpoint: String,
    /// Recreate what exists (tables deleted and created again, buckets emptied, queues purged).
    #[arg(long)]
    recreate: bool,
}

/// The template, the AWS endpoint and the function runtime the gateway and the bridge work with.
#[derive(Args, Debug)]
struct RuntimeArgs {
    #[command(flatten)]
    template: TemplateArgs,
    /// The AWS endpoint: the template is resolved for it, the bridge polls its streams and queues.
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    endpoint: String,
    /// Base URL of the function runtime (`cargo lambda watch`).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    functions_url: String,
    /// Seconds an invocation may take.
    #[arg(long, default_value_t = 600)]
    invoke_timeout: u64,
}

impl RuntimeArgs {
    fn invoker(&self) -> Arc<RuntimeInvoker> {
        let timeout = Duration::from_secs(self.invoke_timeout);
        Arc::new(RuntimeInvoker::new(&self.functions_url, timeout))
    }
}

#[derive(Args, Debug)]
struct GatewayArgs {
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Address to serve the HTTP API on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ftgo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async_main());
    // A blocking read of standard input (`--exit-on-stdin-close`) must not keep us alive.
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

async fn async_main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},aws_config=warn,aws_smithy_runtime=warn,hyper=warn",
        cli.log
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let command = match cli.command {
        Command::Api(command) => return ftgo_infra::api_cmd::run(command).await,
        other => other,
    };
    match dispatch(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ftgo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> Result<(), String> {
    match command {
        Command::Run(args) => run(args).await,
        Command::Replay(args) => replay_cmd::replay(args).await,
        Command::VerifyView(args) => replay_cmd::verify_view(args).await,
        Command::Archive(args) => replay_cmd::archive(args).await,
        Command::SnapshotView(args) => replay_cmd::snapshot_view(args).await,
        Command::Status(args) => ftgo_infra::ops::status(args).await,
        Command::Dlq(args) => ftgo_infra::ops::dlq(args).await,
        Command::Token(args) => args.run(),
        Command::LambdaConfig(args) => lambda_config(&args),
        // Exit codes of their own: run by `async_main`.
        Command::Api(_) => Err("an API command reached dispatch".to_owned()),
        Command::Provision(args) => {
            let template = args.template.load(&args.endpoint)?;
            let sdk = sdk_config(&args.endpoint, &template.stack().region).await;
            let options = if args.recreate {
                ProvisionOptions::everything().recreating()
            } else {
                ProvisionOptions::everything()
            };
            let done = provision(&sdk, &template, &options)
                .await
                .map_err(|e| e.to_string())?;
            for t in &done.tables {
                println!("table  {}{}", t.name, created(t.created));
            }
            for b in &done.buckets {
                println!("bucket {}{}", b.name, created(b.created));
            }
            for q in &done.queues {
                println!("queue  {}{}", q.url, created(q.created));
            }
            for s in &done.secrets {
                println!("secret {}{}", s.name, created(s.created));
            }
            Ok(())
        }
        Command::Gateway(args) => {
            let template = args.runtime.template.load(&args.runtime.endpoint)?;
            let listener = claim(args.listen).map_err(|e| e.to_string())?;
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
            let gateway =
                local_gateway(&template, args.runtime.invoker()).map_err(|e| e.to_string())?;
            println!("API http://{}", args.listen);
            gateway
                .serve(listener, shutdown_signal(false))
                .await
                .map_err(|e| e.to_string())
        }
        Command::Bridge(args) => {
            let template = args.template.load(&args.endpoint)?;
            let sdk = sdk_config(&args.endpoint, &template.stack().region).await;
            let bridge = local_bridge(&sdk, &template, args.invoker(), None);
            bridge
                .run(shutdown_signal(false), Duration::from_secs(10))
                .await;
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> Result<(), String> {
    let root = args.template.root()?;
    let template = args.template.load(&args.stack.endpoint())?;
    let stdin_eof = args.exit_on_stdin_close;
    let start = LocalStack::start(root, template, args.stack);
    // Ctrl-C during start-up stops what was started.
    let stack = tokio::select! {
        started = start => started.map_err(|e| e.to_string())?,
        () = shutdown_signal(stdin_eof) => return Err("interrupted while starting".to_owned()),
    };
    println!("{}", stack.banner());
    println!("Ctrl-C stops everything.");
    stack
        .run_until(shutdown_signal(stdin_eof))
        .await
        .map_err(|e| e.to_string())?;
    println!("FTGO stopped.");
    Ok(())
}

fn created(yes: bool) -> &'static str {
    if yes { " (created)" } else { " (exists)" }
}

/// `ftgo lambda-config`: writes (or `--check`s) `<root>/CargoLambda.toml` from the template.
fn lambda_config(args: &LambdaConfigArgs) -> Result<(), String> {
    let endpoint = format!("http://{}", ftgo_infra::stack::DEFAULT_AWS_ADDR);
    let template = args.template.load(&endpoint)?;
    let want = ftgo_infra::stack::cargo_lambda_config(&template, &endpoint);
    let path = args
        .template
        .root()?
        .join(ftgo_infra::stack::CARGO_LAMBDA_CONFIG);
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    if got == want {
        println!("{} matches the template", path.display());
        return Ok(());
    }
    if args.check {
        return Err(format!(
            "{} has drifted from the template; run `{}`",
            path.display(),
            ftgo_infra::stack::CARGO_LAMBDA_CONFIG_COMMAND
        ));
    }
    std::fs::write(&path, want).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
