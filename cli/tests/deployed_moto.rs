//! `ftgo status` and `ftgo dlq` find a deployed stack's functions and queues from its
//! CloudFormation `Outputs` (`--stack`), against moto server's CloudFormation: a stack whose
//! queue CloudFormation names itself (`<stack>-<LogicalId>-<random>`, as AWS does without a
//! `QueueName`) and whose function names are literal outputs. A stack CloudFormation does not
//! know keeps the template's names at an emulator endpoint (the local stack).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test's set-up stops the test loudly"
)]

#[path = "../../infra/tests/common/required.rs"]
mod required;

#[path = "common/moto.rs"]
mod moto;

use std::path::PathBuf;

use ftgo_cli::local::sdk_config;
use ftgo_cli::status::stream_consumers;
use ftgo_cli::target::StackArgs;

const DEPLOYED: &str = r#"
Resources:
  GeneratedDlq:
    Type: AWS::SQS::Queue
Outputs:
  OrderHistoryProjectorFunctionName:
    Value: !Sub "${AWS::StackName}-OrderHistoryProjectorFunction-Q1w2E3r4"
  EventArchiverFunctionName:
    Value: !Sub "${AWS::StackName}-EventArchiverFunction-Z9x8C7v6"
  ProjectorDlqUrl:
    Value: !Ref GeneratedDlq
"#;

fn args(moto: &moto::Moto, stack: &str) -> StackArgs {
    StackArgs {
        root: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")),
        template: None,
        stack: stack.to_owned(),
        endpoint: Some(moto.endpoint.clone()),
    }
}

#[tokio::test]
async fn status_and_dlq_find_the_functions_and_queues_of_a_deployed_stack_from_its_outputs() {
    let moto = moto::moto().expect("moto server (.venv; `make .venv`)");
    let stack = format!("ftgo-deployed-{}", uuid::Uuid::new_v4().simple());
    let sdk = sdk_config(&moto.endpoint, "us-east-1").await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    cloudformation
        .create_stack()
        .stack_name(&stack)
        .template_body(DEPLOYED)
        .send()
        .await
        .expect("CreateStack");

    let (template, _) = args(&moto, &stack).connect().await.expect("connect");

    // The stream consumers' names, for their IteratorAge: the generated ones, without a flag.
    let consumers = stream_consumers(&template, &Default::default());
    assert_eq!(
        consumers,
        [
            (
                "OrderHistoryProjectorFunction".to_owned(),
                format!("{stack}-OrderHistoryProjectorFunction-Q1w2E3r4")
            ),
            (
                "EventArchiverFunction".to_owned(),
                format!("{stack}-EventArchiverFunction-Z9x8C7v6")
            ),
        ]
    );

    // `ftgo dlq list` reads the queue CloudFormation created and named, not `<stack>-projector-dlq`.
    let dlq = template
        .dead_letter_queues()
        .into_iter()
        .find(|q| q.logical_id == "ProjectorDlq")
        .expect("ProjectorDlq");
    assert!(
        dlq.name.contains("GeneratedDlq"),
        "the generated queue: {dlq:?}"
    );
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    sqs.send_message()
        .queue_url(&dlq.url)
        .message_body(r#"{"reason":"a dead letter of the deployed stack"}"#)
        .send()
        .await
        .expect("SendMessage to the output's URL");
    let letters = ftgo_aws::dlq::list(&sqs, &dlq).await.expect("dlq list");
    assert_eq!(letters.len(), 1, "{letters:?}");

    // A queue without an output keeps the template's name for the stack.
    let replay = template.queue("ReplayDlq").expect("ReplayDlq");
    assert_eq!(replay.name, format!("{stack}-replay-dlq"));
}

#[tokio::test]
async fn a_stack_cloudformation_does_not_know_keeps_the_template_names_at_an_emulator() {
    let moto = moto::moto().expect("moto server (.venv; `make .venv`)");
    let (template, _) = args(&moto, "ftgo").connect().await.expect("connect");
    let consumers = stream_consumers(&template, &Default::default());
    assert_eq!(
        consumers,
        [
            (
                "OrderHistoryProjectorFunction".to_owned(),
                "order-history-projector".to_owned()
            ),
            (
                "EventArchiverFunction".to_owned(),
                "event-archiver".to_owned()
            ),
        ]
    );
    let dlq = template.queue("ProjectorDlq").expect("ProjectorDlq");
    assert_eq!(dlq.name, "ftgo-projector-dlq");
}
