//! The intrinsic-function resolver (`Ref`, `Fn::Sub`, `Fn::GetAtt`, ...).

use serde_yaml_ng::{Mapping, Value};

use super::{
    BUCKET, LAMBDA_FUNCTION, MAX_DEPTH, PLACEHOLDER_STREAM_LABEL, QUEUE, SECRET,
    SERVERLESS_FUNCTION, Stack, TABLE,
};
use crate::error::{Error, Result};

/// Resolves intrinsic functions against the template's parameters and resources.
pub(super) struct Resolver<'a> {
    pub(super) stack: &'a Stack,
    pub(super) parameters: Option<&'a Mapping>,
    pub(super) resources: &'a Mapping,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(document: &'a Value, stack: &'a Stack) -> Result<Self> {
        let resources = section(document, "Resources")?
            .ok_or_else(|| Error::template("no Resources section"))?;
        Ok(Self {
            stack,
            parameters: section(document, "Parameters")?,
            resources,
        })
    }

    pub(super) fn resolve(&self, value: &Value, at: &str) -> Result<Value> {
        self.resolve_depth(value, at, 0)
    }

    pub(super) fn resolve_depth(&self, value: &Value, at: &str, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(Error::template(format!(
                "{at}: references nest too deep (a cycle?)"
            )));
        }
        match value {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                self.intrinsic(name, &tagged.value, at, depth)
            }
            Value::Mapping(mapping) => {
                if let Some((name, argument)) = long_form_intrinsic(mapping) {
                    return self.intrinsic(name, argument, at, depth);
                }
                let mut resolved = Mapping::with_capacity(mapping.len());
                for (key, item) in mapping {
                    let child = match key.as_str() {
                        Some(key) => format!("{at}.{key}"),
                        None => at.to_owned(),
                    };
                    resolved.insert(key.clone(), self.resolve_depth(item, &child, depth + 1)?);
                }
                Ok(Value::Mapping(resolved))
            }
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| self.resolve_depth(item, &format!("{at}[{i}]"), depth + 1))
                .collect::<Result<Vec<_>>>()
                .map(Value::Sequence),
            other => Ok(other.clone()),
        }
    }

    pub(super) fn intrinsic(
        &self,
        name: &str,
        argument: &Value,
        at: &str,
        depth: usize,
    ) -> Result<Value> {
        let name = name.strip_prefix("Fn::").unwrap_or(name);
        let argument = self.resolve_depth(argument, at, depth + 1)?;
        match name {
            "Ref" => {
                let target = scalar_string(&argument, at)?;
                self.reference(&target, at, depth).map(Value::String)
            }
            "GetAtt" => {
                let (resource, attribute) = match &argument {
                    Value::String(s) => s.split_once('.').ok_or_else(|| {
                        Error::template(format!("{at}: GetAtt `{s}` is not Resource.Attribute"))
                    })?,
                    Value::Sequence(parts) if parts.len() == 2 => (
                        parts[0].as_str().unwrap_or_default(),
                        parts[1].as_str().unwrap_or_default(),
                    ),
                    _ => {
                        return Err(Error::template(format!(
                            "{at}: GetAtt takes `Resource.Attribute` or [Resource, Attribute]"
                        )));
                    }
                };
                self.attribute(resource, attribute, at, depth)
                    .map(Value::String)
            }
            "Sub" => self.substitute(&argument, at, depth).map(Value::String),
            "Join" => {
                let [delimiter, list] = two_arguments(&argument, "Join", at)?;
                let delimiter = scalar_string(delimiter, at)?;
                let parts = sequence(list, at)?
                    .iter()
                    .map(|part| scalar_string(part, at))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Value::String(parts.join(&delimiter)))
            }
            "Select" => {
                let [index, list] = two_arguments(&argument, "Select", at)?;
                let index: usize = scalar_string(index, at)?
                    .parse()
                    .map_err(|_| Error::template(format!("{at}: Select index is not a number")))?;
                sequence(list, at)?.get(index).cloned().ok_or_else(|| {
                    Error::template(format!("{at}: Select index {index} out of range"))
                })
            }
            "Split" => {
                let [delimiter, text] = two_arguments(&argument, "Split", at)?;
                let delimiter = scalar_string(delimiter, at)?;
                let text = scalar_string(text, at)?;
                Ok(Value::Sequence(
                    text.split(delimiter.as_str())
                        .map(|part| Value::String(part.to_owned()))
                        .collect(),
                ))
            }
            other => Err(Error::template(format!(
                "{at}: intrinsic function `{other}` is not supported"
            ))),
        }
    }

    pub(super) fn reference(&self, target: &str, at: &str, depth: usize) -> Result<String> {
        let stack = self.stack;
        match target {
            "AWS::StackName" => return Ok(stack.name.clone()),
            "AWS::Region" => return Ok(stack.region.clone()),
            "AWS::AccountId" => return Ok(stack.account_id.clone()),
            "AWS::Partition" => return Ok(stack.partition().to_owned()),
            "AWS::URLSuffix" => return Ok(stack.url_suffix().to_owned()),
            "AWS::StackId" => {
                return Ok(format!(
                    "arn:{}:cloudformation:{}:{}:stack/{}/local",
                    stack.partition(),
                    stack.region,
                    stack.account_id,
                    stack.name
                ));
            }
            "AWS::NoValue" | "AWS::NotificationARNs" => {
                return Err(Error::template(format!(
                    "{at}: `{target}` is not supported"
                )));
            }
            _ => {}
        }
        if let Some(value) = stack.parameters.get(target) {
            return Ok(value.clone());
        }
        if let Some(parameter) = self.parameters.and_then(|p| p.get(target)) {
            return match parameter.get("Default") {
                Some(default) => scalar_string(default, &format!("Parameters.{target}.Default")),
                None => Err(Error::template(format!(
                    "{at}: parameter `{target}` has no Default and no value was given"
                ))),
            };
        }
        let resource = self.resource(target, at)?;
        match resource_type(resource) {
            Some(TABLE) => self.physical_name(target, "TableName", at, depth),
            Some(BUCKET) => self.physical_name(target, "BucketName", at, depth),
            Some(QUEUE) => {
                Ok(stack.queue_url(&self.physical_name(target, "QueueName", at, depth)?))
            }
            Some(SECRET) => self.physical_name(target, "Name", at, depth),
            Some(SERVERLESS_FUNCTION | LAMBDA_FUNCTION) => self.function_name(target, at, depth),
            _ => Ok(target.to_owned()),
        }
    }

    pub(super) fn attribute(
        &self,
        target: &str,
        attribute: &str,
        at: &str,
        depth: usize,
    ) -> Result<String> {
        let stack = self.stack;
        let (partition, region, account) = (stack.partition(), &stack.region, &stack.account_id);
        let resource = self.resource(target, at)?;
        let kind = resource_type(resource).unwrap_or_default();
        let unsupported = || {
            Error::template(format!(
                "{at}: GetAtt {target}.{attribute} is not supported for {kind}"
            ))
        };
        match (kind, attribute) {
            (TABLE, "Arn") => {
                let name = self.physical_name(target, "TableName", at, depth)?;
                Ok(format!(
                    "arn:{partition}:dynamodb:{region}:{account}:table/{name}"
                ))
            }
            (TABLE, "StreamArn") => {
                if resource
                    .get("Properties")
                    .and_then(|p| p.get("StreamSpecification"))
                    .is_none()
                {
                    return Err(Error::template(format!(
                        "{at}: {target}.StreamArn, but {target} has no StreamSpecification"
                    )));
                }
                let name = self.physical_name(target, "TableName", at, depth)?;
                Ok(format!(
                    "arn:{partition}:dynamodb:{region}:{account}:table/{name}/stream/{PLACEHOLDER_STREAM_LABEL}"
                ))
            }
            (QUEUE, "Arn") => {
                let name = self.physical_name(target, "QueueName", at, depth)?;
                Ok(format!("arn:{partition}:sqs:{region}:{account}:{name}"))
            }
            (QUEUE, "QueueUrl") => {
                Ok(stack.queue_url(&self.physical_name(target, "QueueName", at, depth)?))
            }
            (QUEUE, "QueueName") => self.physical_name(target, "QueueName", at, depth),
            (BUCKET, "Arn") => {
                let name = self.physical_name(target, "BucketName", at, depth)?;
                Ok(format!("arn:{partition}:s3:::{name}"))
            }
            (BUCKET, "DomainName") => {
                let name = self.physical_name(target, "BucketName", at, depth)?;
                Ok(format!("{name}.s3.{}", stack.url_suffix()))
            }
            (BUCKET, "RegionalDomainName") => {
                let name = self.physical_name(target, "BucketName", at, depth)?;
                Ok(format!("{name}.s3.{region}.{}", stack.url_suffix()))
            }
            (SECRET, "Id") => self.physical_name(target, "Name", at, depth),
            (SERVERLESS_FUNCTION | LAMBDA_FUNCTION, "Arn") => {
                let name = self.function_name(target, at, depth)?;
                Ok(format!(
                    "arn:{partition}:lambda:{region}:{account}:function:{name}"
                ))
            }
            _ => Err(unsupported()),
        }
    }

    pub(super) fn substitute(&self, argument: &Value, at: &str, depth: usize) -> Result<String> {
        let (text, variables) = match argument {
            Value::Sequence(parts) if parts.len() == 2 => {
                let variables = parts[1].as_mapping().ok_or_else(|| {
                    Error::template(format!("{at}: Sub's second argument must be a mapping"))
                })?;
                (scalar_string(&parts[0], at)?, Some(variables))
            }
            other => (scalar_string(other, at)?, None),
        };
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| Error::template(format!("{at}: unclosed `${{` in Sub")))?;
            let name = after[..end].trim();
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = variables.and_then(|v| v.get(name)) {
                out.push_str(&scalar_string(value, at)?);
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(resource, attribute, at, depth + 1)?);
            } else {
                out.push_str(&self.reference(name, at, depth + 1)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    pub(super) fn resource(&self, logical_id: &str, at: &str) -> Result<&'a Value> {
        self.resources.get(logical_id).ok_or_else(|| {
            Error::template(format!(
                "{at}: `{logical_id}` is neither a parameter nor a resource"
            ))
        })
    }

    /// The resource's name property, resolved; CloudFormation would generate one when absent,
    /// locally it is `<stack>-<logical id>`.
    pub(super) fn physical_name(
        &self,
        logical_id: &str,
        property: &str,
        at: &str,
        depth: usize,
    ) -> Result<String> {
        let resource = self.resource(logical_id, at)?;
        match resource.get("Properties").and_then(|p| p.get(property)) {
            Some(name) => {
                let at = format!("Resources.{logical_id}.Properties.{property}");
                scalar_string(&self.resolve_depth(name, &at, depth + 1)?, &at)
            }
            None => Ok(format!("{}-{logical_id}", self.stack.name)),
        }
    }

    pub(super) fn function_name(&self, logical_id: &str, at: &str, depth: usize) -> Result<String> {
        let resource = self.resource(logical_id, at)?;
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"));
        let name = binary.or_else(|| {
            resource
                .get("Properties")
                .and_then(|p| p.get("FunctionName"))
        });
        match name {
            Some(name) => {
                let at = format!("Resources.{logical_id}");
                scalar_string(&self.resolve_depth(name, &at, depth + 1)?, &at)
            }
            None => Ok(logical_id.to_owned()),
        }
    }
}

pub(super) fn long_form_intrinsic(mapping: &Mapping) -> Option<(&str, &Value)> {
    if mapping.len() != 1 {
        return None;
    }
    let (key, value) = mapping.iter().next()?;
    let key = key.as_str()?;
    (key == "Ref" || key.starts_with("Fn::")).then_some((key, value))
}

pub(super) fn two_arguments<'v>(
    argument: &'v Value,
    function: &str,
    at: &str,
) -> Result<[&'v Value; 2]> {
    match argument {
        Value::Sequence(parts) if parts.len() == 2 => Ok([&parts[0], &parts[1]]),
        _ => Err(Error::template(format!(
            "{at}: {function} takes a list of two arguments"
        ))),
    }
}

pub(super) fn sequence<'v>(value: &'v Value, at: &str) -> Result<&'v Vec<Value>> {
    value
        .as_sequence()
        .ok_or_else(|| Error::template(format!("{at}: expected a list")))
}

pub(super) fn section<'d>(document: &'d Value, name: &str) -> Result<Option<&'d Mapping>> {
    match document.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Mapping(mapping)) => Ok(Some(mapping)),
        Some(_) => Err(Error::template(format!("{name} is not a mapping"))),
    }
}

pub(super) fn key_str<'k>(key: &'k Value, at: &str) -> Result<&'k str> {
    key.as_str()
        .ok_or_else(|| Error::template(format!("{at}: a key is not a string")))
}

pub(super) fn resource_type(resource: &Value) -> Option<&str> {
    resource.get("Type").and_then(Value::as_str)
}

/// A resolved scalar as a string (numbers and booleans as CloudFormation renders them).
pub(super) fn scalar_string(value: &Value, at: &str) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Error::template(format!("{at}: expected a scalar"))),
    }
}
