//! The process allocator of every binary built with the `mimalloc` feature: the Lambda functions
//! and `wechat-local`, so the local server's figures are those of the code Lambda runs.
//!
//! glibc's allocator spent a fifth of a callback's CPU in `malloc` and its consolidation of freed
//! chunks in the local server (docs/benchmarks.md §11); in the functions, driven through the real
//! runtime client, mimalloc cuts the CPU of an invocation (§24). The workspace picks mimalloc's 2.x
//! line: 3.x serves an aligned request from a larger size class whenever its size's page has no
//! free block, and the crate sends every Rust allocation that way (§26). A library may name the global
//! allocator once for the whole program; the binaries' own `main.rs` then name none.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
