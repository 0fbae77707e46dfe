// SPDX-License-Identifier: BSD-2-Clause
//! A private heap: a parse-and-discard loop that allocates its scratch
//! blocks in a 4 MiB region and frees them all at once per round with
//! `reset`, then reuses the region for something else.
//!
//!     cargo run --offline --example heap
use std::alloc::Layout;

use liballoc::heap::{self, Heap, MIN_REGION};

fn main() -> Result<(), heap::Error> {
    // A page-aligned region; here from the global allocator, but any
    // initialized memory works (an mmap, a static array).
    let layout = Layout::from_size_align(MIN_REGION, heap::page_size()).unwrap();
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!base.is_null());
    let region = unsafe { std::slice::from_raw_parts_mut(base, MIN_REGION) };

    let lines = ["alpha beta gamma", "one two three four five", "x y"];
    Heap::scope(region, |heap| -> Result<(), heap::Error> {
        println!("heap in arena {}: {:?}", heap.arena_index()?, heap.stats()?);
        for round in 0..3 {
            // Scratch copies of every word, in the heap.
            let mut words = Vec::new();
            for line in &lines {
                for word in line.split(' ') {
                    let layout = Layout::for_value(word.as_bytes());
                    let p = heap.allocate(layout)?;
                    unsafe {
                        p.as_ptr()
                            .copy_from_nonoverlapping(word.as_ptr(), word.len())
                    };
                    words.push((p, word.len()));
                }
            }
            let total: usize = words.iter().map(|&(_, n)| n).sum();
            let st = heap.stats()?;
            println!(
                "round {}: {} words, {} bytes, heap holds {} blocks / {} bytes",
                round,
                words.len(),
                total,
                st.nblocks,
                st.allocated
            );
            // The pointers in `words` dangle after this: drop them first.
            drop(words);
            heap.reset()?;
            assert_eq!(heap.stats()?.nblocks, 0);
        }
        Ok(())
    })??;

    // The heap is destroyed: the region is plain memory again.
    let region = unsafe { std::slice::from_raw_parts_mut(base, MIN_REGION) };
    region.fill(0);
    unsafe { std::alloc::dealloc(base, layout) };
    println!("region reused and freed");
    Ok(())
}
