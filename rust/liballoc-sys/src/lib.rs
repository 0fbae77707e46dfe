// SPDX-License-Identifier: BSD-2-Clause
//! Raw FFI bindings to liballoc, a jemalloc-style `malloc` replacement.
//!
//! Everything `include/alloc.h` declares is here with the same name and
//! prototype: the C allocation functions, jemalloc's `*allocx` family, the
//! `mallctl` family, `malloc_stats_print`, `malloc_message`, `malloc_conf`,
//! the chunk hook types, and the `MALLOCX_*` flags as `const fn`s with
//! jemalloc's bit encodings. The build script compiles the C library from
//! source (its own `configure` and `make`, in `OUT_DIR`) and links
//! `liballoc.a` statically.
//!
//! By default every C symbol carries the prefix `_rla_` (`_rla_malloc`, ...)
//! so the C library's `malloc` stays in place and only calls through this
//! crate reach liballoc. With the feature
//! `unprefixed_malloc_on_supported_platforms` on Linux with glibc the
//! symbols are unprefixed and liballoc serves every `malloc` of the program,
//! C and C++ code included. The Rust names are the same either way.
//!
//! The safe layer (a `GlobalAlloc`, typed `mallctl` access) is the
//! `liballoc` crate. The semantics of each function are those of the
//! manual page `alloc(3)` in the liballoc sources.
#![allow(non_camel_case_types, non_snake_case)]
#![deny(missing_docs)]

use std::os::raw::{c_char, c_int, c_uint, c_void};

include!(concat!(env!("OUT_DIR"), "/config.rs"));

/// The prefix of every C symbol in this build: `"_rla_"`, or `""` when
/// liballoc replaces `malloc` (feature `unprefixed_malloc_on_supported_platforms`
/// on Linux with glibc).
#[cfg(not(all(
    feature = "unprefixed_malloc_on_supported_platforms",
    target_os = "linux",
    target_env = "gnu"
)))]
pub const SYMBOL_PREFIX: &str = "_rla_";
/// The prefix of every C symbol in this build: `"_rla_"`, or `""` when
/// liballoc replaces `malloc` (feature `unprefixed_malloc_on_supported_platforms`
/// on Linux with glibc).
#[cfg(all(
    feature = "unprefixed_malloc_on_supported_platforms",
    target_os = "linux",
    target_env = "gnu"
))]
pub const SYMBOL_PREFIX: &str = "";

/// The smallest alignment `malloc` guarantees for every block of at least
/// this many bytes: the configured quantum (16 unless
/// `LIBALLOC_SYS_WITH_LG_QUANTUM` said otherwise). A smaller block of size
/// `n` is aligned to the largest power of two that divides its size class,
/// at least the largest power of two not above `n`.
pub const QUANTUM: usize = 1 << LG_QUANTUM;

/// Declares C functions under their configured symbol names.
macro_rules! c_functions {
    ($(
        $(#[$attr:meta])*
        pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;
    )*) => {
        extern "C" {
            $(
                $(#[$attr])*
                #[cfg_attr(
                    not(all(
                        feature = "unprefixed_malloc_on_supported_platforms",
                        target_os = "linux",
                        target_env = "gnu"
                    )),
                    link_name = concat!("_rla_", stringify!($name))
                )]
                pub fn $name($($arg: $ty),*) $(-> $ret)?;
            )*
        }
    };
}

// ---------------------------------------------------------------------------
// Flags for the *allocx functions: jemalloc's bits.

/// Align to `1 << la` bytes. `la` is not checked.
#[inline]
pub const fn MALLOCX_LG_ALIGN(la: usize) -> c_int {
    la as c_int
}

/// Align to `align` bytes, which must be a power of two (not checked).
#[inline]
pub const fn MALLOCX_ALIGN(align: usize) -> c_int {
    align.trailing_zeros() as c_int
}

/// Zero the new memory (for `rallocx` and `xallocx`: the part past the old
/// size).
pub const MALLOCX_ZERO: c_int = 0x40;

/// Use the explicit thread cache `tc`, an index from the `tcache.create`
/// mallctl.
#[inline]
pub const fn MALLOCX_TCACHE(tc: usize) -> c_int {
    tc.wrapping_add(2).wrapping_shl(8) as c_int
}

/// Bypass the thread caches altogether: `MALLOCX_TCACHE(-1)`.
pub const MALLOCX_TCACHE_NONE: c_int = MALLOCX_TCACHE(usize::MAX);

/// Allocate from arena `a` (an index below `arenas.narenas`, or one that
/// `arenas.extend` returned).
#[inline]
pub const fn MALLOCX_ARENA(a: usize) -> c_int {
    (a as c_int).wrapping_add(1).wrapping_shl(20)
}

// ---------------------------------------------------------------------------
// Chunk hooks (arena.<i>.chunk_hooks): jemalloc 4's types.

/// Maps a chunk of `size` bytes aligned to `alignment` (at `chunk` when not
/// null); sets `*zero` and `*commit` as described in `alloc(3)`; null on
/// failure.
pub type chunk_alloc_t = unsafe extern "C" fn(
    chunk: *mut c_void,
    size: usize,
    alignment: usize,
    zero: *mut bool,
    commit: *mut bool,
    arena_ind: c_uint,
) -> *mut c_void;
/// Gives a chunk back; returns false on success, true to keep it mapped
/// (liballoc then reuses it).
pub type chunk_dalloc_t =
    unsafe extern "C" fn(chunk: *mut c_void, size: usize, committed: bool, arena_ind: c_uint) -> bool;
/// Commits `length` bytes at `offset` in the chunk; false on success.
pub type chunk_commit_t = unsafe extern "C" fn(
    chunk: *mut c_void,
    size: usize,
    offset: usize,
    length: usize,
    arena_ind: c_uint,
) -> bool;
/// Decommits `length` bytes at `offset` in the chunk; false on success.
pub type chunk_decommit_t = unsafe extern "C" fn(
    chunk: *mut c_void,
    size: usize,
    offset: usize,
    length: usize,
    arena_ind: c_uint,
) -> bool;
/// Purges `length` bytes at `offset` in the chunk; false when the pages
/// read back as zeros afterwards.
pub type chunk_purge_t = unsafe extern "C" fn(
    chunk: *mut c_void,
    size: usize,
    offset: usize,
    length: usize,
    arena_ind: c_uint,
) -> bool;
/// Splits a chunk into two of `size_a` and `size_b` bytes; false on success.
pub type chunk_split_t = unsafe extern "C" fn(
    chunk: *mut c_void,
    size: usize,
    size_a: usize,
    size_b: usize,
    committed: bool,
    arena_ind: c_uint,
) -> bool;
/// Merges two adjacent chunks into one; false on success.
pub type chunk_merge_t = unsafe extern "C" fn(
    chunk_a: *mut c_void,
    size_a: usize,
    chunk_b: *mut c_void,
    size_b: usize,
    committed: bool,
    arena_ind: c_uint,
) -> bool;

/// The hook table read and written through `arena.<i>.chunk_hooks`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct chunk_hooks_t {
    /// Maps chunks.
    pub alloc: Option<chunk_alloc_t>,
    /// Unmaps chunks.
    pub dalloc: Option<chunk_dalloc_t>,
    /// Commits pages.
    pub commit: Option<chunk_commit_t>,
    /// Decommits pages.
    pub decommit: Option<chunk_decommit_t>,
    /// Purges pages.
    pub purge: Option<chunk_purge_t>,
    /// Splits a chunk.
    pub split: Option<chunk_split_t>,
    /// Merges two chunks.
    pub merge: Option<chunk_merge_t>,
}

// ---------------------------------------------------------------------------
// Extent hooks (arena.<i>.extent_hooks, arenas.create): jemalloc 5.3's types.
// Every hook gets the table it was called through; all but alloc and
// destroy return false on success.

/// Maps `size` bytes aligned to `alignment` (at `new_addr` when not null);
/// null on failure.
pub type extent_alloc_t = unsafe extern "C" fn(
    extent_hooks: *mut extent_hooks_t,
    new_addr: *mut c_void,
    size: usize,
    alignment: usize,
    zero: *mut bool,
    commit: *mut bool,
    arena_ind: c_uint,
) -> *mut c_void;
/// Gives an extent back; true to keep it (retained until destroy).
pub type extent_dalloc_t = unsafe extern "C" fn(
    extent_hooks: *mut extent_hooks_t,
    addr: *mut c_void,
    size: usize,
    committed: bool,
    arena_ind: c_uint,
) -> bool;
/// Unmaps an extent for good (arena destruction).
pub type extent_destroy_t =
    unsafe extern "C" fn(extent_hooks: *mut extent_hooks_t, addr: *mut c_void, size: usize, committed: bool, arena_ind: c_uint);
/// Commits, decommits or purges `length` bytes at `offset`; false on
/// success (the type of `commit`, `decommit`, `purge_lazy` and
/// `purge_forced`).
pub type extent_range_t = unsafe extern "C" fn(
    extent_hooks: *mut extent_hooks_t,
    addr: *mut c_void,
    size: usize,
    offset: usize,
    length: usize,
    arena_ind: c_uint,
) -> bool;
/// Commits pages; false on success.
pub type extent_commit_t = extent_range_t;
/// Decommits pages; false on success.
pub type extent_decommit_t = extent_range_t;
/// Purges pages; false on success.
pub type extent_purge_t = extent_range_t;
/// Splits an extent in two; false on success.
pub type extent_split_t = unsafe extern "C" fn(
    extent_hooks: *mut extent_hooks_t,
    addr: *mut c_void,
    size: usize,
    size_a: usize,
    size_b: usize,
    committed: bool,
    arena_ind: c_uint,
) -> bool;
/// Merges two adjacent extents; false on success.
pub type extent_merge_t = unsafe extern "C" fn(
    extent_hooks: *mut extent_hooks_t,
    addr_a: *mut c_void,
    size_a: usize,
    addr_b: *mut c_void,
    size_b: usize,
    committed: bool,
    arena_ind: c_uint,
) -> bool;

/// The extent hook table (`struct extent_hooks_s`); a None member means
/// "not supported".
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct extent_hooks_t {
    /// Maps extents.
    pub alloc: Option<extent_alloc_t>,
    /// Gives extents back.
    pub dalloc: Option<extent_dalloc_t>,
    /// Unmaps extents for good.
    pub destroy: Option<extent_destroy_t>,
    /// Commits pages.
    pub commit: Option<extent_commit_t>,
    /// Decommits pages.
    pub decommit: Option<extent_decommit_t>,
    /// Purges pages lazily (`MADV_FREE`).
    pub purge_lazy: Option<extent_purge_t>,
    /// Purges pages at once.
    pub purge_forced: Option<extent_purge_t>,
    /// Splits an extent.
    pub split: Option<extent_split_t>,
    /// Merges two extents.
    pub merge: Option<extent_merge_t>,
}

// ---------------------------------------------------------------------------
// Private heaps.

/// A private heap (opaque): allocation inside a region the caller provides.
#[repr(C)]
pub struct alloc_heap_t {
    _private: [u8; 0],
}

/// `alloc_heap_create` flag: the heap is used by several processes.
pub const ALLOC_HEAP_SHARED: c_uint = 1;

/// What `alloc_heap_stats` reports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct alloc_heap_stats_t {
    /// Bytes of the region.
    pub size: usize,
    /// Bytes blocks can use (the region's chunks).
    pub usable: usize,
    /// `size - usable`: headers, descriptors, alignment.
    pub overhead: usize,
    /// Usable bytes of the live blocks.
    pub allocated: usize,
    /// Highest `allocated` since create or reset.
    pub high_water: usize,
    /// Bytes of the pages holding live blocks.
    pub active: usize,
    /// `usable - active`.
    pub free: usize,
    /// Live blocks.
    pub nblocks: usize,
    /// Chunks in the region.
    pub chunks: usize,
    /// The flags the heap was created with.
    pub flags: c_uint,
}

c_functions! {
    // -----------------------------------------------------------------------
    // The standard API.

    /// Allocates `size` bytes, aligned for any fundamental type; null (errno
    /// ENOMEM) on failure.
    pub fn malloc(size: usize) -> *mut c_void;
    /// Allocates `num * size` zeroed bytes; null on overflow or failure.
    pub fn calloc(num: usize, size: usize) -> *mut c_void;
    /// Resizes `ptr` (moving it when needed) to `size` bytes; null on
    /// failure, `ptr` then untouched.
    pub fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    /// `realloc(ptr, num * size)`, null when the product overflows.
    pub fn reallocarray(ptr: *mut c_void, num: usize, size: usize) -> *mut c_void;
    /// Frees `ptr` (null is allowed).
    pub fn free(ptr: *mut c_void);
    /// Allocates `size` bytes aligned to `alignment` (a power of two and a
    /// multiple of the pointer size) into `*memptr`; returns 0, EINVAL or
    /// ENOMEM.
    pub fn posix_memalign(memptr: *mut *mut c_void, alignment: usize, size: usize) -> c_int;
    /// Allocates `size` bytes aligned to `alignment`, a power of two.
    pub fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void;
    /// Allocates `size` bytes aligned to `alignment` (obsolete).
    pub fn memalign(alignment: usize, size: usize) -> *mut c_void;
    /// Allocates `size` bytes aligned to a page (obsolete).
    pub fn valloc(size: usize) -> *mut c_void;
    /// Allocates `size` rounded up to whole pages, page-aligned (obsolete).
    pub fn pvalloc(size: usize) -> *mut c_void;
    /// The usable size of the block at `ptr` (0 for null).
    pub fn malloc_usable_size(ptr: *const c_void) -> usize;

    // -----------------------------------------------------------------------
    // jemalloc's extended allocation API.

    /// Allocates at least `size` bytes (`size` must not be 0) with `flags`
    /// (`MALLOCX_*`); null on failure.
    pub fn mallocx(size: usize, flags: c_int) -> *mut c_void;
    /// Resizes `ptr` to at least `size` bytes, moving it if needed; null on
    /// failure (`ptr` then untouched).
    pub fn rallocx(ptr: *mut c_void, size: usize, flags: c_int) -> *mut c_void;
    /// Resizes `ptr` in place to at least `size` and where possible up to
    /// `size + extra` bytes; never moves; returns the resulting usable size.
    pub fn xallocx(ptr: *mut c_void, size: usize, extra: usize, flags: c_int) -> usize;
    /// The usable size of `ptr`.
    pub fn sallocx(ptr: *const c_void, flags: c_int) -> usize;
    /// Frees `ptr`.
    pub fn dallocx(ptr: *mut c_void, flags: c_int);
    /// Frees `ptr`, whose size the caller knows: any size from the one
    /// requested up to the usable size.
    pub fn sdallocx(ptr: *mut c_void, size: usize, flags: c_int);
    /// The usable size `mallocx(size, flags)` would return, without
    /// allocating; 0 when the request cannot be satisfied.
    pub fn nallocx(size: usize, flags: c_int) -> usize;

    // -----------------------------------------------------------------------
    // Private heaps (see alloc(3)).

    /// Makes a heap in `[base, base+size)` (page-aligned, at least 4 MiB);
    /// null with errno EINVAL, EBUSY or ENOMEM.
    pub fn alloc_heap_create(base: *mut c_void, size: usize, flags: c_uint) -> *mut alloc_heap_t;
    /// The heap another process made at `base`; null (EINVAL) when there is none.
    pub fn alloc_heap_attach(base: *mut c_void) -> *mut alloc_heap_t;
    /// `malloc` from the heap.
    pub fn alloc_heap_malloc(heap: *mut alloc_heap_t, size: usize) -> *mut c_void;
    /// `calloc` from the heap.
    pub fn alloc_heap_calloc(heap: *mut alloc_heap_t, n: usize, size: usize) -> *mut c_void;
    /// `realloc` within the heap.
    pub fn alloc_heap_realloc(heap: *mut alloc_heap_t, ptr: *mut c_void, size: usize) -> *mut c_void;
    /// `aligned_alloc` from the heap.
    pub fn alloc_heap_aligned_alloc(heap: *mut alloc_heap_t, alignment: usize, size: usize) -> *mut c_void;
    /// Frees a block of the heap.
    pub fn alloc_heap_free(heap: *mut alloc_heap_t, ptr: *mut c_void);
    /// The heap's arena index in this process (for `MALLOCX_ARENA`).
    pub fn alloc_heap_arena(heap: *mut alloc_heap_t) -> c_uint;
    /// Frees every block of the heap at once; 0 or an errno value.
    pub fn alloc_heap_reset(heap: *mut alloc_heap_t) -> c_int;
    /// Ends the heap; 0 or an errno value.
    pub fn alloc_heap_destroy(heap: *mut alloc_heap_t) -> c_int;
    /// Fills `*st`; 0 or an errno value.
    pub fn alloc_heap_stats(heap: *mut alloc_heap_t, st: *mut alloc_heap_stats_t) -> c_int;
    /// Only in a library configured with `--enable-private-heap` (which no
    /// feature of this crate selects; see `LIBALLOC_OVERRIDE`): the malloc
    /// family allocates only from the heap made in `[start, start+size)`.
    /// Referencing it with another library is a link error.
    pub fn config_private_heap(start: *mut c_void, size: usize) -> c_int;
    /// Only with `--enable-private-heap`: frees every block of the private
    /// heap at once.
    pub fn malloc_reset();

    // -----------------------------------------------------------------------
    // Introspection and tuning.

    /// Reads and/or writes the node `name` (see `alloc(3)`): the old value
    /// goes to `oldp` (`*oldlenp` bytes), the new one comes from `newp`
    /// (`newlen` bytes). Returns 0 or an errno value: ENOENT unknown name,
    /// EINVAL bad length or value, EPERM read-only, EFAULT failure inside,
    /// EAGAIN try again.
    pub fn mallctl(
        name: *const c_char,
        oldp: *mut c_void,
        oldlenp: *mut usize,
        newp: *mut c_void,
        newlen: usize,
    ) -> c_int;
    /// Translates `name` into a MIB of at most `*miblenp` components, for
    /// `mallctlbymib`; sets `*miblenp` to the number written.
    pub fn mallctlnametomib(name: *const c_char, mibp: *mut usize, miblenp: *mut usize) -> c_int;
    /// `mallctl` by a MIB from `mallctlnametomib` (whose index components
    /// may be changed to reach a sibling node).
    pub fn mallctlbymib(
        mib: *const usize,
        miblen: usize,
        oldp: *mut c_void,
        oldlenp: *mut usize,
        newp: *mut c_void,
        newlen: usize,
    ) -> c_int;
    /// Writes the statistics through `write_cb` (`malloc_message` when
    /// None), each call with `cbopaque` and a NUL-terminated piece of text.
    /// `opts`: see `alloc(3)`; `"J"` selects JSON.
    pub fn malloc_stats_print(
        write_cb: Option<unsafe extern "C" fn(*mut c_void, *const c_char)>,
        cbopaque: *mut c_void,
        opts: *const c_char,
    );
}

extern "C" {
    /// Where liballoc writes its messages (warnings, `malloc_stats_print`
    /// without a callback); a program may replace it.
    #[cfg_attr(
        not(all(
            feature = "unprefixed_malloc_on_supported_platforms",
            target_os = "linux",
            target_env = "gnu"
        )),
        link_name = "_rla_malloc_message"
    )]
    pub static mut malloc_message: Option<unsafe extern "C" fn(cbopaque: *mut c_void, s: *const c_char)>;

    /// Options compiled into the program, read at start-up like
    /// `MALLOC_CONF`. liballoc's own definition is a weak null; to set it,
    /// use the build variable `LIBALLOC_SYS_WITH_MALLOC_CONF` (or the
    /// `MALLOC_CONF` environment variable) instead.
    #[cfg_attr(
        not(all(
            feature = "unprefixed_malloc_on_supported_platforms",
            target_os = "linux",
            target_env = "gnu"
        )),
        link_name = "_rla_malloc_conf"
    )]
    pub static malloc_conf: *const c_char;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_encodings_are_jemallocs() {
        assert_eq!(MALLOCX_LG_ALIGN(12), 12);
        assert_eq!(MALLOCX_ALIGN(4096), 12);
        assert_eq!(MALLOCX_ALIGN(1), 0);
        assert_eq!(MALLOCX_ALIGN(1 << 30), 30);
        assert_eq!(MALLOCX_ZERO, 0x40);
        assert_eq!(MALLOCX_TCACHE(0), 2 << 8);
        assert_eq!(MALLOCX_TCACHE(5), 7 << 8);
        assert_eq!(MALLOCX_TCACHE_NONE, 1 << 8);
        assert_eq!(MALLOCX_ARENA(0), 1 << 20);
        assert_eq!(MALLOCX_ARENA(3), 4 << 20);
    }

    #[test]
    fn hook_tables_have_cs_layout() {
        let p = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<chunk_hooks_t>(), 7 * p);
        assert_eq!(std::mem::size_of::<extent_hooks_t>(), 9 * p);
        assert_eq!(std::mem::size_of::<alloc_heap_stats_t>(), 10 * p);
    }

    #[test]
    fn a_private_heap_in_a_region() {
        let size = 8 << 20;
        let layout = std::alloc::Layout::from_size_align(size, 4096).unwrap();
        unsafe {
            let region = std::alloc::alloc(layout) as *mut c_void;
            assert!(!region.is_null());
            let heap = alloc_heap_create(region, size, 0);
            assert!(!heap.is_null());
            let p = alloc_heap_malloc(heap, 1000) as *mut u8;
            assert!(!p.is_null());
            assert!(p as usize >= region as usize && (p as usize) < region as usize + size);
            p.write_bytes(7, 1000);
            let mut st = alloc_heap_stats_t::default();
            assert_eq!(alloc_heap_stats(heap, &mut st), 0);
            assert_eq!((st.size, st.nblocks), (size, 1));
            assert!(st.allocated >= 1000);
            alloc_heap_free(heap, p as *mut c_void);
            assert_eq!(alloc_heap_destroy(heap), 0);
            std::alloc::dealloc(region as *mut u8, layout);
        }
    }

    #[test]
    fn raw_calls_reach_the_library() {
        unsafe {
            let p = mallocx(100, MALLOCX_ALIGN(256) | MALLOCX_ZERO) as *mut u8;
            assert!(!p.is_null());
            assert_eq!(p as usize % 256, 0);
            let n = sallocx(p as *const c_void, 0);
            assert!(n >= 100);
            assert_eq!(n, nallocx(100, MALLOCX_ALIGN(256)));
            assert!(std::slice::from_raw_parts(p, 100).iter().all(|&b| b == 0));
            sdallocx(p as *mut c_void, 100, MALLOCX_ALIGN(256));

            let mut q: *mut c_void = std::ptr::null_mut();
            assert_eq!(posix_memalign(&mut q, 64, 10), 0);
            assert_eq!(q as usize % 64, 0);
            assert!(malloc_usable_size(q) >= 10);
            free(q);
            assert_eq!(posix_memalign(&mut q, 3, 10), 22 /* EINVAL */);

            let mut ver: *const c_char = std::ptr::null();
            let mut len = std::mem::size_of::<*const c_char>();
            let rc = mallctl(
                b"version\0".as_ptr() as *const c_char,
                &mut ver as *mut _ as *mut c_void,
                &mut len,
                std::ptr::null_mut(),
                0,
            );
            assert_eq!(rc, 0);
            assert!(!ver.is_null());
            assert!(malloc_conf.is_null());
        }
    }
}
