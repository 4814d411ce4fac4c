//! `careledger`: the command line. It wires `ingest` → `store` → `projections` → `reports`
//! and owns exit codes: 0 success, 1 bad input (nothing written), 2 usage, 3 damage found,
//! 4 the environment refused (so far: a signed store's signing key missing or not its own).
//!
//! It must never hold business rules itself: parsing is `ingest`'s, storage `store`'s,
//! meaning `projections`', tables `reports`'.

mod cli;
mod commands;
mod output;
mod resolve;

use std::process::ExitCode;

use clap::Parser;

/// An error that means the user's input was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// `verify` found damage in the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Damaged(pub String);

/// The machine refused: exit 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Environment(pub String);

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let keys = args.keys.as_deref();
    match resolve::request(args.command).and_then(|request| commands::run(&args.db, keys, request))
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(d) = err.downcast_ref::<Damaged>() {
                eprintln!("careledger: {d}");
                return ExitCode::from(3);
            }
            if let Some(e) = err.downcast_ref::<Environment>() {
                eprintln!("careledger: {e}");
                return ExitCode::from(4);
            }
            eprintln!("careledger: {err:#}");
            ExitCode::from(1)
        }
    }
}
