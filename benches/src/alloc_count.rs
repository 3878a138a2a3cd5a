//! The counting allocator for the memory figures of the report binaries (`report`,
//! `peers-report`): the same file as core's tests use (`core/tests/support/
//! counting_alloc.rs`, the one allocator helper). Install it in a binary with
//! `#[global_allocator] static A: palisade_bench::alloc_count::Counting = Counting;`.

#[path = "../../core/tests/support/counting_alloc.rs"]
mod counting_alloc;

pub use counting_alloc::{Counting, allocations, live};
