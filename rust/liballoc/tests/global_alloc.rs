// SPDX-License-Identifier: BSD-2-Clause
//! LibAlloc as the global allocator: every size to 64 KiB and powers of two
//! to 64 MiB, every alignment to 1 GiB, realloc across the small, large and
//! huge classes, zeroed memory after reuse, impossible layouts, and proof
//! (thread.allocated) that liballoc serves the program's allocations.
use std::alloc::{GlobalAlloc, Layout};

use liballoc::{ctl, usable_size, LibAlloc};

#[global_allocator]
static GLOBAL: LibAlloc = LibAlloc;

/// A byte pattern that depends on the position and a seed.
fn pattern(i: usize, seed: usize) -> u8 {
    (i.wrapping_mul(31) ^ seed) as u8
}

unsafe fn fill(p: *mut u8, n: usize, seed: usize) {
    for i in 0..n {
        *p.add(i) = pattern(i, seed);
    }
}

unsafe fn check(p: *const u8, n: usize, seed: usize) {
    for i in 0..n {
        assert_eq!(*p.add(i), pattern(i, seed), "byte {} of {}", i, n);
    }
}

unsafe fn alloc_fill_free(layout: Layout) {
    let p = LibAlloc.alloc(layout);
    assert!(!p.is_null(), "{:?}", layout);
    assert_eq!(p as usize % layout.align(), 0, "{:?}", layout);
    assert!(usable_size(p) >= layout.size(), "{:?}", layout);
    // First, middle and last byte are enough to catch overlap at this count.
    let n = layout.size();
    *p = 1;
    *p.add(n / 2) = 2;
    *p.add(n - 1) = 3;
    assert_eq!((*p, *p.add(n - 1)), (if n == 1 { 3 } else { 1 }, 3));
    LibAlloc.dealloc(p, layout);
}

#[test]
fn every_size_to_64k_and_powers_of_two_to_64m() {
    unsafe {
        for size in 1..=64 * 1024 {
            alloc_fill_free(Layout::from_size_align(size, 1).unwrap());
        }
        // Sizes above the quantum with every small natural alignment.
        for size in (1usize..=64 * 1024).step_by(7) {
            let align = 1usize << (size.trailing_zeros().min(12));
            alloc_fill_free(Layout::from_size_align(size, align).unwrap());
        }
        for lg in 0..=26 {
            let size = 1usize << lg;
            let layout = Layout::from_size_align(size, 8).unwrap();
            let p = LibAlloc.alloc(layout);
            assert!(!p.is_null());
            fill(p, size, lg);
            check(p, size, lg);
            LibAlloc.dealloc(p, layout);
        }
    }
}

#[test]
fn every_alignment_to_1g() {
    unsafe {
        for lg in 0..=30 {
            let align = 1usize << lg;
            // Sizes around the alignment up to 16 MiB; above, small sizes
            // only (the mapping is what the alignment costs).
            let around = [align / 2 + 1, align, align + 1];
            let mut sizes = vec![1usize, 8, 24, 3 * 4096];
            if align <= 16 << 20 {
                sizes.extend_from_slice(&around);
            }
            for &size in &sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                let p = LibAlloc.alloc(layout);
                assert!(!p.is_null(), "{:?}", layout);
                assert_eq!(p as usize % align, 0, "{:?}", layout);
                fill(p, size.min(4096), lg);
                check(p, size.min(4096), lg);
                LibAlloc.dealloc(p, layout);

                let z = LibAlloc.alloc_zeroed(layout);
                assert!(!z.is_null(), "{:?}", layout);
                assert_eq!(z as usize % align, 0, "{:?}", layout);
                assert!(std::slice::from_raw_parts(z, size.min(1 << 20)).iter().all(|&b| b == 0));
                LibAlloc.dealloc(z, layout);
            }
        }
    }
}

#[test]
fn realloc_across_small_large_and_huge_keeps_contents() {
    // small (< 16 KiB), large (< 2 MiB chunk), huge; up, then down.
    let sizes = [
        1usize, 7, 16, 100, 1000, 4096, 14000, 20000, 100_000, 1 << 20, 3 << 20, 9 << 20, 2 << 20,
        500_000, 30_000, 9000, 512, 33, 2,
    ];
    for &align in &[1usize, 16, 64, 4096, 1 << 16] {
        unsafe {
            let mut layout = Layout::from_size_align(sizes[0], align).unwrap();
            let p0 = LibAlloc.alloc(layout);
            assert!(!p0.is_null());
            fill(p0, sizes[0], 0);
            let mut p = p0;
            let mut valid = sizes[0];
            for (k, &new_size) in sizes.iter().enumerate().skip(1) {
                let q = LibAlloc.realloc(p, layout, new_size);
                assert!(!q.is_null(), "{} -> {}", layout.size(), new_size);
                assert_eq!(q as usize % align, 0);
                let kept = valid.min(new_size);
                check(q, kept, k - 1);
                // Rewrite with this step's pattern for the next one.
                fill(q, new_size, k);
                valid = new_size;
                p = q;
                layout = Layout::from_size_align(new_size, align).unwrap();
            }
            LibAlloc.dealloc(p, layout);
        }
    }
}

#[test]
fn alloc_zeroed_after_reuse() {
    unsafe {
        for &(size, align) in &[(8usize, 8usize), (48, 16), (1000, 8), (3000, 64), (40_000, 8), (600_000, 4096), (3 << 20, 8)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // Dirty blocks of this class, free them, then ask for zeroed ones:
            // the thread cache hands the dirty ones back.
            let mut dirty = Vec::new();
            for _ in 0..8 {
                let p = LibAlloc.alloc(layout);
                std::ptr::write_bytes(p, 0xa5, size);
                dirty.push(p);
            }
            for p in dirty.drain(..) {
                LibAlloc.dealloc(p, layout);
            }
            for _ in 0..8 {
                let z = LibAlloc.alloc_zeroed(layout);
                assert!(!z.is_null());
                assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0), "{:?}", layout);
                dirty.push(z);
            }
            for p in dirty.drain(..) {
                LibAlloc.dealloc(p, layout);
            }
        }
    }
}

#[test]
fn impossible_layouts_return_null() {
    unsafe {
        let too_big = Layout::from_size_align(isize::MAX as usize - 4095, 4096).unwrap();
        assert!(LibAlloc.alloc(too_big).is_null());
        assert!(LibAlloc.alloc_zeroed(too_big).is_null());
        let huge_align = Layout::from_size_align(8, 1usize << 62).unwrap();
        assert!(LibAlloc.alloc(huge_align).is_null());
        let small = Layout::from_size_align(64, 8).unwrap();
        let p = LibAlloc.alloc(small);
        assert!(!p.is_null());
        assert!(LibAlloc.realloc(p, small, isize::MAX as usize - 4095).is_null());
        // The block is untouched and still ours.
        *p.add(63) = 7;
        LibAlloc.dealloc(p, small);
        // Through the collections: try_reserve reports the failure.
        let mut v: Vec<u8> = Vec::new();
        assert!(v.try_reserve(isize::MAX as usize / 2).is_err());
    }
}

#[cfg(feature = "stats")]
#[test]
fn thread_allocated_counts_what_rust_allocates() {
    let allocated = ctl::thread::allocatedp::read().unwrap();
    let deallocated = ctl::thread::deallocatedp::read().unwrap();
    let a0 = allocated.get();
    let d0 = deallocated.get();
    let v: Vec<u8> = Vec::with_capacity(1 << 20);
    let a1 = allocated.get();
    assert!(a1 - a0 >= 1 << 20, "allocated grew by {} for a 1 MiB Vec", a1 - a0);
    assert!(a1 - a0 < (1 << 20) + 64 * 1024);
    let boxes: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([1u8; 100])).collect();
    let a2 = allocated.get();
    assert!(a2 - a1 >= 100 * 1000 + 1000 * 8);
    drop(boxes);
    drop(v);
    let d1 = deallocated.get();
    assert!(d1 - d0 >= (1 << 20) + 100 * 1000);
    // The mallctl form agrees with the pointer.
    assert_eq!(ctl::thread::allocated::read().unwrap(), allocated.get());
}

// A malloc called from C: the C library's in the prefixed build, liballoc's
// when liballoc replaces malloc.
extern "C" {
    fn malloc(size: usize) -> *mut std::os::raw::c_void;
    fn free(p: *mut std::os::raw::c_void);
}

#[cfg(feature = "stats")]
#[test]
fn c_malloc_is_served_by_liballoc_only_when_unprefixed() {
    let allocated = ctl::thread::allocatedp::read().unwrap();
    let a0 = allocated.get();
    let p = unsafe { malloc(5 << 20) };
    assert!(!p.is_null());
    let grew = allocated.get() - a0;
    if cfg!(all(feature = "unprefixed_malloc_on_supported_platforms", target_os = "linux", target_env = "gnu")) {
        assert_eq!(liballoc::sys::SYMBOL_PREFIX, "");
        assert!(grew >= 5 << 20, "C malloc not served by liballoc: allocated grew by {}", grew);
        // liballoc knows the block (an unknown pointer would abort here).
        assert!(unsafe { liballoc::sys::malloc_usable_size(p) } >= 5 << 20);
        unsafe { free(p) };
    } else {
        unsafe { free(p) };
        assert_eq!(liballoc::sys::SYMBOL_PREFIX, "_rla_");
        assert_eq!(grew, 0, "the C library's malloc went through liballoc");
    }
}
