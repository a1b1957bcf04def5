//! Creating one of the template's DynamoDB tables at an endpoint (AWS, moto server, DynamoDB
//! Local): what `ftgo replay --create-table` needs in AWS, and what the local stack's
//! provisioning (`ftgo-infra`'s `provision`) does for every table of the template.
//!
//! Tables are created on demand (`PAY_PER_REQUEST`) with their key schema, secondary indexes,
//! stream and time to live; deletion protection, encryption and point-in-time recovery are the
//! template's business in AWS (`infra/tests/template_policy.rs` checks that it declares them).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, LocalSecondaryIndex,
    Projection, StreamSpecification, TimeToLiveSpecification,
};

use crate::error::{Error, Result};
use crate::template::{self, Table};

/// How long a table may take to become `ACTIVE` (or to be gone).
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// What to do with a resource that already exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Leave it as it is (data included) and report it.
    #[default]
    Keep,
    /// Start it afresh: a table is deleted and created again; a bucket is emptied; a queue is
    /// purged and given the template's attributes (SQS forbids re-creating a deleted queue's name
    /// for 60 seconds, so a queue is never deleted).
    Recreate,
}

/// A table as provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedTable {
    /// The template's logical id.
    pub logical_id: String,
    /// The table name.
    pub name: String,
    /// The real stream ARN (with the label the endpoint gave it), when the table has a stream.
    pub stream_arn: Option<String>,
    /// Created by this call (false: it existed and was kept).
    pub created: bool,
}

/// An S3 client for `sdk`, using path-style addressing when `sdk` points at a custom endpoint
/// (emulators do not resolve `<bucket>.<host>`).
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Creates one table (keys, indexes, stream, TTL; on-demand billing) and waits until it is
/// `ACTIVE`.
pub async fn provision_table(
    client: &aws_sdk_dynamodb::Client,
    table: &Table,
    existing: Existing,
) -> Result<ProvisionedTable> {
    let name = table.name.as_str();
    let exists = client.describe_table().table_name(name).send().await;
    let created = match exists {
        Ok(_) if existing == Existing::Keep => false,
        Err(e)
            if !e
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Err(Error::aws("DescribeTable", name, e));
        }
        found => {
            if found.is_ok() {
                client
                    .delete_table()
                    .table_name(name)
                    .send()
                    .await
                    .map_err(|e| Error::aws("DeleteTable", name, e))?;
                client
                    .wait_until_table_not_exists()
                    .table_name(name)
                    .wait(WAIT_LIMIT)
                    .await
                    .map_err(|e| Error::aws("DeleteTable", name, e))?;
            }
            match create_table(client, table).await {
                Ok(()) => true,
                // Another process created it between our describe and create: keep theirs.
                Err(err) if is_resource_in_use(&err) => false,
                Err(err) => return Err(Error::aws("CreateTable", name, err)),
            }
        }
    };
    let description = client
        .wait_until_table_exists()
        .table_name(name)
        .wait(WAIT_LIMIT)
        .await
        .map_err(|e| Error::aws("DescribeTable", name, e))?
        .into_result()
        .map_err(|e| Error::aws("DescribeTable", name, e))?;
    if created && let Some(attribute) = table.time_to_live_attribute() {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(|e| Error::invalid_request("TimeToLiveSpecification", name, e))?,
            )
            .send()
            .await
            .map_err(|e| Error::aws("UpdateTimeToLive", name, e))?;
    }
    Ok(ProvisionedTable {
        logical_id: table.logical_id.clone(),
        name: table.name.clone(),
        stream_arn: description.table.and_then(|t| t.latest_stream_arn),
        created,
    })
}

type CreateTableError =
    aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::create_table::CreateTableError>;

fn is_resource_in_use(err: &CreateTableError) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_resource_in_use_exception())
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &Table,
) -> std::result::Result<(), CreateTableError> {
    let name = table.name.as_str();
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for definition in &table.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&definition.attribute_name)
                .attribute_type(definition.attribute_type.clone())
                .build()
                .map_err(build_sdk_error)?,
        );
    }
    request = request.set_key_schema(key_schema(&table.key_schema).map_err(build_sdk_error)?);
    for index in &table.global_secondary_indexes {
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(projection(index))
            .set_key_schema(key_schema(&index.key_schema).map_err(build_sdk_error)?);
        request = request.global_secondary_indexes(gsi.build().map_err(build_sdk_error)?);
    }
    for index in &table.local_secondary_indexes {
        let lsi = LocalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(projection(index))
            .set_key_schema(key_schema(&index.key_schema).map_err(build_sdk_error)?);
        request = request.local_secondary_indexes(lsi.build().map_err(build_sdk_error)?);
    }
    if let Some(stream) = &table.stream_specification {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(stream.stream_view_type.clone())
                .build()
                .map_err(build_sdk_error)?,
        );
    }
    request.send().await.map(|_| ())
}

fn build_sdk_error(err: aws_sdk_dynamodb::error::BuildError) -> CreateTableError {
    aws_sdk_dynamodb::error::SdkError::construction_failure(err)
}

fn key_schema(
    elements: &[template::KeyElement],
) -> std::result::Result<Option<Vec<KeySchemaElement>>, aws_sdk_dynamodb::error::BuildError> {
    elements
        .iter()
        .map(|element| {
            KeySchemaElement::builder()
                .attribute_name(&element.attribute_name)
                .key_type(element.key_type.clone())
                .build()
        })
        .collect::<std::result::Result<_, _>>()
        .map(Some)
}

fn projection(index: &template::SecondaryIndex) -> Projection {
    let projection = &index.projection;
    Projection::builder()
        .projection_type(projection.projection_type.clone())
        .set_non_key_attributes(
            (!projection.non_key_attributes.is_empty())
                .then(|| projection.non_key_attributes.clone()),
        )
        .build()
}
