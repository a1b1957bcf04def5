//! Tests of the template resolution against `template.yaml` and small inline templates.

use super::*;
use std::time::Duration;

fn local() -> Template {
    Template::load_default(Stack::local().with_endpoint("http://127.0.0.1:4566"))
        .expect("template.yaml resolves")
}

#[test]
fn tables_are_named_for_the_stack_with_their_keys_stream_and_index() {
    let template = local();
    let names: Vec<&str> = template.tables().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["ftgo-events", "ftgo-snapshots", "ftgo-order-history"]
    );

    let events = template.table("EventsTable").expect("EventsTable");
    let key = |name: &str, key_type| KeyElement {
        attribute_name: name.into(),
        key_type,
    };
    assert_eq!(
        events.key_schema,
        [
            key("streamId", KeyType::Hash),
            key("version", KeyType::Range)
        ]
    );
    let attribute = |name: &str, attribute_type| AttributeDefinition {
        attribute_name: name.into(),
        attribute_type,
    };
    assert_eq!(
        events.attribute_definitions,
        [
            attribute("streamId", AttributeType::S),
            attribute("version", AttributeType::N)
        ]
    );
    assert_eq!(
        events
            .stream_specification
            .as_ref()
            .map(|s| &s.stream_view_type),
        Some(&StreamViewType::NewImage)
    );

    let snapshots = template.table("SnapshotsTable").expect("SnapshotsTable");
    assert_eq!(snapshots.key_schema, [key("streamId", KeyType::Hash)]);
    assert_eq!(snapshots.stream_specification, None);

    let history = template
        .table("OrderHistoryTable")
        .expect("OrderHistoryTable");
    assert_eq!(history.partition_key(), Some("orderId"));
    let [index] = history.global_secondary_indexes.as_slice() else {
        panic!("one GSI expected: {:?}", history.global_secondary_indexes);
    };
    assert_eq!(
        index.name,
        "ftgo-order-history-by-consumer-id-and-creation-time"
    );
    assert_eq!(
        index.key_schema,
        [
            key("consumerId", KeyType::Hash),
            key("creationDate", KeyType::Range)
        ]
    );
    assert_eq!(index.projection.projection_type, ProjectionType::All);
    assert!(
        history
            .attribute_definitions
            .contains(&attribute("creationDate", AttributeType::N))
    );
}

#[test]
fn another_stack_name_renames_everything() {
    let template = Template::load_default(Stack::named("prod")).expect("resolves");
    assert_eq!(
        template.table("EventsTable").map(|t| t.name.as_str()),
        Some("prod-events")
    );
    assert_eq!(template.buckets()[0].name, "prod-event-archive");
    assert_eq!(
        template.queue("ReplayQueue").map(|q| q.url.as_str()),
        Some("https://sqs.us-east-1.amazonaws.com/123456789012/prod-replay")
    );
    let env = &template.functions()[0].environment;
    assert_eq!(
        env.get("ORDER_HISTORY_BY_CONSUMER_INDEX")
            .map(String::as_str),
        Some("prod-order-history-by-consumer-id-and-creation-time")
    );
}

#[test]
fn bucket_and_queues_are_declared_with_redrive() {
    let template = local();
    let [bucket] = template.buckets() else {
        panic!("one bucket expected: {:?}", template.buckets());
    };
    assert_eq!(bucket.logical_id, "EventArchiveBucket");
    assert_eq!(bucket.name, "ftgo-event-archive");

    let dlq = template.queue("ProjectorDlq").expect("ProjectorDlq");
    assert_eq!(dlq.name, "ftgo-projector-dlq");
    assert_eq!(
        dlq.url,
        "http://127.0.0.1:4566/123456789012/ftgo-projector-dlq"
    );
    assert_eq!(
        dlq.arn,
        "arn:aws:sqs:us-east-1:123456789012:ftgo-projector-dlq"
    );

    let replay = template.queue("ReplayQueue").expect("ReplayQueue");
    assert_eq!(replay.name, "ftgo-replay");
    let redrive = replay.redrive.as_ref().expect("redrive");
    assert_eq!(redrive.dead_letter_queue, "ReplayDlq");
    assert!(redrive.max_receive_count >= 1);
    let replayer = template
        .function_by_binary("archive-replayer")
        .expect("replayer");
    let visibility: u32 = replay.attributes["VisibilityTimeout"]
        .parse()
        .expect("VisibilityTimeout");
    assert!(
        visibility >= replayer.timeout,
        "{visibility} < {}",
        replayer.timeout
    );
}

#[test]
fn functions_have_binaries_and_the_conventional_environment() {
    let template = local();
    let binaries: Vec<&str> = template
        .functions()
        .iter()
        .map(|f| f.binary.as_str())
        .collect();
    assert_eq!(
        binaries,
        [
            "order-commands",
            "delivery-commands",
            "order-history-query",
            "order-history-projector",
            "event-archiver",
            "archive-replayer",
            "archive-backfiller"
        ]
    );
    // Every function runs the same way (SAM `Globals`, not overridden per function).
    let globals = &template.document()["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    for function in template.functions() {
        let own = &template.document()["Resources"][function.logical_id.as_str()]["Properties"];
        assert!(own.get("Runtime").is_none() && own.get("Handler").is_none());
        let env = &function.environment;
        let expected = [
            ("EVENTS_TABLE", "ftgo-events"),
            ("SNAPSHOTS_TABLE", "ftgo-snapshots"),
            ("ORDER_HISTORY_TABLE", "ftgo-order-history"),
            (
                "ORDER_HISTORY_BY_CONSUMER_INDEX",
                "ftgo-order-history-by-consumer-id-and-creation-time",
            ),
            ("ARCHIVE_BUCKET", "ftgo-event-archive"),
            (
                "PROJECTOR_DLQ_URL",
                "http://127.0.0.1:4566/123456789012/ftgo-projector-dlq",
            ),
            (
                "REPLAY_QUEUE_URL",
                "http://127.0.0.1:4566/123456789012/ftgo-replay",
            ),
            ("SNAPSHOT_INTERVAL", "100"),
            // The local stack reads roles from groups and scopes (LOCAL_PARAMETERS).
            ("ROLE_CLAIMS", "cognito:groups,scope"),
        ];
        for (name, value) in expected {
            assert_eq!(env.get(name).map(String::as_str), Some(value), "{name}");
        }
        assert!(
            !env.contains_key("PAGE_TOKEN_SECRET"),
            "no key in the environment"
        );
        assert_eq!(
            env.get("PAGE_TOKEN_SECRET_ID").map(String::as_str),
            (function.binary == "order-history-query").then_some("ftgo-page-token-key"),
            "only the query function names the page-token secret"
        );
    }
}

#[test]
fn the_page_token_secret_is_generated_and_named_for_the_stack() {
    let template = local();
    let [secret] = template.secrets() else {
        panic!("one secret expected: {:?}", template.secrets());
    };
    assert_eq!(secret.logical_id, "PageTokenKey");
    assert_eq!(secret.name, "ftgo-page-token-key");
    assert_eq!(secret.secret_string, None, "never a value in the template");
    assert_eq!(secret.generate.password_length, Some(64));
    assert_eq!(secret.generate.exclude_punctuation, Some(true));
    let other = Template::load_default(Stack::named("t1")).expect("resolves");
    assert_eq!(other.secrets()[0].name, "t1-page-token-key");
}

#[test]
fn roles_come_from_groups_alone_by_the_templates_default_and_from_both_locally() {
    let mut aws_like = Stack::local();
    aws_like.parameters.clear();
    let template = Template::load_default(aws_like).expect("resolves");
    for function in template.functions() {
        let claims = function.environment.get("ROLE_CLAIMS").map(String::as_str);
        assert_eq!(claims, Some("cognito:groups"), "{}", function.binary);
    }
    let groups_only = Stack::local().with_parameter("RoleClaims", "cognito:groups");
    let template = Template::load_default(groups_only).expect("resolves");
    let claims = template.functions()[0]
        .environment
        .get("ROLE_CLAIMS")
        .cloned();
    assert_eq!(claims.as_deref(), Some("cognito:groups"));
}

#[test]
fn parameter_overrides_flow_into_the_environment() {
    let stack = Stack::local().with_parameter("SnapshotInterval", "3");
    let template = Template::load_default(stack).expect("resolves");
    for function in template.functions() {
        assert_eq!(
            function
                .environment
                .get("SNAPSHOT_INTERVAL")
                .map(String::as_str),
            Some("3")
        );
    }
}

#[test]
fn routes_follow_the_design() {
    let template = local();
    let keys: Vec<(String, &str)> = template
        .routes()
        .iter()
        .map(|r| (r.route_key(), r.function.as_str()))
        .collect();
    // The route keys are the declared routes (`ftgo_domain::route`, the handlers' own list),
    // in any order, and each goes to the function its sample's folder names
    // (`events/<function>/…`).
    let mut declared: Vec<String> = keys.iter().map(|(key, _)| key.clone()).collect();
    let mut handled: Vec<String> = ftgo_aws::routes::keys()
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    declared.sort();
    handled.sort();
    assert_eq!(declared, handled);
    for (key, function) in &keys {
        let route = ftgo_domain::access::Action::of_route_key(key)
            .map(|action| action.route())
            .expect("a declared route");
        let owner = route.sample.split('/').next().unwrap_or_default();
        assert_eq!(*function, owner, "{key}");
    }
}

#[test]
fn batching_windows_are_the_templates_unless_capped() {
    let template = local();
    let archiver = |t: &Template| {
        t.stream_sources()
            .iter()
            .find(|s| s.binary == "event-archiver")
            .expect("archiver source")
            .policy
            .clone()
    };
    let window = archiver(&template).batching_window;
    assert!(
        window > Duration::from_secs(2),
        "the archiver waits {window:?}"
    );
    let uncapped: Vec<Duration> = template
        .stream_sources()
        .iter()
        .map(|s| s.policy.batching_window)
        .chain(template.queue_sources().iter().map(|q| q.batching_window))
        .collect();

    let capped = template
        .clone()
        .with_batching_windows_capped(Duration::from_secs(2));
    assert_eq!(archiver(&capped).batching_window, Duration::from_secs(2));
    assert_eq!(archiver(&capped).batch_size, archiver(&template).batch_size);
    let windows: Vec<Duration> = capped
        .stream_sources()
        .iter()
        .map(|s| s.policy.batching_window)
        .chain(capped.queue_sources().iter().map(|q| q.batching_window))
        .collect();
    let expected: Vec<Duration> = uncapped
        .iter()
        .map(|w| (*w).min(Duration::from_secs(2)))
        .collect();
    assert_eq!(windows, expected, "shorter windows are kept as they are");
}

#[test]
fn stream_sources_carry_lambda_settings() {
    let template = local();
    let projector = template
        .stream_sources()
        .iter()
        .find(|s| s.binary == "order-history-projector")
        .expect("projector source");
    assert_eq!(Some(&projector.table), template.table("EventsTable"));
    assert_eq!(projector.starting_position, StartingPosition::TrimHorizon);
    assert_eq!(
        projector.policy,
        StreamPolicy {
            batch_size: 100,
            // No batching window: the projector is invoked as soon as records arrive (issue 17).
            batching_window: Duration::ZERO,
            report_batch_item_failures: true,
            bisect_on_error: true,
            max_retry_attempts: None, // -1: retried until it passes (DESIGN §5)
            max_record_age: None,     // -1: no limit
        }
    );
    assert_eq!(projector.timeout, Duration::from_secs(60));
    assert_eq!(
        projector.on_failure.as_ref(),
        template.queue("ProjectorDlq")
    );
    assert!(projector.enabled);

    let archiver = template
        .stream_sources()
        .iter()
        .find(|s| s.binary == "event-archiver")
        .expect("archiver source");
    assert_eq!(archiver.table.logical_id, "EventsTable");
    assert_eq!(archiver.on_failure.as_ref(), template.queue("ArchiverDlq"));

    let [replay, backfill] = template.queue_sources() else {
        panic!("two SQS sources expected: {:?}", template.queue_sources());
    };
    assert_eq!(replay.binary, "archive-replayer");
    assert_eq!(replay.queue.logical_id, "ReplayQueue");
    assert_eq!(replay.batch_size, 1);
    assert!(replay.report_batch_item_failures);
    // The archiver's dead letters are consumed: each skipped range is backfilled.
    assert_eq!(backfill.binary, "archive-backfiller");
    assert_eq!(backfill.queue.logical_id, "ArchiverDlq");
    assert!(backfill.report_batch_item_failures);
    let dlq = template.queue("ArchiverDlq").expect("ArchiverDlq");
    let redrive = dlq
        .redrive
        .as_ref()
        .expect("unrepaired dead letters move on");
    assert!(template.queue(&redrive.dead_letter_queue).is_some());
    let backfiller = template
        .function_by_binary("archive-backfiller")
        .expect("backfiller");
    let visibility: u32 = dlq.attributes["VisibilityTimeout"]
        .parse()
        .expect("VisibilityTimeout in seconds");
    assert!(visibility >= backfiller.timeout);
}

#[test]
fn intrinsics_in_short_and_long_form() {
    let yaml = r#"
Parameters:
  Env:
    Type: String
    Default: dev
  Size:
    Type: Number
    Default: 7
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: {"Fn::Sub": "${AWS::StackName}-${Env}-t"}
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      StreamSpecification: {StreamViewType: KEYS_ONLY}
  Q:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Join ["-", [!Ref "AWS::StackName", !Select [1, !Split [",", "a,q,c"]]]]
      DelaySeconds: !Ref Size
"#;
    let template = Template::parse(yaml, Stack::named("s")).expect("parses");
    assert_eq!(
        template.table("T").map(|t| t.name.as_str()),
        Some("s-dev-t")
    );
    assert_eq!(template.queue("Q").map(|q| q.name.as_str()), Some("s-q"));
    let delay = template.queue("Q").map(|q| &q.attributes["DelaySeconds"]);
    assert_eq!(delay.map(String::as_str), Some("7"));

    let resolve = |text: &str| -> Result<Value> {
        let value: Value = serde_yaml_ng::from_str(text).expect("yaml");
        resolve::Resolver::new(template.document(), template.stack())?.resolve(&value, "fragment")
    };
    let s = |v: Value| v.as_str().map(str::to_owned);
    assert_eq!(
        s(resolve("!Ref T").expect("ref")).as_deref(),
        Some("s-dev-t")
    );
    assert_eq!(
        s(resolve("{Ref: Q}").expect("ref")).as_deref(),
        Some("https://sqs.us-east-1.amazonaws.com/123456789012/s-q")
    );
    assert_eq!(
        s(resolve("!GetAtt [Q, QueueName]").expect("getatt")).as_deref(),
        Some("s-q")
    );
    assert_eq!(
        s(resolve(r#"{"Fn::GetAtt": "T.StreamArn"}"#).expect("getatt")).as_deref(),
        Some(
            "arn:aws:dynamodb:us-east-1:123456789012:table/s-dev-t/stream/1970-01-01T00:00:00.000"
        )
    );
    assert_eq!(
        s(resolve(
            r#"!Sub ["${X}/${T.Arn}/${AWS::Region}/${AWS::AccountId}/${!Literal}", {X: !Ref Env}]"#
        )
        .expect("sub"))
        .as_deref(),
        Some(
            "dev/arn:aws:dynamodb:us-east-1:123456789012:table/s-dev-t/us-east-1/123456789012/${Literal}"
        )
    );
    assert!(resolve("!Ref Nowhere").is_err());
    assert!(resolve("!GetAtt Q.Nothing").is_err());
    assert!(resolve("!If [C, a, b]").is_err());
    assert!(resolve("!Sub '${Unclosed'").is_err());
}

#[test]
fn a_cycle_is_an_error_not_a_hang() {
    let yaml = r#"
Resources:
  A:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref B
  B:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Ref A
"#;
    let err = Template::parse(yaml, Stack::local()).expect_err("cycle");
    assert!(err.to_string().contains("too deep"), "{err}");
}

#[test]
fn event_sources_take_lambdas_defaults_and_parameter_values() {
    let yaml = r#"
Parameters:
  Batch:
    Type: Number
    Default: "7"
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  Q:
    Type: AWS::SQS::Queue
  F:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        S:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt T.StreamArn
            StartingPosition: LATEST
            BatchSize: !Ref Batch
            MaximumRetryAttempts: -1
        M:
          Type: SQS
          Properties:
            Queue: !GetAtt Q.Arn
"#;
    let template = Template::parse(yaml, Stack::named("s")).expect("parses");
    assert_eq!(template.function("F").map(|f| f.timeout), Some(3));
    let stream = &template.stream_sources()[0];
    assert_eq!(stream.starting_position, StartingPosition::Latest);
    assert_eq!(stream.policy.batch_size, 7);
    assert_eq!(stream.policy.max_retry_attempts, None);
    assert_eq!(stream.timeout, Duration::from_secs(3));
    assert!(stream.enabled && !stream.policy.bisect_on_error);
    let queue = &template.queue_sources()[0];
    assert_eq!(
        (queue.queue.logical_id.as_str(), queue.batch_size),
        ("Q", 10)
    );

    let bad = yaml.replace("LATEST", "AT_TIMESTAMP");
    let err = Template::parse(&bad, Stack::named("s")).expect_err("unsupported position");
    assert!(err.to_string().contains("Events.S.Properties"), "{err}");
}
