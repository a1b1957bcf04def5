//! The glue from the [`Template`] to the gateway's routes, the bridge's event sources and the
//! functions' environment, which the `ftgo` subcommands share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_config::SdkConfig;

use crate::bridge::{Bridge, BridgeOptions};
use crate::gateway::{ApiIdentity, Gateway, GatewayOptions, RouteTable};
use crate::invoke::Invoker;
use crate::template::Template;

/// The gateway's routes: every `HttpApi` route of the template, served by its function's binary.
pub fn gateway_routes(template: &Template) -> crate::Result<RouteTable> {
    RouteTable::new(template.routes().to_vec())
}

/// The local gateway: the template's routes, served through `invoker`, in the stack's account.
pub fn local_gateway(template: &Template, invoker: Arc<dyn Invoker>) -> crate::Result<Gateway> {
    Ok(Gateway::new(
        gateway_routes(template)?,
        invoker,
        GatewayOptions {
            identity: ApiIdentity {
                account_id: template.stack().account_id.clone(),
                ..ApiIdentity::default()
            },
            ..GatewayOptions::default()
        },
    ))
}

/// The local bridge: the template's event sources, invoking through `invoker`, writing its
/// progress to `progress_file` when given.
pub fn local_bridge(
    sdk: &SdkConfig,
    template: &Template,
    invoker: Arc<dyn Invoker>,
    progress_file: Option<PathBuf>,
) -> Bridge {
    let options = BridgeOptions {
        progress_file,
        ..BridgeOptions::default()
    };
    Bridge::new(sdk, template, invoker, options)
}

/// The environment `cargo lambda watch` gives every function: each variable any function of the
/// template sets (resolved for the stack, so queue URLs point at the emulator), plus the SDK's
/// endpoint, region and test credentials. A variable two functions set differently keeps the
/// first value, with a warning (one `cargo lambda watch` serves them all).
pub fn function_environment(template: &Template, endpoint: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for function in template.functions() {
        for (key, value) in &function.environment {
            match env.get(key) {
                Some(existing) if existing != value => tracing::warn!(
                    %key, function = %function.binary, "functions set different values; the local stack uses the first"
                ),
                Some(_) => {}
                None => {
                    env.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let region = template.stack().region.clone();
    for (key, value) in [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ] {
        env.insert(key.to_owned(), value);
    }
    env
}

/// The AWS endpoint address of `make run` (`ftgo run`'s default `--aws`).
pub const DEFAULT_AWS_ADDR: &str = "127.0.0.1:4566";

/// cargo-lambda's configuration file, which `cargo lambda watch` reads from the directory it
/// runs in or the nearest one above (its `[env]` is every function's base environment).
pub const CARGO_LAMBDA_CONFIG: &str = "CargoLambda.toml";

/// The command that writes [`CARGO_LAMBDA_CONFIG`] from the template.
pub const CARGO_LAMBDA_CONFIG_COMMAND: &str = "cargo run -p ftgo-infra -- lambda-config";

/// The repository's [`CARGO_LAMBDA_CONFIG`]: the local stack's environment of every function
/// ([`function_environment`]) for `template` resolved at `endpoint`, so that a plain
/// `cargo lambda watch` starts every function with its environment against `make run`'s
/// emulator. Derived from the template only, never edited by hand.
pub fn cargo_lambda_config(template: &Template, endpoint: &str) -> String {
    let mut out = format!(
        "# Generated from template.yaml by `{CARGO_LAMBDA_CONFIG_COMMAND}`: do not edit.\n\
         # Every function's environment on `make run`'s emulator ({endpoint}), for a plain\n\
         # `cargo lambda watch` (cargo-lambda reads this file from the directory it runs in or\n\
         # above). A test fails when it no longer matches the template. Local values only:\n\
         # the stack deploys with SAM (`make deploy`), never with `cargo lambda deploy`.\n\n\
         [env]\n"
    );
    for (key, value) in function_environment(template, endpoint) {
        // A JSON string is a valid TOML basic string (the same escapes); keys are variable names.
        let value = serde_json::Value::String(value).to_string();
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}
