//! `careledger-bench …`: benchmarks of whole operations on one generated data set, printed as
//! one markdown table with the machine they ran on (and, with `--docs`, written into
//! docs/BENCHMARKS.md). Figures are measured, never asserted in tests.
//!
//! `careledger-bench --scale S` runs each stage (import, SQLite import, floor, replay,
//! readmodels, archive, report, encryption) as a child process of this binary (`careledger-bench stage
//! NAME`), so each stage's peak memory (`VmHWM`, which the kernel cannot reset) is its own;
//! the stages share the work directory. `careledger-bench import --events N` is the single
//! durable bulk import of issue 2; `careledger-bench serve` measures the service
//! (`careledger serve`) against SQLite under 1, 16 and 64 concurrent clients.
//!
//! A crate of its own so that the product binary does not link SQLite. It owns the benchmark
//! drivers and their table; it must never be used by tests for timing, and it must never
//! touch sled except through `store`.

mod data;
mod encryption;
mod floor;
mod import;
mod machine;
mod queries;
mod serve;
mod sqlite;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use data::DataArgs;

/// mimalloc instead of the C library's allocator: encoding, decoding and deriving run on
/// several threads at once, and glibc's arenas made them wait on one another's
/// reallocations (docs/stack.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks of careledger (figures for docs/BENCHMARKS.md; never run by tests for timing).
#[derive(Debug, Parser)]
#[command(
    name = "careledger-bench",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    pub(crate) what: Option<BenchWhat>,
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Also write the table into this markdown file (docs/BENCHMARKS.md), between the markers
    /// of its scale and build profile, or at its end when they are missing.
    #[arg(long)]
    pub(crate) docs: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchWhat {
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
    /// The service (`careledger serve`) over a store of the generated year: 1, 16 and 64
    /// clients recording single talks over HTTP, side by side with SQLite; the worklist page.
    Serve(serve::ServeArgs),
    /// One stage of `bench --scale …`, run in a process of its own (prints one JSON line).
    #[command(hide = true)]
    Stage {
        #[arg(value_enum)]
        stage: Stage,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// The stages of a benchmark run, in the order they run (each reads what `Import` wrote).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Stage {
    Import,
    Sqlite,
    Floor,
    Replay,
    #[value(name = "readmodels")]
    ReadModels,
    Archive,
    Report,
    Encryption,
}

impl Stage {
    const ALL: [Stage; 8] = [
        Stage::Import,
        Stage::Sqlite,
        Stage::Floor,
        Stage::Replay,
        Stage::ReadModels,
        Stage::Archive,
        Stage::Report,
        Stage::Encryption,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Import => "import",
            Stage::Sqlite => "sqlite",
            Stage::Floor => "floor",
            Stage::Replay => "replay",
            Stage::ReadModels => "readmodels",
            Stage::Archive => "archive",
            Stage::Report => "report",
            Stage::Encryption => "encryption",
        }
    }
}

/// What a stage measured: named figures (seconds, counts, bytes), notes, and the stage
/// process's peak resident memory.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct StageOut {
    /// Measured figures by name (`*_s` in seconds; counts and bytes otherwise).
    pub(crate) figures: BTreeMap<String, f64>,
    /// Text results by name (such as `head_hash`, compared across stages).
    pub(crate) notes: BTreeMap<String, String>,
    /// The stage process's peak resident set (`VmHWM`) in KiB; `None` where `/proc` lacks it.
    pub(crate) peak_rss_kib: Option<u64>,
    /// Wall time of the whole stage process, as seen by the parent.
    #[serde(default)]
    pub(crate) wall_s: f64,
}

impl StageOut {
    fn set(&mut self, key: &str, value: f64) {
        self.figures.insert(key.to_owned(), value);
    }

    fn note(&mut self, key: &str, value: impl Into<String>) {
        self.notes.insert(key.to_owned(), value.into());
    }
}

fn main() -> std::process::ExitCode {
    match run(BenchArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("careledger-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a benchmark.
fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        Some(BenchWhat::Import { events, batch, dir }) => import::import(events, batch, dir),
        Some(BenchWhat::Serve(args)) => serve::serve(&args),
        Some(BenchWhat::Stage { stage, data }) => {
            let dir = data
                .dir
                .clone()
                .context("a bench stage needs --dir (the run's work directory)")?;
            let mut out = run_stage(stage, &data, &dir)?;
            out.peak_rss_kib = machine::peak_rss_kib();
            println!("{}", serde_json::to_string(&out)?);
            Ok(())
        }
        None => suite(&args.data, args.docs.as_deref()),
    }
}

fn run_stage(stage: Stage, data: &DataArgs, dir: &Path) -> Result<StageOut> {
    match stage {
        Stage::Import => import::careledger(data, dir),
        Stage::Sqlite => sqlite::import(data, dir),
        Stage::Floor => floor::floor(data, dir),
        Stage::Replay => queries::replay(data, dir),
        Stage::ReadModels => queries::readmodels(data, dir),
        Stage::Archive => queries::archive(data, dir),
        Stage::Report => queries::report(data, dir),
        Stage::Encryption => encryption::encryption(data, dir),
    }
}

/// Runs one stage as a child process of this binary and reads its JSON line.
fn spawn_stage(stage: Stage, data: &DataArgs, dir: &Path) -> Result<StageOut> {
    // `/proc/self/exe` runs this very binary even when a rebuild has replaced its file since
    // the run started (the build cache is shared); elsewhere, the path it was started from.
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_owned()
    } else {
        std::env::current_exe().context("finding this binary to run a bench stage")?
    };
    let t = Instant::now();
    let output = Command::new(exe)
        .arg("stage")
        .arg(stage.name())
        .args(data.to_args())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting bench stage {}", stage.name()))?;
    if !output.status.success() {
        bail!("bench stage {} failed ({})", stage.name(), output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let mut out: StageOut = serde_json::from_str(line)
        .with_context(|| format!("reading the result of bench stage {}", stage.name()))?;
    out.wall_s = t.elapsed().as_secs_f64();
    Ok(out)
}

/// `bench --scale S`: every stage on one data set, then the table.
fn suite(data: &DataArgs, docs: Option<&Path>) -> Result<()> {
    let machine = machine::machine();
    let tmp;
    let dir = match &data.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary work directory")?;
            tmp.path().to_owned()
        }
    };
    let cfg = data.config();
    eprintln!(
        "bench: scale {} ({} schools × {} children, seed {}), batches of {}, in {}",
        data.label(),
        cfg.schools,
        cfg.children_per_school,
        cfg.seed,
        data.batch(),
        dir.display()
    );
    let mut results = BTreeMap::new();
    for stage in Stage::ALL {
        eprintln!("bench: stage {} …", stage.name());
        let out = spawn_stage(stage, data, &dir)?;
        eprintln!("bench: stage {} done in {:.1} s", stage.name(), out.wall_s);
        results.insert(stage.name(), out);
    }
    let text = table::render(&machine, data, &results);
    print!("{text}");
    // Both imports must have stored byte-identical bodies, or the comparison compares nothing.
    let head = |stage: &str| results.get(stage).and_then(|o| o.notes.get("head_hash"));
    if head("import").is_none() || head("import") != head("sqlite") {
        bail!("careledger and SQLite ended on different chain hashes: the imports differ");
    }
    if let Some(path) = docs {
        table::write_docs(path, &data.label(), machine.profile, &text)?;
        eprintln!("bench: table written into {}", path.display());
    }
    Ok(())
}
