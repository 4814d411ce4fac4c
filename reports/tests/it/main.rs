//! Integration tests of the reports crate: the term-report cases under fixtures/reports/
//! (golden JSON), every output format read back, the bureau feed read back with polars, and
//! privacy over every byte written. One test binary for the crate (docs/stack.md, polars).

mod bureau;
mod cases;
mod child_terms;
mod differential;
mod formats;
mod golden;
mod privacy;
mod scorer;
mod seed;
mod year_end;
