//! Which stack an `ftgo` command works on, and how it reaches it (DESIGN §10): the SDK's own
//! settings (`AWS_ENDPOINT_URL`, `AWS_PROFILE`, `AWS_REGION`, ...), so that one command works on
//! the local stack and in AWS. Without `--endpoint` or `AWS_ENDPOINT_URL`, a local stack that
//! `ftgo run` (`make run`) announced in this workspace and that answers is used; otherwise AWS.
//!
//! Names: the template's, resolved for `--stack`, with the deployed stack's `Outputs` in their
//! place when CloudFormation knows the stack ([`crate::deployed`]): CloudFormation's generated
//! function names included. In AWS the stack must exist; with an emulator endpoint (the local
//! stack is provisioned without CloudFormation) the template's names stand alone.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::SdkConfig;
use clap::Args;

use crate::deployed::{StackOutputs, missing_stack};
use crate::local::{ANNOUNCEMENT, resolve_root, sdk_config};
use crate::template::{self, LOCAL_REGION, Stack, Template};

/// Where the stack is: workspace, template, stack name and endpoint.
#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// The workspace root (default: the nearest ancestor with template.yaml and Cargo.toml).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// The SAM template (default: <root>/template.yaml).
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// The stack name resources are named for.
    #[arg(long, default_value = template::LOCAL_STACK_NAME)]
    pub stack: String,
    /// The AWS endpoint (an emulator). Default: `AWS_ENDPOINT_URL`, else the local stack
    /// `make run` announced in this workspace (when it answers), else AWS itself.
    #[arg(long)]
    pub endpoint: Option<String>,
}

impl StackArgs {
    /// The workspace root.
    pub fn root(&self) -> Result<PathBuf, String> {
        resolve_root(self.root.as_deref())
    }

    /// The endpoint to use, if any (see [`StackArgs::endpoint`]'s flag).
    pub fn endpoint(&self) -> Option<String> {
        let configured = self
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|endpoint| !endpoint.is_empty());
        configured.or_else(|| announced_endpoint(&self.root().ok()?))
    }

    /// The template resolved for the stack, with the deployed stack's names when CloudFormation
    /// knows it, and the SDK configuration to reach it.
    pub async fn connect(&self) -> Result<(Template, SdkConfig), String> {
        let path = match &self.template {
            Some(path) => path.clone(),
            None => self.root()?.join("template.yaml"),
        };
        let endpoint = self.endpoint();
        let sdk = match &endpoint {
            Some(endpoint) => {
                let region = std::env::var("AWS_REGION").unwrap_or_else(|_| LOCAL_REGION.into());
                sdk_config(endpoint, &region).await
            }
            None => {
                aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .load()
                    .await
            }
        };
        let mut stack = Stack::named(&self.stack);
        if let Some(endpoint) = &endpoint {
            stack = stack.with_endpoint(endpoint);
        }
        if let Some(region) = sdk.region() {
            stack.region = region.to_string();
        }
        let region = stack.region.clone();
        let template =
            Template::load(&path, stack).map_err(|e| format!("{}: {e}", path.display()))?;
        let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
        let outputs = StackOutputs::describe(&cloudformation, &self.stack).await;
        let template = match (outputs, &endpoint) {
            (Ok(Some(outputs)), _) => template.with_outputs(&outputs),
            (Ok(None), None) => return Err(missing_stack(&self.stack, &region)),
            (Err(e), None) => return Err(e),
            (Ok(None), Some(_)) => template,
            (Err(e), Some(_)) => {
                tracing::debug!(error = %e, "no CloudFormation at the endpoint: the template's names");
                template
            }
        };
        Ok((template, sdk))
    }
}

/// The endpoint `ftgo run` announced in `root`'s default log directory, if its server accepts
/// a connection now (a stack that stopped without removing it is not used).
pub fn announced_endpoint(root: &Path) -> Option<String> {
    let file = crate::local::log_dir(root).join(ANNOUNCEMENT);
    let endpoint = std::fs::read_to_string(file).ok()?.trim().to_owned();
    let authority = endpoint.split("://").nth(1)?.trim_end_matches('/');
    let address: SocketAddr = authority.to_socket_addrs().ok()?.next()?;
    TcpStream::connect_timeout(&address, Duration::from_millis(300)).ok()?;
    tracing::debug!(%endpoint, "using the local stack announced by `ftgo run`");
    Some(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announced_endpoint_is_used_only_while_it_answers() {
        let root = std::env::temp_dir().join(format!("ftgo-target-{}", uuid::Uuid::new_v4()));
        let dir = root.join("target").join("ftgo");
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(announced_endpoint(&root), None, "nothing announced");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::fs::write(dir.join(ANNOUNCEMENT), format!("{endpoint}\n")).unwrap();
        assert_eq!(announced_endpoint(&root), Some(endpoint));
        drop(listener);
        assert_eq!(
            announced_endpoint(&root),
            None,
            "a stopped stack is not used"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
