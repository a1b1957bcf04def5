//! Deletion policies that depend on a condition (`!If [<condition>, Retain, …]`), judged for the
//! parameters' defaults: the part of the hardening policy that evaluates CloudFormation
//! conditions.

use serde_yaml_ng::Value;

use super::{one_or_many, scalar};

/// `DeletionPolicy` and `UpdateReplacePolicy` keep the resource when the stack's parameters keep
/// their defaults: `Retain`, or `Fn::If [<condition>, Retain, …]` with the condition true then
/// (and the `AWS::LanguageExtensions` transform, which lets CloudFormation take an intrinsic
/// there).
pub fn retained(resource: &Value, document: &Value) -> bool {
    ["DeletionPolicy", "UpdateReplacePolicy"].iter().all(|key| {
        let policy = resource.get(*key);
        if policy.and_then(Value::as_str) == Some("Retain") {
            return true;
        }
        let Some((function, Value::Sequence(branches))) = policy.and_then(intrinsic) else {
            return false;
        };
        if function != "If" {
            return false;
        }
        let [condition, when_true, _] = branches.as_slice() else {
            return false;
        };
        has_language_extensions(document)
            && when_true.as_str() == Some("Retain")
            && condition
                .as_str()
                .is_some_and(|name| condition_by_default(document, name))
    })
}

fn has_language_extensions(document: &Value) -> bool {
    let transform = document.get("Transform");
    one_or_many(transform)
        .iter()
        .any(|t| t.as_str() == Some("AWS::LanguageExtensions"))
}

/// An intrinsic function as `(name without "Fn::", argument)`, short (`!If`) or long form.
pub fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            Some((tag.trim_start_matches('!').to_owned(), &tagged.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (key, argument) = m.iter().next()?;
            let key = key.as_str()?;
            Some((key.strip_prefix("Fn::").unwrap_or(key).to_owned(), argument))
        }
        _ => None,
    }
}

/// The named condition of `Conditions`, evaluated with every parameter at its `Default`
/// (`Equals`, `Not`, `And`, `Or`, `Condition`; anything else, or a parameter without a default,
/// is not known to hold).
pub fn condition_by_default(document: &Value, name: &str) -> bool {
    fn holds(document: &Value, value: &Value, depth: usize) -> Option<bool> {
        if depth > 16 {
            return None;
        }
        let (function, argument) = intrinsic(value)?;
        let all = || argument.as_sequence().into_iter().flatten();
        match function.as_str() {
            "Equals" => {
                let [a, b] = argument.as_sequence()?.as_slice() else {
                    return None;
                };
                Some(by_default(document, a)? == by_default(document, b)?)
            }
            "Not" => Some(!holds(
                document,
                argument.as_sequence()?.first()?,
                depth + 1,
            )?),
            "And" => all().try_fold(true, |ok, c| Some(ok && holds(document, c, depth + 1)?)),
            "Or" => all().try_fold(false, |ok, c| Some(ok || holds(document, c, depth + 1)?)),
            "Condition" => {
                let named = document.get("Conditions")?.get(argument.as_str()?)?;
                holds(document, named, depth + 1)
            }
            _ => None,
        }
    }
    fn by_default(document: &Value, value: &Value) -> Option<String> {
        match intrinsic(value) {
            Some((function, name)) if function == "Ref" => {
                let parameter = document.get("Parameters")?.get(name.as_str()?)?;
                Some(scalar(parameter.get("Default")?))
            }
            Some(_) => None,
            None => Some(scalar(value)),
        }
    }
    document
        .get("Conditions")
        .and_then(|c| c.get(name))
        .and_then(|c| holds(document, c, 0))
        == Some(true)
}
