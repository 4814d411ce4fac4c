//! Integration tests of `projections`: fixture-driven runs over flat wire JSONL logs
//! (`fixtures/<area>/<case>/`), one module per area.

mod schools_named;
mod scores;
mod support;
mod timeline;
mod views;
mod views_props;
mod world;
