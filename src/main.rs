//! The `tickflow` binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tickflow::cli::run(tickflow::cli::Cli::parse())
}
