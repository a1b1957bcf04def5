//! `ftgo-local`: the FTGO local stack's binary. The `ftgo` command line hands its local-stack
//! commands over to it (`ftgo run` runs `ftgo-local run`, found next to `ftgo` or on `PATH`);
//! it also runs on its own (`cargo run -p ftgo-infra -- run`).
//!
//! ```text
//! ftgo-local run        the whole local stack (moto, provisioning, cargo lambda watch, API, bridge)
//! ftgo-local provision  create the template's tables, buckets, queues and secrets at an endpoint
//! ftgo-local gateway    only the local API gateway, in front of a running `cargo lambda watch`
//! ftgo-local bridge     only the event-source bridge, between an endpoint and `cargo lambda watch`
//! ftgo-local lambda-config  write CargoLambda.toml (every function's environment for a plain
//!                       `cargo lambda watch` against `make run`'s emulator) from the template
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ftgo_infra::invoke::RuntimeInvoker;
use ftgo_infra::provision::{ProvisionOptions, provision};
use ftgo_infra::stack::{
    LocalStack, StackOptions, claim, local_bridge, local_gateway, resolve_root, sdk_config,
    shutdown_signal,
};
use ftgo_infra::template::{self, Stack, Template};
use serde_json::json;

/// The FTGO local stack (what `ftgo run`, `provision`, `gateway`, `bridge` and `lambda-config`
/// hand over to).
#[derive(Parser, Debug)]
#[command(name = "ftgo-local", version, about)]
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
    /// Write CargoLambda.toml from the template: every function's environment on `make run`'s
    /// emulator, for a plain `cargo lambda watch` (`--check`: exit 1 when it has drifted).
    LambdaConfig(LambdaConfigArgs),
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
    /// Print what was provisioned as JSON: `{"tables":[{"name","created"}],"buckets":[…],
    /// "queues":[{"url","created"}],"secrets":[…]}`.
    #[arg(long)]
    json: bool,
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
    ftgo_cli::runtime::block_on("ftgo-local", async {
        let cli = Cli::parse();
        ftgo_cli::logs::init(&cli.log);
        ftgo_cli::runtime::exit_code("ftgo-local", dispatch(cli.command).await)
    })
}

async fn dispatch(command: Command) -> Result<(), String> {
    match command {
        Command::Run(args) => run(args).await,
        Command::LambdaConfig(args) => lambda_config(&args),
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
            if args.json {
                let entry = |name: &str, created: bool| json!({"name": name, "created": created});
                println!(
                    "{}",
                    json!({
                        "tables": done.tables.iter().map(|t| entry(&t.name, t.created)).collect::<Vec<_>>(),
                        "buckets": done.buckets.iter().map(|b| entry(&b.name, b.created)).collect::<Vec<_>>(),
                        "queues": done.queues.iter().map(|q| json!({"name": q.name, "url": q.url, "created": q.created})).collect::<Vec<_>>(),
                        "secrets": done.secrets.iter().map(|s| entry(&s.name, s.created)).collect::<Vec<_>>(),
                    })
                );
                return Ok(());
            }
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
