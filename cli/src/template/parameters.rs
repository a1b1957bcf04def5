//! [`Stack`]: the values of CloudFormation's pseudo parameters and parameter overrides.

use std::collections::BTreeMap;

use super::{LOCAL_ACCOUNT_ID, LOCAL_PARAMETERS, LOCAL_REGION, LOCAL_STACK_NAME};

/// Where and as what the template is resolved: the values of CloudFormation's pseudo parameters,
/// parameter overrides, and (locally) the emulator endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// `AWS::StackName`; every physical name derives from it.
    pub name: String,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId`.
    pub account_id: String,
    /// The emulator endpoint (e.g. `http://127.0.0.1:4566`), or `None` for AWS itself. Queue URLs
    /// are `<endpoint>/<account>/<queue>` when set, as moto answers them.
    pub endpoint: Option<String>,
    /// Parameter values overriding the template's `Default`s.
    pub parameters: BTreeMap<String, String>,
}

impl Stack {
    /// The local stack: `ftgo`, `us-east-1`, account `123456789012`, no endpoint.
    pub fn local() -> Self {
        Self::named(LOCAL_STACK_NAME)
    }

    /// A stack of this name in the local region and account, with the local stack's
    /// parameters ([`LOCAL_PARAMETERS`]).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            region: LOCAL_REGION.to_owned(),
            account_id: LOCAL_ACCOUNT_ID.to_owned(),
            endpoint: None,
            parameters: LOCAL_PARAMETERS
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    /// This stack, served by the emulator at `endpoint`.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into().trim_end_matches('/').to_owned());
        self
    }

    /// This stack, with parameter `name` set to `value` instead of its default.
    pub fn with_parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// `AWS::Partition` for the region.
    pub fn partition(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }

    /// `AWS::URLSuffix` for the region.
    pub fn url_suffix(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }

    /// The URL of queue `name` in this stack (pointing at the endpoint when there is one).
    pub fn queue_url(&self, name: &str) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{endpoint}/{}/{name}", self.account_id),
            None => format!(
                "https://sqs.{}.{}/{}/{name}",
                self.region,
                self.url_suffix(),
                self.account_id
            ),
        }
    }
}
