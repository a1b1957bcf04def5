//! Provisioning from `template.yaml`: every table (keys, GSI, stream), the bucket and the queues
//! appear on moto server, and the tables on DynamoDB Local, with the names the stack gives them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: an unwrap that fails stops the test loudly, which is what a test wants"
)]

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ProjectionType, StreamViewType};
use aws_sdk_sqs::types::QueueAttributeName;
use ftgo_infra::provision::{self, ProvisionOptions};
use ftgo_infra::template::{self, Template};
use ftgo_tests::{Emulator, TestStack, or_skip, unique_id};

/// Asserts that every table of the stack's template exists at the emulator as declared.
async fn assert_tables_match_the_template(emulator: &Emulator, stack: &TestStack) {
    let dynamodb = emulator.dynamodb().await;
    let template = stack.template();
    assert!(!template.tables().is_empty());
    for table in template.tables() {
        let described = dynamodb
            .describe_table()
            .table_name(&table.name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} on {}: {e:?}", table.name, emulator.kind()))
            .table
            .expect("table description");

        let keys: Vec<(String, KeyType)> = described
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
            .collect();
        let expected: Vec<(String, KeyType)> = table
            .key_schema
            .iter()
            .map(|k| (k.attribute_name.clone(), KeyType::from(k.key_type.as_str())))
            .collect();
        assert_eq!(keys, expected, "key schema of {}", table.name);

        let gsis = described.global_secondary_indexes();
        assert_eq!(
            gsis.len(),
            table.global_secondary_indexes.len(),
            "GSIs of {}",
            table.name
        );
        for index in &table.global_secondary_indexes {
            let found = gsis
                .iter()
                .find(|g| g.index_name() == Some(index.name.as_str()))
                .unwrap_or_else(|| panic!("GSI {} missing on {}", index.name, table.name));
            let keys: Vec<&str> = found
                .key_schema()
                .iter()
                .map(|k| k.attribute_name())
                .collect();
            let expected: Vec<&str> = index
                .key_schema
                .iter()
                .map(|k| k.attribute_name.as_str())
                .collect();
            assert_eq!(keys, expected, "GSI {} keys", index.name);
            assert_eq!(
                found.projection().and_then(|p| p.projection_type()),
                Some(&ProjectionType::from(
                    index.projection.projection_type.as_str()
                ))
            );
        }

        match table
            .stream_specification
            .as_ref()
            .map(|s| &s.stream_view_type)
        {
            Some(view) => {
                let spec = described
                    .stream_specification()
                    .unwrap_or_else(|| panic!("{} has no stream", table.name));
                assert!(spec.stream_enabled());
                assert_eq!(
                    spec.stream_view_type(),
                    Some(&StreamViewType::from(view.as_str()))
                );
                let arn = stack.stream_arn(&table.logical_id);
                assert_eq!(described.latest_stream_arn(), Some(arn));
            }
            None => assert!(
                described
                    .stream_specification()
                    .is_none_or(|s| !s.stream_enabled()),
                "{} should have no stream",
                table.name
            ),
        }
    }
}

#[tokio::test]
async fn moto_gets_every_table_with_gsi_and_stream_named_for_stack_ftgo() {
    let moto = Emulator::moto().await;
    let stack = moto.stack();
    assert_eq!(stack.name(), template::LOCAL_STACK_NAME);
    assert_eq!(stack.table_name("EventsTable"), "ftgo-events");
    assert_eq!(stack.table_name("SnapshotsTable"), "ftgo-snapshots");
    assert_eq!(stack.table_name("OrderHistoryTable"), "ftgo-order-history");
    let history = stack.template().table("OrderHistoryTable").expect("table");
    assert!(
        history
            .global_secondary_indexes
            .iter()
            .any(|i| i.name == "ftgo-order-history-by-consumer-id-and-creation-time")
    );
    assert!(
        stack
            .stream_arn("EventsTable")
            .contains("ftgo-events/stream/")
    );
    assert_tables_match_the_template(moto, stack).await;
}

#[tokio::test]
async fn moto_gets_the_archive_bucket_and_every_queue_with_its_attributes() {
    let moto = Emulator::moto().await;
    let stack = moto.stack();

    let bucket = stack.bucket_name("EventArchiveBucket");
    assert_eq!(bucket, "ftgo-event-archive");
    moto.s3()
        .await
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("archive bucket exists");

    let sqs = moto.sqs().await;
    for queue in stack.template().queues() {
        let url = sqs
            .get_queue_url()
            .queue_name(&queue.name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("queue {}: {e:?}", queue.name))
            .queue_url
            .expect("queue url");
        assert_eq!(url, stack.queue_url(&queue.logical_id));
    }
    assert!(
        stack
            .queue_url("ProjectorDlq")
            .ends_with("/ftgo-projector-dlq")
    );

    let replay = stack.template().queue("ReplayQueue").expect("ReplayQueue");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(stack.queue_url("ReplayQueue"))
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    assert_eq!(
        attributes.get(&QueueAttributeName::VisibilityTimeout),
        replay.attributes.get("VisibilityTimeout")
    );
    let redrive = attributes
        .get(&QueueAttributeName::RedrivePolicy)
        .expect("redrive policy");
    let dlq_arn = &stack
        .provisioned()
        .queue("ReplayDlq")
        .expect("ReplayDlq")
        .arn;
    assert!(redrive.contains(dlq_arn.as_str()), "{redrive}");

    // The functions' environment points at what was provisioned.
    let env = stack.function_env("order-history-projector");
    assert_eq!(
        env.get("PROJECTOR_DLQ_URL").map(String::as_str),
        Some(stack.queue_url("ProjectorDlq"))
    );
    assert_eq!(
        env.get("REPLAY_QUEUE_URL").map(String::as_str),
        Some(stack.queue_url("ReplayQueue"))
    );
    assert_eq!(
        env.get("EVENTS_TABLE").map(String::as_str),
        Some("ftgo-events")
    );
    assert_eq!(
        env.get("AWS_ENDPOINT_URL").map(String::as_str),
        Some(moto.endpoint())
    );
}

#[tokio::test]
async fn dynamodb_local_gets_every_table_with_gsi_and_stream() {
    let local = or_skip!(Emulator::dynamodb_local().await);
    let stack = local.stack();
    assert!(stack.provisioned().buckets.is_empty());
    assert!(stack.provisioned().queues.is_empty());
    assert_tables_match_the_template(local, stack).await;
}

#[tokio::test]
async fn fresh_stacks_get_their_own_tables_on_every_emulator() {
    for emulator in ftgo_tests::emulators().await {
        let a = emulator.fresh_stack().await.expect("fresh stack");
        let b = emulator.fresh_stack().await.expect("fresh stack");
        assert_ne!(a.table_name("EventsTable"), b.table_name("EventsTable"));
        assert!(a.table_name("EventsTable").starts_with(a.name()));
        assert_tables_match_the_template(emulator, &a).await;
        assert_eq!(
            a.provisioned().buckets.len(),
            if emulator.kind().has_s3_and_sqs() {
                1
            } else {
                0
            }
        );
    }
}

#[tokio::test]
async fn fresh_stack_parameters_reach_the_function_environment() {
    let moto = Emulator::moto().await;
    let stack = moto
        .fresh_stack_with(&[("SnapshotInterval", "3")])
        .await
        .expect("fresh stack");
    let env = stack.function_env("order-commands");
    assert_eq!(env.get("SNAPSHOT_INTERVAL").map(String::as_str), Some("3"));
    assert_eq!(
        env.get("EVENTS_TABLE").map(String::as_str),
        Some(stack.table_name("EventsTable"))
    );
}

#[tokio::test]
async fn provisioning_again_keeps_data_and_recreating_starts_afresh() {
    let moto = Emulator::moto().await;
    let stack = moto.fresh_stack().await.expect("fresh stack");
    let sdk = moto.sdk_config().await;
    let dynamodb = moto.dynamodb().await;
    let sqs = moto.sqs().await;
    let s3 = moto.s3().await;
    let events = stack.table_name("EventsTable");
    let replay = stack.queue_url("ReplayQueue");
    let bucket = stack.bucket_name("EventArchiveBucket");

    let stream_id = format!("Order#{}", unique_id("order"));
    let item: BTreeMap<&str, AttributeValue> = [
        ("streamId", AttributeValue::S(stream_id.clone())),
        ("version", AttributeValue::N("1".to_owned())),
    ]
    .into_iter()
    .collect();
    let count = |dynamodb: aws_sdk_dynamodb::Client| {
        let stream_id = stream_id.clone();
        async move {
            dynamodb
                .query()
                .table_name(events)
                .key_condition_expression("streamId = :s")
                .expression_attribute_values(":s", AttributeValue::S(stream_id))
                .consistent_read(true)
                .send()
                .await
                .expect("query")
                .count()
        }
    };
    dynamodb
        .put_item()
        .table_name(events)
        .set_item(Some(
            item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ))
        .send()
        .await
        .expect("put");
    sqs.send_message()
        .queue_url(replay)
        .message_body("partition")
        .send()
        .await
        .expect("send");
    s3.put_object()
        .bucket(bucket)
        .key("events/v1/x.ndjson.gz")
        .body(Vec::from(&b"x"[..]).into())
        .send()
        .await
        .expect("put object");

    let again = provision::provision(&sdk, stack.template(), &ProvisionOptions::everything())
        .await
        .expect("provision again");
    assert!(again.tables.iter().all(|t| !t.created));
    assert!(again.queues.iter().all(|q| !q.created));
    assert!(again.buckets.iter().all(|b| !b.created));
    assert_eq!(
        again.stream_arn("EventsTable"),
        Some(stack.stream_arn("EventsTable"))
    );
    assert_eq!(
        count(dynamodb.clone()).await,
        1,
        "kept: the event is still there"
    );

    let afresh = provision::provision(
        &sdk,
        stack.template(),
        &ProvisionOptions::everything().recreating(),
    )
    .await
    .expect("recreate");
    assert!(afresh.tables.iter().all(|t| t.created));
    assert_eq!(
        count(dynamodb.clone()).await,
        0,
        "recreated: the table is empty"
    );
    let received = sqs
        .receive_message()
        .queue_url(replay)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("receive");
    assert!(
        received.messages().is_empty(),
        "recreated: the queue is purged"
    );
    let objects = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list");
    assert_eq!(
        objects.key_count(),
        Some(0),
        "recreated: the bucket is empty"
    );
    // The recreated table still has its GSIs and stream.
    assert_tables_match_the_template(
        moto,
        &moto.fresh_stack().await.expect("another fresh stack"),
    )
    .await;
    let described = dynamodb
        .describe_table()
        .table_name(stack.table_name("OrderHistoryTable"))
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    assert_eq!(described.global_secondary_indexes().len(), 1);
}

#[tokio::test]
async fn a_table_removed_from_the_template_is_not_provisioned() {
    let moto = Emulator::moto().await;
    let text = std::fs::read_to_string(template::default_template_path()).expect("template.yaml");
    let mut document: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    // Remove the snapshot table and the two places that refer to it by name.
    let mut remove = |path: &[&str], key: &str| {
        let mut at = &mut document;
        for step in path {
            at = at.get_mut(*step).expect("path in template.yaml");
        }
        let removed = at.as_mapping_mut().and_then(|m| m.remove(key));
        assert!(removed.is_some(), "{path:?}.{key}");
    };
    remove(&["Resources"], "SnapshotsTable");
    remove(
        &["Globals", "Function", "Environment", "Variables"],
        "SNAPSHOTS_TABLE",
    );
    remove(&["Outputs"], "SnapshotsTableName");

    let name = format!("t{}", &uuid_hex()[..12]);
    let stack = template::Stack::named(name).with_endpoint(moto.endpoint());
    let template = Template::from_document(document, stack).expect("resolves without it");
    assert!(template.table("SnapshotsTable").is_none());
    let provisioned = provision::provision(
        &moto.sdk_config().await,
        &template,
        &ProvisionOptions::tables_only(),
    )
    .await
    .expect("provision");
    let names: Vec<&str> = provisioned.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), template.tables().len(), "{names:?}");
    assert!(
        !names.iter().any(|n| n.ends_with("-snapshots")),
        "{names:?}"
    );
    // Every page: the suites share one emulator, which holds far more tables than one page.
    let listed: Vec<String> = moto
        .dynamodb()
        .await
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("list tables");
    let prefix = format!("{}-", template.stack().name);
    let mine: Vec<&String> = listed.iter().filter(|n| n.starts_with(&prefix)).collect();
    assert_eq!(mine.len(), names.len(), "{mine:?}");
}

fn uuid_hex() -> String {
    unique_id("x").replace(['x', '-'], "")
}

#[tokio::test]
async fn dropping_an_emulator_stops_its_server() {
    let moto = Emulator::start_moto().await.expect("own moto");
    let address = moto.endpoint().trim_start_matches("http://").to_owned();
    assert!(std::net::TcpStream::connect(&address).is_ok());
    drop(moto);
    let stopped = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(&address).is_err()
    });
    assert!(stopped, "{address} still answers after drop");
}

#[tokio::test]
async fn every_stack_gets_its_page_token_secret_generated_and_kept_on_reprovisioning() {
    let moto = Emulator::moto().await;
    let stack = moto.fresh_stack().await.expect("fresh stack");
    let declared = stack
        .template()
        .secret("PageTokenKey")
        .expect("template.yaml declares PageTokenKey");
    let name = stack.secret_name("PageTokenKey").to_owned();
    assert_eq!(name, format!("{}-page-token-key", stack.name()));
    assert_eq!(
        stack.function_env("order-history-query")["PAGE_TOKEN_SECRET_ID"],
        name,
        "the query function is told which secret"
    );
    for binary in [
        "order-commands",
        "order-history-projector",
        "event-archiver",
    ] {
        assert!(
            !stack
                .function_env(binary)
                .contains_key("PAGE_TOKEN_SECRET_ID"),
            "{binary} is not told"
        );
    }
    let secrets = stack.secrets_manager().await;
    let value = || async {
        secrets
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .expect("GetSecretValue")
            .secret_string
            .expect("a string value")
    };
    let first = value().await;
    assert_eq!(
        Some(first.len() as i64),
        declared.generate.password_length,
        "PasswordLength"
    );
    assert!(
        first.chars().all(|c| c.is_ascii_alphanumeric()),
        "ExcludePunctuation: {first}"
    );
    let again = provision::provision(
        &moto.sdk_config().await,
        stack.template(),
        &ProvisionOptions::everything().recreating(),
    )
    .await
    .expect("provision again");
    assert!(!again.secret("PageTokenKey").expect("provisioned").created);
    assert_eq!(
        value().await,
        first,
        "a running stack's key is never replaced"
    );

    let other = moto.fresh_stack().await.expect("another stack");
    let other_value = secrets
        .get_secret_value()
        .secret_id(other.secret_name("PageTokenKey"))
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string
        .expect("a string value");
    assert_ne!(other_value, first, "each stack gets its own random key");

    // Beside DynamoDB Local (no Secrets Manager), a stack's secret lives on moto, and the
    // functions are pointed there.
    let local = or_skip!(Emulator::dynamodb_local().await);
    let beside = local
        .fresh_stack()
        .await
        .expect("fresh stack on DynamoDB Local");
    let env = beside.function_env("order-history-query");
    assert_eq!(env["AWS_ENDPOINT_URL_SECRETS_MANAGER"], moto.endpoint());
    beside
        .secrets_manager()
        .await
        .describe_secret()
        .secret_id(&env["PAGE_TOKEN_SECRET_ID"])
        .send()
        .await
        .expect("the secret exists on moto");
}
