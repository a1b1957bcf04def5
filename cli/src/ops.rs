//! The operations subcommands of `ftgo`: `status` and `dlq list|redrive|discard` (reading and
//! re-driving is [`ftgo_aws::dlq`]'s; here the template's queues and the printing).
//!
//! Resource names come from the template for the stack (`--stack`, default `ftgo`), replaced by
//! the deployed stack's `Outputs` when CloudFormation knows it ([`crate::deployed`]); the AWS
//! endpoint, region and credentials are the SDK's own settings (`AWS_ENDPOINT_URL`,
//! `AWS_PROFILE`, `AWS_REGION`, ...), else the local stack `make run` announced
//! ([`crate::target`]). With an endpoint the target is an emulator, and test credentials are
//! used when none are configured.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use ftgo_aws::dlq::{self, DeadLetterQueue, Redriven};

use crate::target::StackArgs;
use crate::template::Template;

/// Where the stack is and how to reach it, and how to print.
#[derive(Args, Debug, Clone)]
pub struct Target {
    #[command(flatten)]
    stack: StackArgs,
    /// Print JSON (the default when standard output is not a terminal).
    #[arg(long)]
    json: bool,
}

impl Target {
    fn root(&self) -> Result<PathBuf, String> {
        self.stack.root()
    }

    async fn connect(&self) -> Result<(Template, aws_config::SdkConfig), String> {
        self.stack.connect().await
    }

    fn json(&self) -> bool {
        self.json || !std::io::stdout().is_terminal()
    }
}

/// `ftgo status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// The bridge's progress file (default: <root>/target/ftgo/bridge-progress.json).
    #[arg(long)]
    progress: Option<PathBuf>,
    /// The faults log of `ftgo run --faults` (default: <root>/target/ftgo/faults.jsonl).
    #[arg(long)]
    faults_log: Option<PathBuf>,
    /// Skip comparing the event table with the view (it reads both whole).
    #[arg(long)]
    no_projection: bool,
    /// The deployed name of a stream consumer, for its `IteratorAge` when there is no bridge
    /// progress (AWS): `<logical-id>=<name>`, repeatable. Rarely needed: the default is the
    /// stack's output `<logical-id>Name`, else the template's name (`FunctionName`, else the
    /// binary).
    #[arg(long = "function-name", value_name = "LOGICAL_ID=NAME", value_parser = logical_name)]
    function_names: Vec<(String, String)>,
}

fn logical_name(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((id, name)) if !id.is_empty() && !name.is_empty() => {
            Ok((id.to_owned(), name.to_owned()))
        }
        _ => Err(format!("`{text}`: expected <logical-id>=<function name>")),
    }
}

/// `ftgo dlq`.
#[derive(Args, Debug)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// List every dead letter with its reason (messages stay in their queues).
    List(DlqTarget),
    /// Re-apply dead letters through the projector's idempotent path; a message leaves its
    /// queue only once applied.
    Redrive(DlqTarget),
    /// Delete one dead letter, named by its message id, without applying it (an event beyond
    /// repair); the message is printed whole, to keep.
    Discard(DiscardArgs),
}

#[derive(Args, Debug)]
struct DiscardArgs {
    #[command(flatten)]
    target: DlqTarget,
    /// The SQS message id, as `ftgo dlq list` shows it.
    #[arg(long)]
    message_id: String,
}

#[derive(Args, Debug)]
struct DlqTarget {
    #[command(flatten)]
    target: Target,
    /// Only this queue (logical id, e.g. `ProjectorDlq`); default: every dead-letter queue.
    #[arg(long)]
    queue: Option<String>,
}

/// Runs `ftgo status`.
pub async fn status(args: StatusArgs) -> Result<(), String> {
    let (template, sdk) = args.target.connect().await?;
    let progress = match args.progress {
        Some(path) => path,
        None => crate::local::log_dir(&args.target.root()?).join(crate::local::PROGRESS_FILE),
    };
    let names: HashMap<String, String> = args.function_names.into_iter().collect();
    let consumers = crate::status::stream_consumers(&template, &HashMap::new());
    if let Some(id) = names
        .keys()
        .find(|id| !consumers.iter().any(|(c, _)| c == *id))
    {
        return Err(format!(
            "--function-name {id}: not a stream consumer of the template"
        ));
    }
    let faults_log = match args.faults_log {
        Some(path) => path,
        None => crate::local::log_dir(&args.target.root()?).join(crate::status::FAULTS_LOG),
    };
    let mut status =
        crate::status::collect(&sdk, &template, &progress, &names, !args.no_projection).await?;
    status.faults = crate::status::faults(&faults_log);
    if args.target.json() {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", crate::status::render(&status));
    }
    Ok(())
}

/// Runs `ftgo dlq list|redrive|discard`.
pub async fn dlq(args: DlqArgs) -> Result<(), String> {
    let (DlqCommand::List(target)
    | DlqCommand::Redrive(target)
    | DlqCommand::Discard(DiscardArgs { target, .. })) = &args.command;
    let (template, sdk) = target.target.connect().await?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut queues: Vec<DeadLetterQueue> = template
        .dead_letter_queues()
        .into_iter()
        .filter(|q| target.queue.as_ref().is_none_or(|id| &q.logical_id == id))
        .collect();
    if queues.is_empty() {
        return Err("no such dead-letter queue in the template".to_owned());
    }
    for queue in &mut queues {
        queue.url = dlq::queue_url(&sqs, &queue.name, &queue.url).await;
    }
    let json = target.target.json();
    let mut report = Vec::new();
    let mut kept = 0;
    match &args.command {
        DlqCommand::List(_) => {
            for queue in &queues {
                for letter in dlq::list(&sqs, queue).await? {
                    if !json {
                        println!(
                            "{:<14} {}  {}  {}",
                            letter.queue,
                            letter.message_id,
                            letter.kind(),
                            letter.subject
                        );
                        println!("    reason: {}", letter.reason);
                    }
                    report.push(letter_json(&letter));
                }
            }
        }
        DlqCommand::Discard(discard) => {
            let mut found = None;
            for queue in &queues {
                if let Some(letter) = dlq::discard(&sqs, queue, &discard.message_id).await? {
                    found = Some(letter);
                    break;
                }
            }
            let letter = found.ok_or_else(|| {
                format!(
                    "no dead letter {} in {}: nothing discarded",
                    discard.message_id,
                    queues
                        .iter()
                        .map(|q| q.logical_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            if !json {
                println!(
                    "{:<14} {}  {}  discarded; the message was:",
                    letter.queue, letter.message_id, letter.subject
                );
                println!("{}", letter.body);
            }
            report.push(letter_json(&letter));
        }
        DlqCommand::Redrive(_) => {
            let function = template
                .function_by_binary("order-history-projector")
                .ok_or("template.yaml has no order-history-projector function")?;
            let config = ftgo_aws::config::Config::from_lookup(|name| {
                function.environment.get(name).cloned()
            })
            .map_err(|e| e.to_string())?;
            let projector = ftgo_aws::projector::Projector::from_config(&sdk, &config)
                .map_err(|e| e.to_string())?;
            let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
            for queue in &queues {
                for (letter, outcome) in dlq::redrive(&sqs, &streams, &projector, queue).await? {
                    let (state, detail) = match &outcome {
                        Redriven::Applied { events } => {
                            ("applied", format!("{events} event(s); message deleted"))
                        }
                        Redriven::Kept(reason) => {
                            kept += 1;
                            ("kept", reason.clone())
                        }
                    };
                    if !json {
                        println!(
                            "{:<14} {}  {}  {state}: {detail}",
                            letter.queue, letter.message_id, letter.subject
                        );
                    }
                    report.push(serde_json::json!({
                        "queue": letter.queue, "messageId": letter.message_id,
                        "subject": letter.subject, "outcome": state, "detail": detail,
                    }));
                }
            }
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else if report.is_empty() {
        println!("no dead letters");
    }
    if kept > 0 {
        return Err(format!(
            "{kept} dead letter(s) could not be re-driven and stay queued"
        ));
    }
    Ok(())
}

/// A dead letter as `--json` prints it: queue, message id, kind, subject, reason and the body
/// (parsed when it is JSON).
fn letter_json(letter: &dlq::DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "queue": letter.queue, "messageId": letter.message_id,
        "kind": letter.kind(), "subject": letter.subject,
        "reason": letter.reason,
        "body": serde_json::from_str::<serde_json::Value>(&letter.body)
            .unwrap_or(serde_json::Value::String(letter.body.clone())),
    })
}
