// SPDX-License-Identifier: BSD-2-Clause
//! ctl: typed round trips, MIB reuse, raw access by name, each error kind,
//! the build variables read back, stats_print.
use liballoc::ctl::{self, ErrorKind, Mib};
use liballoc::LibAlloc;

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

/// The tests change and read process-wide state (stats totals, arenas,
/// thread caches): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn version_and_config_describe_this_build() {
    let _serial = serial();
    let v = ctl::version::read().unwrap();
    assert!(v.chars().next().map_or(false, |c| c.is_ascii_digit()), "version {:?}", v);
    assert_eq!(ctl::config::stats::read().unwrap(), cfg!(feature = "stats"));
    assert_eq!(ctl::config::debug::read().unwrap(), cfg!(feature = "debug"));
    assert_eq!(ctl::config::prof::read().unwrap(), cfg!(feature = "profiling"));
    assert_eq!(ctl::opt::background_thread::read().unwrap(), cfg!(feature = "background_threads"));
    assert!(ctl::config::tcache::read().unwrap());
    // Every typed opt node reads in this build.
    ctl::opt::abort::read().unwrap();
    ctl::opt::abort_conf::read().unwrap();
    ctl::opt::narenas::read().unwrap(); // 0: one per CPU
    ctl::opt::percpu_arena::read().unwrap();
    ctl::opt::tcache::read().unwrap();
    ctl::opt::lg_tcache_max::read().unwrap();
    ctl::opt::stats_print::read().unwrap();
    assert!(ctl::opt::lg_chunk::read().unwrap() >= 18);
    ctl::opt::decay_time::read().unwrap();
    ctl::opt::dirty_decay_ms::read().unwrap();
    ctl::opt::lg_dirty_mult::read().unwrap();
    let purge = ctl::opt::purge::read().unwrap();
    assert!(purge == "decay" || purge == "ratio", "{}", purge);
    ctl::opt::purge_madvise::read().unwrap();
    ctl::opt::retain::read().unwrap();
    ctl::opt::max_bytes::read().unwrap();
    ctl::opt::thp::read().unwrap();
    ctl::opt::junk::read().unwrap();
    ctl::opt::zero::read().unwrap();
    ctl::opt::redzone::read().unwrap();
    ctl::opt::quarantine::read().unwrap();
    ctl::opt::xmalloc::read().unwrap();
    for r in [
        ctl::config::cache_oblivious::read(),
        ctl::config::fill::read(),
        ctl::config::lazy_lock::read(),
        ctl::config::munmap::read(),
        ctl::config::prof_libgcc::read(),
        ctl::config::prof_libunwind::read(),
        ctl::config::tls::read(),
        ctl::config::utrace::read(),
        ctl::config::valgrind::read(),
        ctl::config::xmalloc::read(),
    ] {
        r.unwrap();
    }
}

#[test]
fn build_variables_reach_configure() {
    let _serial = serial();
    let conf = ctl::config::malloc_conf::read().unwrap();
    assert_eq!(conf, option_env!("LIBALLOC_SYS_WITH_MALLOC_CONF").unwrap_or(""));
    let page = ctl::arenas::page::read().unwrap();
    match option_env!("LIBALLOC_SYS_WITH_LG_PAGE") {
        Some(lg) => assert_eq!(page, 1 << lg.parse::<u32>().unwrap()),
        None => assert!(page >= 4096 && page.is_power_of_two()),
    }
    let quantum = ctl::arenas::quantum::read().unwrap();
    let lg_quantum: u32 = option_env!("LIBALLOC_SYS_WITH_LG_QUANTUM").map_or(4, |s| s.parse().unwrap());
    assert_eq!(quantum, 1 << lg_quantum);
    assert_eq!(quantum, liballoc::sys::QUANTUM);
    // The compiled-in options are in force (the test sets decay_time).
    if let Some(conf) = option_env!("LIBALLOC_SYS_WITH_MALLOC_CONF") {
        if let Some(v) = conf.split(',').find_map(|kv| kv.strip_prefix("decay_time:")) {
            assert_eq!(ctl::opt::decay_time::read().unwrap(), v.parse::<isize>().unwrap());
        }
    }
}

#[test]
fn typed_round_trips() {
    let _serial = serial();
    // background_thread: on, off, back to what it was.
    match ctl::background_thread::read() {
        Ok(was) => {
            assert_eq!(ctl::background_thread::update(true).unwrap(), was);
            assert!(ctl::background_thread::read().unwrap());
            assert!(ctl::background_thread::update(false).unwrap());
            assert!(!ctl::background_thread::read().unwrap());
            ctl::background_thread::write(was).unwrap();
            assert!(cfg!(feature = "background_threads_runtime_support"));
        }
        Err(e) => {
            assert!(!cfg!(feature = "background_threads_runtime_support"));
            assert_eq!(e.kind(), ErrorKind::NotFound);
        }
    }
    // arenas.decay_time and thread.arena.
    let old = ctl::arenas::decay_time::read().unwrap();
    assert_eq!(ctl::arenas::decay_time::update(7).unwrap(), old);
    assert_eq!(ctl::arenas::decay_time::read().unwrap(), 7);
    ctl::arenas::decay_time::write(old).unwrap();
    let narenas = ctl::arenas::narenas::read().unwrap();
    let arena = ctl::thread::arena::read().unwrap();
    assert!(arena < narenas);
    let other = (arena + 1) % narenas;
    ctl::thread::arena::write(other).unwrap();
    assert_eq!(ctl::thread::arena::read().unwrap(), other);
    let v: Vec<u64> = vec![5; 1000];
    drop(v);
    ctl::thread::arena::write(arena).unwrap();
    // Explicit arenas and their actions.
    let new = ctl::arenas::extend::read().unwrap();
    assert_eq!(ctl::arenas::narenas::read().unwrap(), new + 1);
    ctl::arena::purge(new as usize).unwrap();
    ctl::arena::decay(new as usize).unwrap();
    ctl::arena::purge(ctl::arenas::narenas::read().unwrap() as usize).unwrap();
    // The thread cache.
    assert!(ctl::thread::tcache::enabled::read().unwrap());
    ctl::thread::tcache::flush().unwrap();
    assert!(ctl::thread::tcache::enabled::update(false).unwrap());
    assert!(!ctl::thread::tcache::enabled::read().unwrap());
    ctl::thread::tcache::enabled::write(true).unwrap();
    // Raw by name: the same values as the typed nodes.
    assert_eq!(ctl::read::<usize>("arenas.page").unwrap(), ctl::arenas::page::read().unwrap());
    assert_eq!(ctl::read_str("version").unwrap(), ctl::version::read().unwrap());
    assert_eq!(ctl::read::<bool>("config.tcache").unwrap(), true);
}

#[cfg(feature = "stats")]
#[test]
fn stats_follow_the_epoch_and_mibs_are_reused() {
    let _serial = serial();
    let epoch = ctl::epoch::mib().unwrap();
    let allocated = ctl::stats::allocated::mib().unwrap();
    let e0 = epoch.advance().unwrap();
    let before = allocated.read().unwrap();
    let big: Vec<u8> = Vec::with_capacity(16 << 20);
    // Not refreshed yet: the snapshot is unchanged.
    assert_eq!(allocated.read().unwrap(), before);
    let e1 = epoch.advance().unwrap();
    assert!(e1 > e0);
    let after = allocated.read().unwrap();
    // Other test threads exiting meanwhile give back their caches: slack.
    assert!(after + (1 << 20) >= before + (16 << 20), "{} -> {}", before, after);
    drop(big);
    // The same MIBs, many times (no name lookup).
    for _ in 0..1000 {
        epoch.advance().unwrap();
        allocated.read().unwrap();
    }
    epoch.advance().unwrap();
    // Down by the 16 MiB (the test harness's own threads allocate a little).
    let now = allocated.read().unwrap();
    assert!(now + (8 << 20) < after, "{} -> {} -> {}", before, after, now);
    let active = ctl::stats::active::read().unwrap();
    let resident = ctl::stats::resident::read().unwrap();
    let mapped = ctl::stats::mapped::read().unwrap();
    let metadata = ctl::stats::metadata::read().unwrap();
    ctl::stats::retained::read().unwrap();
    assert!(active >= allocated.read().unwrap());
    assert!(mapped >= active && metadata > 0 && resident > 0);
    // A MIB with an index: the sibling nodes of arenas.bin.<i>.size.
    let mut bin_size = Mib::<usize>::new("arenas.bin.0.size").unwrap();
    assert_eq!(bin_size.as_slice().len(), 4);
    let s0 = bin_size.read().unwrap();
    let s1 = bin_size.set_index(2, 1).read().unwrap();
    assert!(s1 > s0);
    let typed = ctl::thread::allocated::mib().unwrap();
    let a = typed.read().unwrap();
    let b: Box<[u8; 4000]> = Box::new([0; 4000]);
    assert!(typed.read().unwrap() >= a + 4000);
    drop(b);
    let mut version = ctl::version::mib().unwrap();
    assert_eq!(version.read().unwrap(), ctl::version::read().unwrap());
    assert_eq!(version.set_index(0, 0).as_slice().len(), 1);
}

#[cfg(not(feature = "stats"))]
#[test]
fn stats_nodes_are_absent_without_the_feature() {
    let _serial = serial();
    assert_eq!(ctl::stats::allocated::read().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(ctl::thread::allocatedp::read().unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn each_error_kind() {
    let _serial = serial();
    // ENOENT: unknown names, by name and by MIB, and an index out of range.
    let e = ctl::read::<u64>("no.such.node").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.errno(), 2);
    assert_eq!(Mib::<u64>::new("stats.nothing").unwrap_err().kind(), ErrorKind::NotFound);
    let mut bin = Mib::<usize>::new("arenas.bin.0.size").unwrap();
    assert_eq!(bin.set_index(2, 1 << 20).read().unwrap_err().kind(), ErrorKind::NotFound);
    // EINVAL: the wrong size (reading or writing), a NUL in the name.
    assert_eq!(ctl::read::<u8>("arenas.page").unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(ctl::write("arenas.decay_time", 1u8).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(ctl::read::<usize>("arenas\0.page").unwrap_err().kind(), ErrorKind::InvalidArgument);
    // EPERM: a read-only node written.
    let e = ctl::write("arenas.page", 8192usize).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("EPERM"), "{}", e);
    assert_eq!(ctl::write("version", 0usize).unwrap_err().kind(), ErrorKind::PermissionDenied);
    // EFAULT: a decay time out of range (jemalloc 4's answer), thread.arena
    // moved to an arena that does not exist.
    assert_eq!(ctl::arenas::decay_time::write(-7).unwrap_err().kind(), ErrorKind::Fault);
    assert_eq!(ctl::thread::arena::write(u32::MAX).unwrap_err().kind(), ErrorKind::Fault);
    // EAGAIN: the thread-cache table is bounded; fill it up.
    let mut made = Vec::new();
    let again = loop {
        match ctl::read::<u32>("tcache.create") {
            Ok(tc) => made.push(tc),
            Err(e) => break e,
        }
        assert!(made.len() < 1 << 20, "tcache.create never ran out");
    };
    assert_eq!(again.kind(), ErrorKind::Again, "{}", again);
    for tc in made {
        ctl::write("tcache.destroy", tc).unwrap();
    }
    assert!(ctl::read::<u32>("tcache.create").is_ok());
}

#[test]
fn stats_print_renders_every_section() {
    let _serial = serial();
    let text = liballoc::stats_print("");
    assert!(text.contains(&ctl::version::read().unwrap()));
    let json = liballoc::stats_print("J");
    assert!(json.contains("\"version\""), "{}", &json[..json.len().min(400)]);
    let general_only = liballoc::stats_print("mablh");
    assert!(general_only.len() <= text.len());
}
