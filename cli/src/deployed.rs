//! The names a deployed stack gave its resources, read from its `Outputs` (CloudFormation
//! `DescribeStacks`), so that `ftgo status` and `ftgo dlq` find CloudFormation's generated
//! function names and the queues without flags.
//!
//! `template.yaml`'s `Outputs` follow one convention, checked by a test: every function and
//! table has `<LogicalId>Name`, every queue `<LogicalId>Url`. [`Template::with_outputs`] puts
//! them in place of the names the template resolves to. The local stack (`ftgo run`) provisions
//! without CloudFormation: with an emulator endpoint, a stack CloudFormation does not know keeps
//! the template's names, as before; in AWS it is an error (a typo in `--stack` would otherwise
//! report on resources that do not exist).

use std::collections::BTreeMap;

use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};

use crate::template::Template;

/// The output key holding the deployed name of a function or table.
pub fn name_key(logical_id: &str) -> String {
    format!("{logical_id}Name")
}

/// The output key holding the URL of a queue.
pub fn url_key(logical_id: &str) -> String {
    format!("{logical_id}Url")
}

/// A deployed stack's outputs, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackOutputs(BTreeMap<String, String>);

impl StackOutputs {
    /// Outputs from `(key, value)` pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// How many outputs there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No outputs at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The outputs of stack `name` (`DescribeStacks`); `Ok(None)` when CloudFormation has no such
    /// stack.
    pub async fn describe(
        cloudformation: &aws_sdk_cloudformation::Client,
        name: &str,
    ) -> Result<Option<Self>, String> {
        let answer = cloudformation
            .describe_stacks()
            .stack_name(name)
            .send()
            .await;
        let stacks = match answer {
            Ok(output) => output.stacks.unwrap_or_default(),
            // CloudFormation answers a missing stack with a ValidationError "Stack with id <name>
            // does not exist".
            Err(e)
                if e.code() == Some("ValidationError")
                    && e.message().is_some_and(|m| m.contains("does not exist")) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(format!(
                    "DescribeStacks {name}: {}",
                    DisplayErrorContext(&e)
                ));
            }
        };
        Ok(stacks.into_iter().next().map(|stack| {
            Self::from_pairs(
                stack
                    .outputs
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| Some((o.output_key?, o.output_value?))),
            )
        }))
    }
}

impl Template {
    /// The template with the deployed names of `outputs` in place of its own: functions' and
    /// tables' `<LogicalId>Name`, queues' `<LogicalId>Url` (the queue name is the URL's last
    /// segment). A resource without an output keeps the template's name.
    #[must_use]
    pub fn with_outputs(mut self, outputs: &StackOutputs) -> Self {
        for function in self.functions_mut() {
            if let Some(name) = outputs.get(&name_key(&function.logical_id)) {
                name.clone_into(&mut function.name);
            }
        }
        for table in self.tables_mut() {
            if let Some(name) = outputs.get(&name_key(&table.logical_id)) {
                name.clone_into(&mut table.name);
            }
        }
        for queue in self.queues_mut() {
            if let Some(url) = outputs.get(&url_key(&queue.logical_id)) {
                url.clone_into(&mut queue.url);
                if let Some(name) = url.rsplit('/').next().filter(|n| !n.is_empty()) {
                    name.clone_into(&mut queue.name);
                }
            }
        }
        self
    }
}

/// Why a missing stack is an error in AWS (and no error with an emulator endpoint).
pub fn missing_stack(name: &str, region: &str) -> String {
    format!(
        "CloudFormation has no stack `{name}` in {region}: name the deployed stack with --stack \
         (samconfig.toml's are ftgo-dev and ftgo-prod), or set AWS_REGION/AWS_PROFILE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Stack;

    #[test]
    fn outputs_replace_the_names_of_functions_tables_and_queues() {
        let template = Template::load_default(Stack::named("ftgo-prod")).expect("template");
        let url = "https://sqs.eu-west-1.amazonaws.com/111122223333/ftgo-prod-ProjectorDlq-X1";
        let outputs = StackOutputs::from_pairs([
            (
                "OrderHistoryProjectorFunctionName",
                "ftgo-prod-Projector-1AB",
            ),
            ("EventsTableName", "events-elsewhere"),
            ("ProjectorDlqUrl", url),
        ]);
        let deployed = template.clone().with_outputs(&outputs);
        let projector = deployed.function("OrderHistoryProjectorFunction");
        assert_eq!(
            projector.map(|f| f.name.as_str()),
            Some("ftgo-prod-Projector-1AB")
        );
        assert_eq!(
            deployed.table("EventsTable").map(|t| t.name.as_str()),
            Some("events-elsewhere")
        );
        let dlq = deployed.queue("ProjectorDlq").expect("ProjectorDlq");
        assert_eq!(
            (dlq.url.as_str(), dlq.name.as_str()),
            (url, "ftgo-prod-ProjectorDlq-X1")
        );
        let dead = deployed.dead_letter_queues();
        let dead = dead.iter().find(|q| q.logical_id == "ProjectorDlq");
        assert_eq!(dead.map(|q| q.url.as_str()), Some(url), "dlq list reads it");
        // Without an output, the template's own name stays.
        assert_eq!(
            deployed.function("EventArchiverFunction").map(|f| &f.name),
            template.function("EventArchiverFunction").map(|f| &f.name)
        );
    }

    /// One source of truth: every function, table and queue of `template.yaml` has its output,
    /// so that nothing deployed needs a flag to be found.
    #[test]
    fn the_template_outputs_every_function_table_and_queue_by_convention() {
        let template = Template::load_default(Stack::named("ftgo")).expect("template");
        let outputs = template
            .document()
            .get("Outputs")
            .and_then(serde_yaml_ng::Value::as_mapping)
            .expect("Outputs");
        let has = |key: &str| outputs.contains_key(key);
        let mut missing = Vec::new();
        let names = template.functions().iter().map(|f| &f.logical_id);
        let names = names.chain(template.tables().iter().map(|t| &t.logical_id));
        missing.extend(names.map(|id| name_key(id)).filter(|k| !has(k)));
        let urls = template.queues().iter().map(|q| url_key(&q.logical_id));
        missing.extend(urls.filter(|k| !has(k)));
        assert!(
            missing.is_empty(),
            "template.yaml lacks Outputs {missing:?}"
        );
    }
}
