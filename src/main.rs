//! `careledger`: the command line. It wires `ingest` → `store` → `projections` → `reports`
//! and owns exit codes (`error`): 0 success, 1 bad input (nothing written), 2 usage, 3 damage
//! found, 4 environment (disk full, permission, read-only, store in use, I/O).
//!
//! It must never hold business rules itself: parsing is `ingest`'s, storage `store`'s,
//! meaning `projections`', tables `reports`'.

mod cli;
mod commands;
mod error;
mod memory;
mod output;
mod resolve;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

pub use error::{BadInput, CliError};

/// mimalloc instead of the C library's allocator: encoding, decoding and deriving run on
/// several threads at once, and glibc's arenas made them wait on one another's
/// reallocations (docs/stack.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    let name = matches.subcommand_name().unwrap_or("careledger").to_owned();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let stores = commands::Stores {
        db: args.db,
        copy: args.copy,
        keys: args.keys,
        command: name,
    };
    match resolve::request(args.command)
        .map_err(|e| error::CliError::classify(e, &stores.db))
        .and_then(|request| {
            if request.reads_a_county() {
                memory::without_huge_pages();
            }
            commands::run(stores, request)
        }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("careledger: {err}");
            ExitCode::from(err.code())
        }
    }
}
