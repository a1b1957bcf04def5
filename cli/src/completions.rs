//! `ftgo completions <shell>`: the shell completion script for the whole command tree
//! (`clap_complete`), the local stack's commands included.

use std::io::Write;

use clap_complete::Shell;

/// `ftgo completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// Writes the completion script of `command` (named `ftgo`) for `shell` to `out`.
pub fn write(shell: Shell, command: &mut clap::Command, out: &mut dyn Write) {
    clap_complete::generate(shell, command, "ftgo", out);
}
