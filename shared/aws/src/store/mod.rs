//! Store layer: the adapters that read and write AWS resources (DynamoDB tables, S3, Secrets
//! Manager) in the domain's terms. Stores know nothing of Lambda triggers or HTTP.

pub mod archive;
pub mod event_store;
pub mod order_history;
#[cfg(feature = "secrets")]
pub mod page_token_key;
pub mod stream_image;
