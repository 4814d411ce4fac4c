//! Integration tests of `projections`: fixture-driven runs over flat wire JSONL logs
//! (`fixtures/<area>/<case>/`), one module per area.

mod scores;
mod support;
mod timeline;
mod world;
mod views;
mod views_wire;
mod views_props;
