// SPDX-License-Identifier: BSD-2-Clause
//! Tuning at run time through ctl: background purging, the decay time of
//! new arenas, a dedicated arena for one thread, the thread cache.
//!
//!     cargo run --offline --example tuning
use std::thread;

use liballoc::{ctl, LibAlloc};

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

fn main() -> Result<(), ctl::Error> {
    match ctl::background_thread::update(true) {
        Ok(was) => println!("background purging on (was {})", was),
        Err(e) if e.kind() == ctl::ErrorKind::NotFound => {
            println!("background threads not compiled in (feature background_threads_runtime_support)")
        }
        Err(e) => return Err(e),
    }
    let old = ctl::arenas::decay_time::update(1)?;
    println!("decay time of new arenas: 1 s (was {} s)", old);

    // A thread with an arena of its own: its memory is not mixed with the
    // other threads'.
    let arena = ctl::arenas::extend::read()?;
    let handle = thread::spawn(move || -> Result<usize, ctl::Error> {
        ctl::thread::arena::write(arena)?;
        let v: Vec<Vec<u8>> = (0..1000).map(|i| vec![1u8; i]).collect();
        Ok(v.iter().map(|x| x.len()).sum())
    });
    let bytes = handle.join().expect("worker panicked")?;
    println!("worker allocated {} bytes in arena {}", bytes, arena);
    ctl::arena::purge(arena as usize)?;

    ctl::thread::tcache::flush()?;
    println!("opt.tcache = {}, lg_tcache_max = {}", ctl::opt::tcache::read()?, ctl::opt::lg_tcache_max::read()?);
    Ok(())
}
