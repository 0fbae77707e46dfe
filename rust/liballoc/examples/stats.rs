// SPDX-License-Identifier: BSD-2-Clause
//! Reading statistics: typed nodes, MIBs resolved once for a loop, raw
//! names, and the full report.
//!
//!     cargo run --offline --example stats [-- --json]
use std::collections::HashMap;

use liballoc::{ctl, LibAlloc};

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

fn main() -> Result<(), ctl::Error> {
    // Resolve the names once; each read below is one mallctlbymib call.
    let epoch = ctl::epoch::mib()?;
    let allocated = ctl::stats::allocated::mib()?;
    let resident = ctl::stats::resident::mib()?;

    let mut map: HashMap<u64, Vec<u8>> = HashMap::new();
    for round in 0..5u64 {
        for i in 0..20_000 {
            map.insert(round * 20_000 + i, vec![0u8; (i % 700) as usize]);
        }
        epoch.advance()?;
        println!(
            "round {}: {:>10} bytes allocated, {:>10} resident",
            round,
            allocated.read()?,
            resident.read()?
        );
    }
    map.clear();
    map.shrink_to_fit();
    // Give the dirty pages back now instead of waiting for decay; the
    // index arenas.narenas means every arena.
    let all = ctl::arenas::narenas::read()? as usize;
    ctl::arena::purge(all)?;
    epoch.advance()?;
    println!("after purge: {} bytes allocated, {} resident", allocated.read()?, resident.read()?);

    // Any node by name, with the type the manual gives it.
    let decay: isize = ctl::read("opt.decay_time")?;
    let purge = ctl::read_str("opt.purge")?;
    println!("decay_time {} s, purge mode {}", decay, purge);

    // Errors say what mallctl meant.
    if let Err(e) = ctl::write("arenas.page", 1usize) {
        println!("writing arenas.page: {} ({:?})", e, e.kind());
    }

    let json = std::env::args().any(|a| a == "--json");
    print!("{}", liballoc::stats_print(if json { "J" } else { "ablh" }));
    Ok(())
}
