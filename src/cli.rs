//! The command-line grammar (clap), as rules §10 lists it. Help texts say each rule in a few
//! words; the rules themselves are docs/rules.md.
//!
//! This module owns names, flags and help texts; it must never do any work, and nothing but
//! `resolve` reads its types: the handlers in `commands` take resolved options. Every number
//! it reads has a range, so that no user number reaches arithmetic unchecked (a `--days`
//! of 10^14 once overflowed chrono's durations).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The largest `backfill --days`: a century, far inside what date arithmetic can hold.
pub const MAX_LATE_DAYS: i64 = 36_500;

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
    /// Work on a private temporary copy of the store (said on stderr), e.g. an inspector's
    /// read-only copy, which sled cannot open in place. Read commands and `verify` only.
    #[arg(long, global = true)]
    pub copy: bool,
    /// The key directory holding the checkpoint signing key [default: `<db>.keys` beside the
    /// store].
    #[arg(long, global = true, env = "CARELEDGER_KEYS")]
    pub keys: Option<PathBuf>,
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
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `--format` of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
    /// `archives` only: the children's files as a 留守儿童登记表 workbook that re-imports.
    Xlsx,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an empty store, its checkpoint signing key and its master key (in the key
    /// directory).
    Init {
        /// The log's name in its checkpoints [default: careledger.local/<store directory name>].
        #[arg(long)]
        origin: Option<String>,
    },
    /// Import JSONL, CSV or XLSX files, one atomic batch per file (a workbook is one batch).
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Keep each line's `recorded_at` (migration of paper records).
        #[arg(long)]
        preserve_recorded_at: bool,
        /// Validate only; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// No progress bar.
        #[arg(long, hide = true)]
        quiet: bool,
        /// Who is importing (a staff id): the `actor` of workbook rows without a 记录人 cell.
        /// JSONL and CSV lines always name their own actor.
        #[arg(long)]
        actor: Option<String>,
    },
    /// Write a blank XLSX form for schools to fill in: one sheet per type, with headers, a
    /// sample row (skipped on import while unchanged), drop-down lists and date cells.
    Template {
        /// An event type (`child_registered`) or a form name (`留守儿童登记表`); repeatable.
        #[arg(long = "type", required = true)]
        types: Vec<String>,
        /// The workbook to write (.xlsx).
        #[arg(long)]
        out: PathBuf,
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
    /// Copy a store into a new sealed store (docs/privacy.md): every event, in log order, with
    /// its id and both times, opened with the old key directory (if any) and sealed under the
    /// new one's keys — a new chain. `--db` is not used; the target must not exist.
    Migrate {
        /// The store to copy (it is only read).
        #[arg(long)]
        from: PathBuf,
        /// Where to make the new store; must not exist.
        #[arg(long)]
        to: PathBuf,
        /// The old store's key directory [default: <FROM>.keys, when it holds a master key].
        #[arg(long)]
        from_keys: Option<PathBuf>,
        /// The new store's key directory [default: <TO>.keys].
        #[arg(long)]
        to_keys: Option<PathBuf>,
    },
    /// Erase a child's personal data (rules §5.14): record an erasure event, then destroy the
    /// child's data key, so every sealed field of the child reads as erased from then on.
    Erase {
        /// The child (child id).
        #[arg(long)]
        child: String,
        /// Why, on what legal basis (PIPL Art. 47: the purpose is served, the retention
        /// period is over, the guardian asked, …).
        #[arg(long)]
        basis: String,
        /// The staff member (staff id) who approved it; the event's actor.
        #[arg(long)]
        approved_by: String,
    },
    /// The children kept past their school's retention period after leaving the programme
    /// (rules §13.3): listed, and erased one by one (each an erasure event, as `erase` does)
    /// unless `--dry-run`.
    Retention {
        /// Only list them; erase nothing.
        #[arg(long)]
        dry_run: bool,
        /// The day to judge on (YYYY-MM-DD) [default: today at +08:00].
        #[arg(long)]
        on: Option<String>,
        /// The staff member (staff id) who approves the erasures: each erasure event's actor
        /// and `approved_by`. Required unless `--dry-run`.
        #[arg(long, required_unless_present = "dry_run")]
        approved_by: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
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
    /// A child's file (档案) as recorded by `--as-of`, as it stood on `--valid-at`.
    Archive {
        child: String,
        #[arg(long)]
        valid_at: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Every child file of a school, with completeness.
    Archives {
        #[arg(long)]
        school: String,
        /// Only incomplete files.
        #[arg(long)]
        incomplete: bool,
        #[arg(long)]
        valid_at: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// The one-page contact card (联系卡) of a child.
    ContactCard {
        child: String,
        #[arg(long)]
        on: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Every event touching a child, corrections included, with both times and the delay.
    History {
        child: String,
        #[arg(long, value_enum)]
        role: Option<Role>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// The progress file (成长记录袋) of a child.
    Progress {
        child: String,
        #[arg(long, value_enum)]
        role: Option<Role>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Active pairings and load per staff member of a school on a day.
    Pairings {
        #[arg(long)]
        school: String,
        #[arg(long)]
        on: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// What a staff member owes on a day, and what was missed this term.
    Worklist {
        #[arg(long)]
        staff: String,
        #[arg(long)]
        on: Option<String>,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Records entered long after the fact, and bursts of them, by staff.
    Backfill {
        #[arg(long)]
        school: String,
        /// A record is late when recorded more than this many days after it occurred
        /// (0 to 36500).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(0..=MAX_LATE_DAYS))]
        days: i64,
        #[command(flatten)]
        list: ListOpts,
    },
    /// Teacher assessment scores for a term or a school year.
    ///
    /// Per staff member: the share of due quota windows met (a window is due when the pairing
    /// was active on at least half its days), weighted by the policy in force; flags outstanding,
    /// disqualified, overloaded, unpaired. Two decimals, rounded half away from zero.
    Scores {
        #[arg(long, conflicts_with = "county", required_unless_present = "county")]
        school: Option<String>,
        /// Every school of this county in one run (the end-of-term evaluation run), each with
        /// the rows `--school` gives it.
        #[arg(long)]
        county: Option<String>,
        /// A term (2025-2026-1) or a school year (2025-2026).
        #[arg(long)]
        period: String,
        /// The other appraisal parts, a CSV of `staff,score` (year-end total).
        #[arg(long)]
        other_scores: Option<PathBuf>,
        /// The per-child, per-window drill-down of one staff member (JSON).
        #[arg(long)]
        staff: Option<String>,
        #[command(flatten)]
        opts: ScoreOpts,
    },
    /// Reports for the education bureau.
    Report {
        #[command(subcommand)]
        what: ReportWhat,
    },
    /// Care policies (制度).
    Policy {
        #[command(subcommand)]
        what: PolicyWhat,
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
    /// Run the service (docs/service.md): one process owns the store; teachers, counselors,
    /// school admins, inspectors and the bureau reach it over HTTP. Stops cleanly on Ctrl-C or
    /// SIGTERM (the queue is committed first).
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// A temporary store with the seed school and one account per role, passwords
        /// printed: how a new user sees the service in a minute.
        #[arg(long)]
        demo: bool,
    },
    /// Accounts of the service (docs/service.md): people log in with a password.
    User {
        #[command(subcommand)]
        what: UserWhat,
    },
    /// Bearer tokens of the service, for scripts and evaluation runs.
    Token {
        #[command(subcommand)]
        what: TokenWhat,
    },
    /// Who read which child's file through the service, and every export (inspectors).
    AccessLog {
        /// Only reads of this child's file.
        #[arg(long)]
        child: Option<String>,
        /// Only reads by this account.
        #[arg(long)]
        actor: Option<String>,
    },
    /// Test data.
    Fixtures {
        #[command(subcommand)]
        what: FixturesWhat,
    },
    #[command(flatten)]
    Proofs(ProofsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReportWhat {
    /// Term statistics (学期统计) of a school or a county.
    ///
    /// Per school, grade and class, with totals: the children active in the term, placed by
    /// their file on its last day, and the care they received in it. Nothing identifying.
    Term {
        #[arg(long)]
        term: String,
        #[arg(long, conflicts_with = "county", required_unless_present = "county")]
        school: Option<String>,
        #[arg(long)]
        county: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
        /// Formats, comma-separated: table, csv, json, parquet, xlsx.
        #[arg(long, default_value = "table")]
        format: String,
        /// Write one file per format into this folder (stdout otherwise, one format only).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FixturesWhat {
    /// A deterministic county of realistic records (valid `import --preserve-recorded-at` input).
    Generate {
        /// Number of schools (1 to 999).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=999))]
        schools: u32,
        /// Children per school (1 to 9999).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=9999))]
        children_per_school: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The school year to generate.
        #[arg(long, default_value = "2025-2026")]
        year: String,
        /// The county's name [default: 黔东县, ids as always]. A named county's ids all start
        /// with a code of its name (`k1a2b3c-s001`), so counties generated apart can be read
        /// together.
        #[arg(long)]
        county: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options of `scores`.
#[derive(Debug, Clone, Args)]
pub struct ScoreOpts {
    /// Only what was recorded by this time: RFC 3339, or a date (the end of that day, +08:00).
    #[arg(long)]
    pub as_of: Option<String>,
    /// json: a row per staff member (score, flags, compliance per quota); table, csv, xlsx:
    /// the year-end table with ranks.
    #[arg(long, value_enum, default_value_t = ScoreFormat::Table)]
    pub format: ScoreFormat,
    /// Write to this file instead of stdout (required for xlsx); with `--county`, a folder
    /// with one file per school (required for csv and xlsx).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Formats of `scores`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScoreFormat {
    Table,
    Json,
    Csv,
    Xlsx,
}

/// Who is looking: only a counselor sees counseling notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Counselor,
    Teacher,
    Admin,
    Inspector,
}

#[derive(Debug, Subcommand)]
pub enum PolicyWhat {
    /// Adopt a policy (制度: quotas, pairing limits, thresholds; TOML) from a date on.
    Adopt {
        #[arg(long)]
        school: String,
        #[arg(long)]
        from: String,
        file: PathBuf,
        /// Who adopts it (recorded as the actor).
        #[arg(long, default_value = "admin")]
        actor: String,
    },
    /// The policy in force on a day.
    Show {
        #[arg(long)]
        school: String,
        #[arg(long)]
        on: Option<String>,
        #[arg(long)]
        as_of: Option<String>,
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
        /// Include counseling notes (a full backup, for the school only): in clear with
        /// `--decrypt`, else where a store in clear holds them in clear.
        #[arg(long)]
        with_confidential: bool,
        /// Write personal fields in clear, opened with the key directory (a school admin's
        /// export, re-importable into any store); by default sealed fields stay sealed and the
        /// file re-imports only where this store's key directory is.
        #[arg(long)]
        decrypt: bool,
        /// Only what was recorded by this time (RFC 3339, or a date: the end of that day).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// The child-term feed of a province's warehouse (docs/province.md): one row per child
    /// counted in the term report, with a pseudonymous id (the county secret must be
    /// installed: `keys import-county-secret`), placement, flags and counts. No names,
    /// phones, addresses, birth dates or free text.
    ChildTerms {
        #[arg(long)]
        term: String,
        #[arg(long, value_enum, default_value_t = ChildTermsFormat::Parquet)]
        format: ChildTermsFormat,
        /// The folder to write (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// The county [default: the installed county secret's].
        #[arg(long, conflicts_with = "school")]
        county: Option<String>,
        /// One school of that county instead.
        #[arg(long)]
        school: Option<String>,
        /// Only what was recorded by this time (RFC 3339, or a date: the end of that day).
        #[arg(long)]
        as_of: Option<String>,
    },
}

/// `--format` of `export child-terms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChildTermsFormat {
    /// Hive-partitioned `county=/school=/term=` Parquet (`--out` is a folder).
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// The whole log, re-importable with `--preserve-recorded-at`.
    Jsonl,
    /// The bureau feed: effective events without names, phones, addresses or notes,
    /// hive-partitioned `county=/school=/term=` (`--out` is a folder).
    Parquet,
}

/// The signed checkpoints of the log and the proofs an inspector checks (docs/proofs.md).
#[derive(Debug, Subcommand)]
pub enum ProofsCommand {
    /// The key that signs the log's checkpoints.
    Keys {
        #[command(subcommand)]
        what: KeysWhat,
    },
    /// Print the latest signed checkpoint, or the one in force at `--as-of`.
    Checkpoint {
        /// The checkpoint of the last batch recorded by this time (RFC 3339, or a date).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Write an inclusion proof of one event, or a consistency proof `--from` an older
    /// checkpoint to the latest (JSON, for careledger-verify).
    Prove {
        /// The event's id.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        event: Option<String>,
        /// Prove against this saved checkpoint instead of the latest (a signed note, a proof
        /// file or careledger-verify's state file).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Prove that the log extends this older checkpoint (same kinds of file).
        #[arg(long, value_name = "FILE", conflicts_with = "checkpoint")]
        from: Option<PathBuf>,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write an inspector's bundle: a child's envelopes as stored with their proofs;
    /// counseling sessions are withheld (leaf hash and proof only).
    Bundle {
        #[arg(long)]
        child: String,
        /// Against the checkpoint in force at this time, with the events recorded by then.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// `keys`.
#[derive(Debug, Subcommand)]
pub enum KeysWhat {
    /// Create the signing key of an existing store (never replaces one) and sign its head.
    Init {
        /// The log's name in its checkpoints [default: careledger.local/<store directory name>].
        #[arg(long)]
        origin: Option<String>,
    },
    /// Print the verifier key inspectors pin.
    Show,
    /// Install the county's pseudonym secret the bureau issued (docs/privacy.md) in the key
    /// directory; never replaces a different one. The bureau's feeds need it.
    ImportCountySecret {
        /// The secret's file (`careledger county secret v1`).
        file: PathBuf,
    },
    /// Re-wrap every live data key (and the counselor key) under a new master key, atomically;
    /// erased keys stay erased (docs/privacy.md). Back the key directory up again afterwards
    /// and destroy the older backups.
    Rotate,
}

/// `user …`.
#[derive(Debug, Subcommand)]
pub enum UserWhat {
    /// Add an account. The password is read from stdin with `--password-stdin`, else one is
    /// made and printed.
    Add {
        /// The login name.
        user: String,
        /// teacher, counselor, school_admin, inspector or bureau.
        #[arg(long)]
        role: String,
        /// The staff member the account is (teachers, counselors; admins usually).
        #[arg(long)]
        staff: Option<String>,
        /// The school (teacher, counselor, school_admin).
        #[arg(long, conflicts_with = "county", required_unless_present = "county")]
        school: Option<String>,
        /// The county (inspector, bureau).
        #[arg(long)]
        county: Option<String>,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts (never a password).
    List,
    /// Disable an account: it cannot log in, its sessions and tokens end.
    Disable { user: String },
    /// Set a new password (ends the account's sessions).
    Passwd {
        user: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `token …`.
#[derive(Debug, Subcommand)]
pub enum TokenWhat {
    /// Create a token acting as an account; printed once, stored only as its hash.
    Create {
        /// The account it acts as.
        #[arg(long)]
        user: String,
        /// read, record or all.
        #[arg(long, default_value = "read")]
        scope: String,
        /// Days until it expires.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Revoke a token by its id (as `token create` printed it).
    Revoke { id: String },
}
