//! The command-line grammar (clap), as DESIGN §10 lists it.
//!
//! This module owns names, flags and help texts; it must never do any work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// An honest record of the care given to left-behind children (留守儿童结对帮扶).
#[derive(Debug, Parser)]
#[command(name = "careledger", version, about)]
pub struct Cli {
    /// The store (a directory).
    #[arg(
        long,
        global = true,
        env = "CARELEDGER_DB",
        default_value = "./careledger-data"
    )]
    pub db: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every listing.
#[derive(Debug, Clone, Args)]
pub struct ListOpts {
    /// Only what was recorded by this time: RFC 3339, or a date (the end of that day, +08:00).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty store.
    Init,
    /// Import JSONL or CSV files, one atomic batch per file.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Keep each line's `recorded_at` (migration of paper records).
        #[arg(long)]
        preserve_recorded_at: bool,
        /// Validate only; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who is importing (the `actor` of lines that name none is still an error).
        #[arg(long, hide = true)]
        quiet: bool,
    },
    /// Append one event given as JSON (the fields of a JSONL line but `type`).
    Record {
        /// The event type, e.g. `talk_held`.
        r#type: String,
        #[arg(long)]
        json: String,
    },
    /// Walk the hash chain; name the first bad seq (exit 3).
    Verify,
    /// List the events with both times, actor and source.
    Log {
        #[arg(long)]
        child: Option<String>,
        #[arg(long)]
        staff: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Export the log.
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// Fill a temporary store from the embedded seed school, verify it and show what it holds.
    Demo {
        /// Keep the store here instead of a temporary directory.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportWhat {
    /// Every event, in log order.
    Events {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        #[arg(long)]
        out: PathBuf,
        /// Include counseling notes (a full backup, for the school only).
        #[arg(long)]
        with_confidential: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Durable bulk import of synthetic events into a fresh store.
    Import {
        /// Number of events.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events per batch (one atomic, fsynced append each).
        #[arg(long, default_value_t = 1_000_000)]
        batch: u64,
        /// Work directory (a temporary one by default).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}
