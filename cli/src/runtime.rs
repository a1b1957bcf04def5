//! How both command lines (`ftgo`, and `ftgo-local` of the local-stack crate) run a command: on
//! a multi-threaded Tokio runtime, its outcome turned into the process's exit code.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

/// Runs `command` to its end on a new multi-threaded runtime and answers its exit code, or a
/// failure when the runtime cannot start (`program` names the binary in the message). The
/// runtime is given 500 ms to stop, so that a task blocked on standard input (`ftgo-local run
/// --exit-on-stdin-close`) does not keep the process alive.
pub fn block_on(program: &str, command: impl Future<Output = ExitCode>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(command);
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

/// The exit code of a command's `outcome`: success, or failure with its message on standard
/// error after `program: `.
pub fn exit_code(program: &str, outcome: Result<(), String>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{program}: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_to_its_exit_code() {
        assert_eq!(
            block_on("test", async { exit_code("test", Ok(())) }),
            ExitCode::SUCCESS
        );
        assert_eq!(
            block_on("test", async { exit_code("test", Err("no".to_owned())) }),
            ExitCode::FAILURE
        );
    }
}
