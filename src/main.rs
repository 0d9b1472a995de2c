//! The `tickflow` binary.

use std::process::ExitCode;

use clap::Parser;

// mimalloc: the feed hot path allocates a few small strings per record; see docs/adr.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tickflow::cli::run(tickflow::cli::Cli::parse())
}
