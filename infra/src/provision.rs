//! Creating the tables, buckets, queues and secrets `template.yaml` declares, against an
//! emulator (moto server, DynamoDB Local) or any AWS-compatible endpoint.
//!
//! Everything comes from a [`Template`]: the code knows no table, bucket or queue of its own, so
//! adding a resource to the template makes it appear locally and removing it makes it go.
//! Tables are created on demand (`PAY_PER_REQUEST`) with their key schema, secondary indexes,
//! stream and time to live. A secret gets a random value as its `GenerateSecretString` says
//! (through Secrets Manager's own `GetRandomPassword`).
//!
//! What protects data in AWS is not applied locally: table deletion protection (the local stack
//! and the tests delete and recreate tables), server-side encryption and point-in-time recovery,
//! bucket versioning, lifecycle and policy (the TLS-only policy means nothing over the
//! emulator's plain HTTP). `infra/tests/template_policy.rs` checks that the template declares
//! them.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;

use crate::template::{self, Bucket, Queue, Secret, Template};
use crate::{Error, Result};
/// One table, created as `ftgo replay --create-table` creates it: the CLI's [`ftgo_cli::tables`].
pub use ftgo_cli::tables::{Existing, ProvisionedTable, provision_table, s3_client};

/// Which kinds of resources to provision, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionOptions {
    /// Create DynamoDB tables.
    pub tables: bool,
    /// Create S3 buckets.
    pub buckets: bool,
    /// Create SQS queues.
    pub queues: bool,
    /// Create Secrets Manager secrets.
    pub secrets: bool,
    /// What to do with resources that already exist.
    pub existing: Existing,
}

impl ProvisionOptions {
    /// Tables, buckets, queues and secrets (moto server), keeping what exists.
    pub fn everything() -> Self {
        Self {
            tables: true,
            buckets: true,
            queues: true,
            secrets: true,
            existing: Existing::Keep,
        }
    }

    /// DynamoDB tables only (DynamoDB Local), keeping what exists.
    pub fn tables_only() -> Self {
        Self {
            tables: true,
            buckets: false,
            queues: false,
            secrets: false,
            existing: Existing::Keep,
        }
    }

    /// The same options, recreating what exists.
    pub fn recreating(mut self) -> Self {
        self.existing = Existing::Recreate;
        self
    }
}

/// A bucket as provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedBucket {
    /// The template's logical id.
    pub logical_id: String,
    /// The bucket name.
    pub name: String,
    /// Created by this call (false: it existed).
    pub created: bool,
}

/// A queue as provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedQueue {
    /// The template's logical id.
    pub logical_id: String,
    /// The queue name.
    pub name: String,
    /// The queue URL the endpoint answered.
    pub url: String,
    /// The queue ARN the endpoint reports.
    pub arn: String,
    /// Created by this call (false: it existed).
    pub created: bool,
}

/// A secret as provisioned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedSecret {
    /// The template's logical id.
    pub logical_id: String,
    /// The secret name (what `Ref` resolves to locally).
    pub name: String,
    /// Created by this call (false: it existed and was kept).
    pub created: bool,
}

/// What [`provision`] created or found: the resolved names, by logical id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Tables, in template order.
    pub tables: Vec<ProvisionedTable>,
    /// Buckets, in template order.
    pub buckets: Vec<ProvisionedBucket>,
    /// Queues, in template order.
    pub queues: Vec<ProvisionedQueue>,
    /// Secrets, in template order.
    pub secrets: Vec<ProvisionedSecret>,
}

impl Provisioned {
    /// The table of this logical id.
    pub fn table(&self, logical_id: &str) -> Option<&ProvisionedTable> {
        self.tables.iter().find(|t| t.logical_id == logical_id)
    }

    /// The name of the table of this logical id.
    pub fn table_name(&self, logical_id: &str) -> Option<&str> {
        self.table(logical_id).map(|t| t.name.as_str())
    }

    /// The real stream ARN of the table of this logical id.
    pub fn stream_arn(&self, logical_id: &str) -> Option<&str> {
        self.table(logical_id).and_then(|t| t.stream_arn.as_deref())
    }

    /// The bucket of this logical id.
    pub fn bucket(&self, logical_id: &str) -> Option<&ProvisionedBucket> {
        self.buckets.iter().find(|b| b.logical_id == logical_id)
    }

    /// The name of the bucket of this logical id.
    pub fn bucket_name(&self, logical_id: &str) -> Option<&str> {
        self.bucket(logical_id).map(|b| b.name.as_str())
    }

    /// The queue of this logical id.
    pub fn queue(&self, logical_id: &str) -> Option<&ProvisionedQueue> {
        self.queues.iter().find(|q| q.logical_id == logical_id)
    }

    /// The URL of the queue of this logical id.
    pub fn queue_url(&self, logical_id: &str) -> Option<&str> {
        self.queue(logical_id).map(|q| q.url.as_str())
    }

    /// The secret of this logical id.
    pub fn secret(&self, logical_id: &str) -> Option<&ProvisionedSecret> {
        self.secrets.iter().find(|s| s.logical_id == logical_id)
    }
}

/// Creates every table, bucket, queue and secret of `template` (as `options` select) at the endpoint of
/// `sdk`, and returns their names. Idempotent: what exists is kept or recreated as
/// `options.existing` says.
pub async fn provision(
    sdk: &SdkConfig,
    template: &Template,
    options: &ProvisionOptions,
) -> Result<Provisioned> {
    let mut provisioned = Provisioned::default();
    if options.tables {
        let client = aws_sdk_dynamodb::Client::new(sdk);
        for table in template.tables() {
            provisioned
                .tables
                .push(provision_table(&client, table, options.existing).await?);
        }
    }
    if options.buckets {
        let client = s3_client(sdk);
        for bucket in template.buckets() {
            provisioned.buckets.push(
                provision_bucket(&client, bucket, &template.stack().region, options.existing)
                    .await?,
            );
        }
    }
    if options.queues {
        let client = aws_sdk_sqs::Client::new(sdk);
        provisioned.queues = provision_queues(&client, template.queues(), options.existing).await?;
    }
    if options.secrets {
        let client = aws_sdk_secretsmanager::Client::new(sdk);
        for secret in template.secrets() {
            provisioned
                .secrets
                .push(provision_secret(&client, secret).await?);
        }
    }
    Ok(provisioned)
}

/// Creates one bucket in `region` (emptying it when it exists and `existing` is
/// [`Existing::Recreate`]).
pub async fn provision_bucket(
    client: &aws_sdk_s3::Client,
    bucket: &Bucket,
    region: &str,
    existing: Existing,
) -> Result<ProvisionedBucket> {
    let name = bucket.name.as_str();
    let exists = match client.head_bucket().bucket(name).send().await {
        Ok(_) => true,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => false,
        Err(err) => return Err(Error::aws("HeadBucket", name, err)),
    };
    if exists {
        if existing == Existing::Recreate {
            empty_bucket(client, name).await?;
        }
        return Ok(ProvisionedBucket {
            logical_id: bucket.logical_id.clone(),
            name: name.to_owned(),
            created: false,
        });
    }
    let mut request = client.create_bucket().bucket(name);
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    let created = match request.send().await {
        Ok(_) => true,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
        {
            false
        }
        Err(err) => return Err(Error::aws("CreateBucket", name, err)),
    };
    Ok(ProvisionedBucket {
        logical_id: bucket.logical_id.clone(),
        name: name.to_owned(),
        created,
    })
}

async fn empty_bucket(client: &aws_sdk_s3::Client, name: &str) -> Result<()> {
    loop {
        let listing = client
            .list_objects_v2()
            .bucket(name)
            .send()
            .await
            .map_err(|e| Error::aws("ListObjectsV2", name, e))?;
        let keys: Vec<aws_sdk_s3::types::ObjectIdentifier> = listing
            .contents()
            .iter()
            .filter_map(|object| object.key())
            .filter_map(|key| {
                aws_sdk_s3::types::ObjectIdentifier::builder()
                    .key(key)
                    .build()
                    .ok()
            })
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let delete = aws_sdk_s3::types::Delete::builder()
            .set_objects(Some(keys))
            .quiet(true)
            .build()
            .map_err(|e| Error::invalid_request("Delete", name, e))?;
        client
            .delete_objects()
            .bucket(name)
            .delete(delete)
            .send()
            .await
            .map_err(|e| Error::aws("DeleteObjects", name, e))?;
    }
}

/// Creates `queues` (dead-letter queues before the queues that redrive to them), and returns
/// them in the order given.
pub async fn provision_queues(
    client: &aws_sdk_sqs::Client,
    queues: &[Queue],
    existing: Existing,
) -> Result<Vec<ProvisionedQueue>> {
    let mut done: BTreeMap<String, ProvisionedQueue> = BTreeMap::new();
    // Each round provisions the queues whose dead-letter queue is ready; a round without
    // progress means a redrive cycle or a dead-letter queue outside `queues`.
    while done.len() < queues.len() {
        let before = done.len();
        for queue in queues {
            if done.contains_key(&queue.logical_id) {
                continue;
            }
            let dead_letter_arn = match &queue.redrive {
                None => None,
                Some(redrive) => match done.get(&redrive.dead_letter_queue) {
                    Some(dlq) => Some(dlq.arn.clone()),
                    None => continue,
                },
            };
            let provisioned =
                provision_queue(client, queue, dead_letter_arn.as_deref(), existing).await?;
            done.insert(queue.logical_id.clone(), provisioned);
        }
        if done.len() == before {
            return Err(Error::template(
                "queue redrive policies form a cycle or name a queue that is not provisioned",
            ));
        }
    }
    Ok(queues
        .iter()
        .filter_map(|queue| done.remove(&queue.logical_id))
        .collect())
}

async fn provision_queue(
    client: &aws_sdk_sqs::Client,
    queue: &Queue,
    dead_letter_arn: Option<&str>,
    existing: Existing,
) -> Result<ProvisionedQueue> {
    let name = queue.name.as_str();
    let mut attributes = queue.attributes.clone();
    if let (Some(redrive), Some(arn)) = (&queue.redrive, dead_letter_arn) {
        let policy = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": redrive.max_receive_count.to_string(),
        });
        attributes.insert("RedrivePolicy".to_owned(), policy.to_string());
    }
    let attributes: std::collections::HashMap<QueueAttributeName, String> = attributes
        .into_iter()
        .map(|(name, value)| (QueueAttributeName::from(name.as_str()), value))
        .collect();

    let existing_url = match client.get_queue_url().queue_name(name).send().await {
        Ok(output) => output.queue_url,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            None
        }
        Err(err) => return Err(Error::aws("GetQueueUrl", name, err)),
    };
    let (url, created) = match existing_url {
        Some(url) => {
            if existing == Existing::Recreate {
                client
                    .purge_queue()
                    .queue_url(&url)
                    .send()
                    .await
                    .map_err(|e| Error::aws("PurgeQueue", name, e))?;
                let settable: std::collections::HashMap<_, _> = attributes
                    .iter()
                    .filter(|(key, _)| !matches!(key, QueueAttributeName::FifoQueue))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect();
                if !settable.is_empty() {
                    client
                        .set_queue_attributes()
                        .queue_url(&url)
                        .set_attributes(Some(settable))
                        .send()
                        .await
                        .map_err(|e| Error::aws("SetQueueAttributes", name, e))?;
                }
            }
            (url, false)
        }
        None => {
            let output = client
                .create_queue()
                .queue_name(name)
                .set_attributes((!attributes.is_empty()).then_some(attributes))
                .send()
                .await
                .map_err(|e| Error::aws("CreateQueue", name, e))?;
            let url = output.queue_url.ok_or_else(|| Error::Aws {
                operation: "CreateQueue",
                resource: name.to_owned(),
                message: "no QueueUrl in the answer".to_owned(),
            })?;
            (url, true)
        }
    };
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| Error::aws("GetQueueAttributes", name, e))?
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_else(|| queue.arn.clone());
    Ok(ProvisionedQueue {
        logical_id: queue.logical_id.clone(),
        name: name.to_owned(),
        url,
        arn,
        created,
    })
}

/// Creates one secret with a value generated as its `GenerateSecretString` says (or its
/// `SecretString`). An existing secret is kept with its value and versions, whatever
/// [`Existing`] says: a key that changed under a running stack would refuse its tokens.
pub async fn provision_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret: &Secret,
) -> Result<ProvisionedSecret> {
    let name = secret.name.as_str();
    match client.describe_secret().secret_id(name).send().await {
        Ok(_) => {
            return Ok(ProvisionedSecret {
                logical_id: secret.logical_id.clone(),
                name: name.to_owned(),
                created: false,
            });
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(err) => return Err(Error::aws("DescribeSecret", name, err)),
    }
    let value = match &secret.secret_string {
        Some(value) => value.clone(),
        None => generate_secret_string(client, name, &secret.generate).await?,
    };
    let created = client
        .create_secret()
        .name(name)
        .set_description(secret.description.clone())
        .secret_string(value)
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        // Another process created it between our describe and create: keep theirs.
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            false
        }
        Err(err) => return Err(Error::aws("CreateSecret", name, err)),
    };
    Ok(ProvisionedSecret {
        logical_id: secret.logical_id.clone(),
        name: name.to_owned(),
        created,
    })
}

async fn generate_secret_string(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    generate: &template::GeneratedSecret,
) -> Result<String> {
    let password = client
        .get_random_password()
        .set_password_length(generate.password_length)
        .set_exclude_characters(generate.exclude_characters.clone())
        .set_exclude_numbers(generate.exclude_numbers)
        .set_exclude_punctuation(generate.exclude_punctuation)
        .set_exclude_uppercase(generate.exclude_uppercase)
        .set_exclude_lowercase(generate.exclude_lowercase)
        .set_include_space(generate.include_space)
        .set_require_each_included_type(generate.require_each_included_type)
        .send()
        .await
        .map_err(|e| Error::aws("GetRandomPassword", name, e))?
        .random_password
        .ok_or_else(|| Error::Aws {
            operation: "GetRandomPassword",
            resource: name.to_owned(),
            message: "no RandomPassword in the answer".to_owned(),
        })?;
    let (template, key) = match (
        &generate.secret_string_template,
        &generate.generate_string_key,
    ) {
        (None, None) => return Ok(password),
        (Some(template), Some(key)) => (template, key),
        _ => {
            return Err(Error::template(format!(
                "secret {name}: SecretStringTemplate and GenerateStringKey go together"
            )));
        }
    };
    let mut value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(template)
        .map_err(|e| {
            Error::template(format!(
                "secret {name}: SecretStringTemplate is not a JSON object: {e}"
            ))
        })?;
    value.insert(key.clone(), serde_json::Value::String(password));
    Ok(serde_json::Value::Object(value).to_string())
}
