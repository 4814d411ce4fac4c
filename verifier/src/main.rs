//! The `careledger-verify` binary: argument parsing, reading files, exit codes.
//!
//! It owns the command line and the exit codes (0 accepted, 1 rejected, 2 usage or unreadable
//! input); every check lives in the library. It must never write the state file unless the whole
//! file was accepted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use verifier::check::{self, Accepted, Rejection};
use verifier::format::{Bundle, ConsistencyFile, InclusionFile};
use verifier::keys::VerifierKey;
use verifier::state::{self, State};

/// Checks careledger's log proofs offline against pinned public keys.
///
/// Exit status: 0 accepted, 1 rejected (the reason is printed), 2 usage error or unreadable
/// input. See docs/proofs.md for the file formats.
#[derive(Parser)]
#[command(name = "careledger-verify", version)]
struct Cli {
    /// A pinned verifier key `<name>+<key id>+<key>`, as the log's operator published it. Repeat
    /// for several logs.
    #[arg(long = "key", value_name = "VKEY", global = true)]
    keys: Vec<String>,
    /// A file of pinned verifier keys, one per line (`#` comments allowed).
    #[arg(long = "keys", value_name = "FILE", global = true)]
    keys_file: Option<PathBuf>,
    /// Where the last accepted checkpoint per key is remembered [default: careledger/verify-state.json
    /// under the user's config directory].
    #[arg(long, value_name = "FILE", global = true)]
    state: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks an inclusion-proof file: one envelope is in the log at a signed checkpoint.
    Inclusion {
        /// The inclusion-proof file (JSON, `careledger-inclusion-proof`).
        file: PathBuf,
        /// A consistency-proof file from the remembered checkpoint to this one.
        #[arg(long, value_name = "FILE")]
        consistency: Vec<PathBuf>,
    },
    /// Checks a consistency-proof file: an earlier tree is a prefix of a signed checkpoint's.
    Consistency {
        /// The consistency-proof file (JSON, `careledger-consistency-proof`).
        file: PathBuf,
    },
    /// Checks a bundle: a child's envelopes, their inclusion proofs and hash chain, and the
    /// inclusion of each leaf withheld as confidential (counted in the report).
    Bundle {
        /// The bundle (JSON, `careledger-bundle`).
        file: PathBuf,
        /// A consistency-proof file from the remembered checkpoint to this one.
        #[arg(long, value_name = "FILE")]
        consistency: Vec<PathBuf>,
    },
}

enum Failure {
    Usage(String),
    Rejected(Rejection),
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Self {
        Failure::Rejected(r)
    }
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}

fn run(cli: Cli) -> Result<Accepted, Failure> {
    let mut keys = Vec::new();
    for k in &cli.keys {
        keys.push(VerifierKey::parse(k).map_err(|e| Failure::Usage(e.to_string()))?);
    }
    if let Some(path) = &cli.keys_file {
        let text = read(path)?;
        keys.extend(
            VerifierKey::parse_file(&text)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?,
        );
    }
    if keys.is_empty() {
        return Err(Failure::Usage("no pinned key: give --key or --keys".into()));
    }
    let state_path = match cli.state {
        Some(p) => p,
        None => state::default_path().map_err(|e| Failure::Usage(e.to_string()))?,
    };
    let mut state = State::load(&state_path).map_err(|e| Failure::Usage(e.to_string()))?;
    let extra = |paths: &[PathBuf]| -> Result<Vec<ConsistencyFile>, Failure> {
        paths
            .iter()
            .map(|p| ConsistencyFile::parse(&read(p)?).map_err(|e| Failure::Rejected(e.into())))
            .collect()
    };
    let accepted = match &cli.command {
        Command::Inclusion { file, consistency } => {
            let f = InclusionFile::parse(&read(file)?).map_err(Rejection::from)?;
            check::inclusion(&f, &keys, &state, &state_path, &extra(consistency)?)?
        }
        Command::Consistency { file } => {
            let f = ConsistencyFile::parse(&read(file)?).map_err(Rejection::from)?;
            check::consistency(&f, &keys, &state, &state_path)?
        }
        Command::Bundle { file, consistency } => {
            let f = Bundle::parse(&read(file)?).map_err(Rejection::from)?;
            check::bundle(&f, &keys, &state, &state_path, &extra(consistency)?)?
        }
    };
    state.remember(&accepted.verified);
    state
        .save(&state_path)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(accepted)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(accepted) => {
            print!("{}", accepted.report());
            ExitCode::SUCCESS
        }
        Err(Failure::Rejected(r)) => {
            eprintln!("careledger-verify: rejected: {r}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("careledger-verify: {msg}");
            ExitCode::from(2)
        }
    }
}
