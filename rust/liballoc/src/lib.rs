// SPDX-License-Identifier: BSD-2-Clause
//! liballoc as Rust's global allocator.
//!
//! liballoc is a jemalloc-style `malloc` replacement written in C: thread
//! caches, per-CPU arenas, size classes, decay-based purging, and jemalloc's
//! extended API and `mallctl` namespace. This crate puts it behind Rust's
//! [`GlobalAlloc`] and gives typed access to its statistics and tuning:
//!
//! ```no_run
//! use liballoc::LibAlloc;
//!
//! #[global_allocator]
//! static GLOBAL: LibAlloc = LibAlloc;
//!
//! fn main() {
//!     let v: Vec<u64> = (0..1000).collect();
//!     liballoc::ctl::epoch::advance().unwrap();
//!     let allocated = liballoc::ctl::stats::allocated::read().unwrap();
//!     println!("{} values, {} bytes allocated", v.len(), allocated);
//! }
//! ```
//!
//! The C library is built from source by `liballoc-sys` and linked
//! statically. By default its symbols carry the prefix `_rla_`, so C code in
//! the same program keeps the C library's `malloc`; the feature
//! `unprefixed_malloc_on_supported_platforms` makes liballoc serve every
//! `malloc` of the program (Linux with glibc). The cargo features and build
//! variables are those of `tikv-jemallocator`/`jemalloc-sys`, renamed: see
//! the crate's README.
//!
//! - [`LibAlloc`]: the allocator.
//! - [`usable_size`]: the usable size of a block.
//! - [`ctl`]: `mallctl` by typed node, by MIB and by raw name.
//! - [`stats_print`]: `malloc_stats_print` into a `String`.
#![deny(missing_docs)]

use std::alloc::{GlobalAlloc, Layout};
use std::os::raw::{c_char, c_int, c_void};

pub use liballoc_sys as sys;

pub mod ctl;

/// The smallest alignment liballoc's `malloc` gives a block of at least this
/// size: the configured quantum. Layouts that ask for no more (and are no
/// smaller than their alignment) go through the plain C entry points.
const MIN_ALIGN: usize = sys::QUANTUM;

/// The `MALLOCX_*` flags a layout needs: none when `malloc` already aligns
/// a block of this size enough, else `MALLOCX_ALIGN(align)`.
#[inline]
fn layout_flags(align: usize, size: usize) -> c_int {
    if align <= MIN_ALIGN && align <= size {
        0
    } else {
        sys::MALLOCX_ALIGN(align)
    }
}

/// liballoc as a [`GlobalAlloc`]: put it in a `#[global_allocator]` static.
///
/// - `alloc`: `malloc`, or `mallocx` with `MALLOCX_ALIGN` when the layout's
///   alignment is above what `malloc` guarantees for its size;
/// - `alloc_zeroed`: `calloc`, or `mallocx` with `MALLOCX_ZERO`;
/// - `dealloc`: `sdallocx` with the layout's size (a sized free, which skips
///   the size lookup);
/// - `realloc`: `realloc`, or `rallocx` with the alignment flag.
///
/// A layout that cannot be satisfied (too large, alignment too large)
/// returns null, never aborts.
#[derive(Clone, Copy, Debug, Default)]
pub struct LibAlloc;

unsafe impl GlobalAlloc for LibAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        debug_assert!(layout.size() != 0);
        let flags = layout_flags(layout.align(), layout.size());
        if flags == 0 {
            sys::malloc(layout.size()) as *mut u8
        } else {
            sys::mallocx(layout.size(), flags) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        debug_assert!(layout.size() != 0);
        let flags = layout_flags(layout.align(), layout.size());
        if flags == 0 {
            sys::calloc(1, layout.size()) as *mut u8
        } else {
            sys::mallocx(layout.size(), flags | sys::MALLOCX_ZERO) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let flags = layout_flags(layout.align(), layout.size());
        sys::sdallocx(ptr as *mut c_void, layout.size(), flags)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        debug_assert!(new_size != 0);
        let flags = layout_flags(layout.align(), new_size);
        if flags == 0 {
            sys::realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            sys::rallocx(ptr as *mut c_void, new_size, flags) as *mut u8
        }
    }
}

/// The usable size of the block at `ptr`: at least the size it was
/// allocated with, often more (its size class).
///
/// # Safety
///
/// `ptr` must point to the start of a live block allocated by liballoc
/// (through [`LibAlloc`] or the `liballoc-sys` functions).
#[inline]
pub unsafe fn usable_size<T>(ptr: *const T) -> usize {
    sys::malloc_usable_size(ptr as *const c_void)
}

/// The usable size `LibAlloc` would give `layout`, without allocating; 0
/// when it cannot be satisfied.
#[inline]
pub fn usable_size_of(layout: Layout) -> usize {
    unsafe { sys::nallocx(layout.size().max(1), layout_flags(layout.align(), layout.size().max(1))) }
}

/// `malloc_stats_print` into a `String`. `opts` are its option characters
/// (see `alloc(3)`): `""` for the full text report, `"J"` for JSON, `"g"`,
/// `"m"`, `"a"`, `"b"`, `"l"`, `"h"` to leave parts out. A NUL in `opts`
/// ends it.
pub fn stats_print(opts: &str) -> String {
    unsafe extern "C" fn append(opaque: *mut c_void, text: *const c_char) {
        let out = &mut *(opaque as *mut Vec<u8>);
        out.extend_from_slice(std::ffi::CStr::from_ptr(text).to_bytes());
    }
    let mut c_opts: Vec<u8> = opts.bytes().take_while(|&b| b != 0).collect();
    c_opts.push(0);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    unsafe {
        sys::malloc_stats_print(
            Some(append),
            &mut out as *mut Vec<u8> as *mut c_void,
            c_opts.as_ptr() as *const c_char,
        );
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_the_quantum() {
        assert_eq!(layout_flags(1, 1), 0);
        assert_eq!(layout_flags(8, 8), 0);
        assert_eq!(layout_flags(MIN_ALIGN, MIN_ALIGN), 0);
        assert_eq!(layout_flags(16, 8), sys::MALLOCX_ALIGN(16));
        assert_eq!(layout_flags(MIN_ALIGN * 2, 4096), sys::MALLOCX_ALIGN(MIN_ALIGN * 2));
    }

    #[test]
    fn usable_size_of_matches_the_block() {
        let layout = Layout::from_size_align(100, 64).unwrap();
        unsafe {
            let p = LibAlloc.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(usable_size(p), usable_size_of(layout));
            assert!(usable_size(p) >= 100);
            LibAlloc.dealloc(p, layout);
        }
    }

    #[test]
    fn stats_print_gives_text_and_json() {
        let text = stats_print("");
        assert!(text.contains("Version"), "{}", text);
        let json = stats_print("J");
        assert!(json.trim_start().starts_with('{'), "{}", json);
        assert!(json.trim_end().ends_with('}'), "{}", json);
    }
}
