//! The library half of the `careledger` package: the read plan (`plan`) and the sealing of a
//! batch before its append (`sealing`), shared by the `careledger` binary, the service's
//! writer and the benchmarks (`careledger-bench`), which must measure the very reads and
//! writes the commands make; `service_plan` hands the same plan to `careledger serve`, with
//! `staff_cache` keeping the versions its worklists read.
//!
//! It owns nothing else; it must never hold a command, a flag or an exit code (those are the
//! binary's) nor a rule about what a view shows (that is `projections`).

pub mod plan;
pub mod report_read;
pub mod sealing;
pub mod service_plan;
pub mod staff_cache;
