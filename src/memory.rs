//! How the process asks the kernel for memory, per command: the one place the binary tunes
//! the allocator's use of transparent huge pages. It must never change what a command
//! computes, only how its allocations meet the kernel.
//!
//! mimalloc (the binaries' allocator, docs/stack.md) asks for transparent huge pages, so the
//! first touch of a fresh 2 MiB region makes the kernel zero all of it. That suits the short
//! reads (a teacher's worklist as a whole CLI run took 84 ms with them against 108 ms without,
//! `farm-bench` medians of 15 on the county store). A county-wide read allocates hundreds of
//! MiB that it fills once (sled's pages, the fact rows' frames, polars' joins), and about two
//! fifths of its samples were the kernel zeroing huge pages: without them `report term
//! --county` took 1.19 s against 1.47 s and `scores --county` 3.33 s against 3.60 s, peak
//! memory lower too (docs/read-models.md, "Huge pages off for a county's read").

/// Turns transparent huge pages off for the rest of the process (`PR_SET_THP_DISABLE`):
/// memory touched from now on comes in 4 KiB pages. A kernel that refuses leaves things as
/// they were, which changes only the speed.
pub fn without_huge_pages() {
    let _ = nix::sys::prctl::set_thp_disable(true);
}
