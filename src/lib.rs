//! The library half of the `careledger` package: the read plan (`plan`), shared by the
//! `careledger` binary and the benchmarks (`careledger-bench`), which must measure the very
//! reads the commands make; `service_plan` hands the same plan to `careledger serve`, and
//! `sealing` seals a batch before the append for the commands and the service's writer alike.
//!
//! It owns nothing else; it must never hold a command, a flag or an exit code (those are the
//! binary's) nor a rule about what a view shows (that is `projections`).

pub mod plan;
pub mod sealing;
pub mod service_plan;
