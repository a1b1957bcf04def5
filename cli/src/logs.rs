//! The command lines' logs (`ftgo`, and `ftgo-local` of the local-stack crate): human-readable
//! lines on standard error, coloured on a terminal, at the level `--log` names (the AWS SDK's
//! and hyper's chatter held at `warn`).

/// Installs the global subscriber at `level` (an `EnvFilter` directive, e.g. `info` or
/// `ftgo_infra=debug`); an unreadable directive falls back to `info`.
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},aws_config=warn,aws_smithy_runtime=warn,hyper=warn"
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
