//! The data set of a benchmark: the county generator of the `fixtures` crate at a named scale,
//! pulled in import batches. Every stage regenerates the same events from the same
//! configuration (the generator is deterministic), so no stage reads another's input files.
//!
//! It owns the scales and the batch sizes; it must never time anything nor write to a store.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use fixtures::{GenConfig, Generated};

/// The school year generated unless `--year` says otherwise (it must be over: the generator
/// refuses records of the future).
pub const DEFAULT_YEAR: &str = "2025-2026";

/// A named size of data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scale {
    /// 2 schools × 50 children, one school year (≈ 15 k events): runs in CI in the dev build.
    Small,
    /// 100 schools × 300 children, one school year: a county (30,000 children).
    County,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::County => "county",
        }
    }
}

/// What to generate and how to batch it; shared by `bench` and each of its stages.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Size of the data set.
    #[arg(long, value_enum, default_value_t = Scale::Small)]
    pub scale: Scale,
    /// Number of schools instead of the scale's.
    #[arg(long)]
    pub schools: Option<u32>,
    /// Children per school instead of the scale's.
    #[arg(long)]
    pub children: Option<u32>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// School year generated.
    #[arg(long, default_value = DEFAULT_YEAR)]
    pub year: String,
    /// Events per import batch (one atomic, fsynced commit each); 5,000 at small scale,
    /// 100,000 at county scale by default.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Work directory, created if missing; it must not hold a previous run's stores
    /// (a temporary directory, removed afterwards, by default).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

impl DataArgs {
    /// The generator's configuration.
    pub fn config(&self) -> GenConfig {
        let (schools, children) = match self.scale {
            Scale::Small => (2, 50),
            Scale::County => (100, 300),
        };
        GenConfig {
            schools: self.schools.unwrap_or(schools),
            children_per_school: self.children.unwrap_or(children),
            seed: self.seed,
            year: self.year.clone(),
            county: None,
        }
    }

    /// Events per import batch.
    pub fn batch(&self) -> usize {
        let default = match self.scale {
            Scale::Small => 5_000,
            Scale::County => 100_000,
        };
        self.batch.unwrap_or(default).max(1)
    }

    /// `small`, `county`, or `SCHOOLSxCHILDREN` (e.g. `4x300`) when the sizes were overridden.
    pub fn label(&self) -> String {
        if self.schools.is_some() || self.children.is_some() {
            let cfg = self.config();
            format!("{}x{}", cfg.schools, cfg.children_per_school)
        } else {
            self.scale.name().to_owned()
        }
    }

    /// The command-line arguments that reproduce this data set in a stage process (the
    /// directory is passed separately).
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--scale".to_owned(),
            self.scale.name().to_owned(),
            "--seed".to_owned(),
            self.seed.to_string(),
            "--year".to_owned(),
            self.year.clone(),
            "--batch".to_owned(),
            self.batch().to_string(),
        ];
        if let Some(s) = self.schools {
            a.extend(["--schools".to_owned(), s.to_string()]);
        }
        if let Some(c) = self.children {
            a.extend(["--children".to_owned(), c.to_string()]);
        }
        a
    }

    /// The generated events in batches of `batch()`, in log order.
    pub fn batches(&self) -> Result<Batches> {
        Ok(Batches {
            events: fixtures::events(&self.config(), chrono::Utc::now())?,
            size: self.batch(),
        })
    }
}

/// The generated events, `size` at a time.
pub struct Batches {
    events: fixtures::county::Events,
    size: usize,
}

impl Iterator for Batches {
    type Item = Vec<Generated>;

    fn next(&mut self) -> Option<Vec<Generated>> {
        let batch: Vec<Generated> = self.events.by_ref().take(self.size).collect();
        (!batch.is_empty()).then_some(batch)
    }
}
