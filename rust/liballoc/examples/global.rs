// SPDX-License-Identifier: BSD-2-Clause
//! The smallest use: liballoc as the global allocator, and proof from its
//! own counters that it served the program's allocations.
//!
//!     cargo run --offline --example global
use liballoc::{ctl, LibAlloc};

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

fn main() -> Result<(), ctl::Error> {
    let counter = ctl::thread::allocatedp::read()?;
    let before = counter.get();
    let words: Vec<String> = (0..10_000).map(|i| format!("word number {}", i)).collect();
    let after = counter.get();
    println!(
        "{} strings; this thread allocated {} bytes through liballoc {} ({} symbols)",
        words.len(),
        after - before,
        ctl::version::read()?,
        if liballoc::sys::SYMBOL_PREFIX.is_empty() { "unprefixed" } else { "_rla_-prefixed" }
    );
    Ok(())
}
