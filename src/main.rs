//! The `sluice` command line: one module per subcommand under `commands/`.

mod commands;

/// Survives the impossible allocations hostile Kafka requests can ask for (see
/// `sluice_core::alloc`).
#[global_allocator]
static ALLOC: sluice_core::alloc::ReserveLargeAllocator = sluice_core::alloc::ReserveLargeAllocator;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = commands::Cli::parse();
    commands::init_tracing(cli.verbose);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, which turns `sluice consume ... | head` into a panic on the next
/// write. A command-line tool should instead end quietly, as `cat` does.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any other thread exists; setting a signal
    // disposition to SIG_DFL has no other preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
