// SPDX-License-Identifier: BSD-2-Clause
//! liballoc::heap: private heaps over a page-aligned buffer from the global
//! allocator and over an mmap'd region.
use std::alloc::{GlobalAlloc, Layout};
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

use liballoc::heap::{ErrorKind, Heap, MIN_REGION};

const PAGE: usize = 4096;

/// A page-aligned buffer from the global allocator, freed on drop.
struct Buffer {
    base: *mut u8,
    layout: Layout,
}

impl Buffer {
    fn new(size: usize, align: usize) -> Buffer {
        let layout = Layout::from_size_align(size, align).unwrap();
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!base.is_null());
        Buffer { base, layout }
    }
    fn slice(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.base, self.layout.size()) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        unsafe { std::alloc::dealloc(self.base, self.layout) }
    }
}

fn lib_page() -> usize {
    liballoc::heap::page_size()
}

#[test]
fn blocks_hold_their_contents() {
    let mut buf = Buffer::new(8 << 20, lib_page());
    let (lo, hi) = (buf.base as usize, buf.base as usize + (8 << 20));
    Heap::scope(buf.slice(), |heap| {
        let mut blocks = Vec::new();
        for i in 0..500usize {
            let layout = Layout::from_size_align(1 + i * 7, 8).unwrap();
            let p = heap.allocate(layout).unwrap();
            assert!(p.as_ptr() as usize >= lo && (p.as_ptr() as usize) < hi);
            unsafe { p.as_ptr().write_bytes(i as u8, layout.size()) };
            blocks.push((p, layout, i as u8));
        }
        let st = heap.stats().unwrap();
        assert_eq!(st.nblocks, 500);
        assert_eq!(st.size, 8 << 20);
        assert!(!st.shared);
        for &(p, layout, v) in &blocks {
            let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), layout.size()) };
            assert!(s.iter().all(|&b| b == v));
        }
        // realloc keeps the contents, zeroed blocks are zero.
        let (p, layout, v) = blocks.pop().unwrap();
        let q = unsafe { heap.reallocate(p, layout, 100_000).unwrap() };
        let s = unsafe { std::slice::from_raw_parts(q.as_ptr(), layout.size()) };
        assert!(s.iter().all(|&b| b == v));
        unsafe { heap.deallocate(q, Layout::from_size_align(100_000, 8).unwrap()) };
        let z = heap
            .allocate_zeroed(Layout::from_size_align(5000, 8).unwrap())
            .unwrap();
        assert!(unsafe { std::slice::from_raw_parts(z.as_ptr(), 5000) }
            .iter()
            .all(|&b| b == 0));
        unsafe { heap.deallocate(z, Layout::from_size_align(5000, 8).unwrap()) };
        for (p, layout, _) in blocks {
            unsafe { heap.deallocate(p, layout) };
        }
        assert_eq!(heap.stats().unwrap().nblocks, 0);
        assert_eq!(heap.stats().unwrap().allocated, 0);
    })
    .unwrap();
}

#[test]
fn alignments_up_to_a_page() {
    let mut buf = Buffer::new(8 << 20, lib_page());
    Heap::scope(buf.slice(), |heap| {
        let mut align = 1;
        while align <= 4096 {
            for &size in &[1usize, 8, 24, align, 3 * align + 1, 20_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let p = heap.allocate(layout).unwrap();
                assert_eq!(p.as_ptr() as usize % align, 0, "{:?}", layout);
                let z = heap.allocate_zeroed(layout).unwrap();
                assert_eq!(z.as_ptr() as usize % align, 0, "{:?}", layout);
                let zs = unsafe { std::slice::from_raw_parts(z.as_ptr(), size) };
                assert!(zs.iter().all(|&b| b == 0));
                unsafe { p.as_ptr().write_bytes(0xa5, size) };
                let q = unsafe { heap.reallocate(p, layout, size * 2 + 7).unwrap() };
                assert_eq!(q.as_ptr() as usize % align, 0, "{:?}", layout);
                let qs = unsafe { std::slice::from_raw_parts(q.as_ptr(), size) };
                assert!(qs.iter().all(|&b| b == 0xa5));
                unsafe {
                    heap.deallocate(q, Layout::from_size_align(size * 2 + 7, align).unwrap());
                    heap.deallocate(z, layout);
                }
            }
            align *= 2;
        }
        assert_eq!(heap.stats().unwrap().nblocks, 0);
    })
    .unwrap();
}

#[test]
fn a_full_heap_fails_then_recovers() {
    let mut buf = Buffer::new(MIN_REGION, lib_page());
    Heap::scope(buf.slice(), |heap| {
        let layout = Layout::from_size_align(64 << 10, 16).unwrap();
        let mut blocks = Vec::new();
        let err = loop {
            match heap.allocate(layout) {
                Ok(p) => blocks.push(p),
                Err(e) => break e,
            }
            assert!(blocks.len() < 1000, "a 4 MiB heap held 64 MB");
        };
        assert_eq!(err.kind(), ErrorKind::OutOfMemory);
        assert_eq!(err.errno(), 12);
        assert!(!blocks.is_empty());
        assert!(unsafe { heap.alloc(layout) }.is_null());
        let p = blocks.pop().unwrap();
        unsafe { heap.deallocate(p, layout) };
        let again = heap.allocate(layout).expect("a freed block is reused");
        blocks.push(again);
        for p in blocks {
            unsafe { heap.deallocate(p, layout) };
        }
    })
    .unwrap();
}

#[test]
fn reset_frees_everything() {
    let mut buf = Buffer::new(MIN_REGION, lib_page());
    Heap::scope(buf.slice(), |heap| {
        let empty = heap.stats().unwrap();
        assert_eq!((empty.nblocks, empty.allocated), (0, 0));
        for i in 0..2000usize {
            heap.allocate(Layout::from_size_align(16 + i % 700, 16).unwrap())
                .unwrap();
        }
        heap.allocate(Layout::from_size_align(3 << 20, 4096).unwrap())
            .ok();
        let full = heap.stats().unwrap();
        assert!(full.nblocks >= 2000 && full.allocated > 0 && full.active > empty.active);
        heap.reset().unwrap();
        let st = heap.stats().unwrap();
        assert_eq!(
            (st.nblocks, st.allocated, st.active, st.free),
            (0, 0, empty.active, empty.free)
        );
        assert_eq!(st.high_water, 0);
        // Usable again.
        let p = heap.allocate(Layout::new::<[u8; 100]>()).unwrap();
        unsafe { heap.deallocate(p, Layout::new::<[u8; 100]>()) };
    })
    .unwrap();
}

#[test]
fn bad_regions_are_refused() {
    let mut buf = Buffer::new(MIN_REGION + 2 * lib_page(), lib_page());
    let s = buf.slice();
    let e = Heap::scope(&mut s[16..16 + MIN_REGION], |_| ()).unwrap_err();
    assert_eq!((e.kind(), e.errno()), (ErrorKind::Misaligned, 22));
    assert!(e.to_string().contains("page boundary"), "{}", e);
    let e = Heap::scope(&mut s[..MIN_REGION - lib_page()], |_| ()).unwrap_err();
    assert_eq!((e.kind(), e.errno()), (ErrorKind::TooSmall, 22));
    let e = Heap::scope(&mut s[..0], |_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooSmall);
    let io: std::io::Error = e.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    // Unknown flags: the library's EINVAL.
    let e = unsafe { Heap::from_raw(buf.base, MIN_REGION, 0x80) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // A live heap in the region: EBUSY.
    let heap = unsafe { Heap::from_raw(buf.base, MIN_REGION, 0) }.unwrap();
    let e = unsafe { Heap::from_raw(buf.base, MIN_REGION, 0) }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    heap.destroy().unwrap();
    // Destroyed: the region takes a new heap.
    unsafe { Heap::from_raw(buf.base, MIN_REGION, 0) }
        .unwrap()
        .destroy()
        .unwrap();
}

#[test]
fn dropping_the_heap_frees_the_region() {
    let mut buf = Buffer::new(MIN_REGION, lib_page());
    for round in 0..3u8 {
        let index = Heap::scope(buf.slice(), |heap| {
            let p = heap.allocate(Layout::new::<u64>()).unwrap();
            unsafe { *(p.as_ptr() as *mut u64) = 7 };
            heap.arena_index().unwrap()
        })
        .unwrap();
        assert!(index > 0);
        // The region is plain memory again: overwrite all of it.
        buf.slice().fill(round);
        assert!(buf.slice().iter().all(|&b| b == round));
    }
}

#[test]
fn mallocx_reaches_the_arena() {
    let mut buf = Buffer::new(MIN_REGION, lib_page());
    let (lo, hi) = (buf.base as usize, buf.base as usize + MIN_REGION);
    Heap::scope(buf.slice(), |heap| {
        let arena = heap.arena_index().unwrap();
        unsafe {
            let flags = liballoc::sys::MALLOCX_ARENA(arena as usize);
            let p = liballoc::sys::mallocx(100, flags);
            assert!(!p.is_null());
            assert!(p as usize >= lo && (p as usize) < hi);
            assert_eq!(heap.stats().unwrap().nblocks, 1);
            liballoc::sys::dallocx(p, 0);
        }
    })
    .unwrap();
}

#[test]
fn a_static_region() {
    let layout = Layout::from_size_align(MIN_REGION, lib_page()).unwrap();
    let region: &'static mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(std::alloc::alloc_zeroed(layout), MIN_REGION) };
    let heap = Heap::new(region).unwrap();
    let v = unsafe { heap.alloc(Layout::new::<[u32; 64]>()) } as *mut u32;
    assert!(!v.is_null());
    unsafe { heap.dealloc(v as *mut u8, Layout::new::<[u32; 64]>()) };
    heap.destroy().unwrap();
}

extern "C" {
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
}
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 1;
const MAP_PRIVATE: c_int = 2;
const MAP_ANONYMOUS: c_int = 0x20;

fn mapped(size: usize, flags: c_int) -> *mut u8 {
    let p = unsafe {
        mmap(
            std::ptr::null_mut(),
            size,
            PROT_READ | PROT_WRITE,
            flags | MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(
        p as isize != -1,
        "mmap: {}",
        std::io::Error::last_os_error()
    );
    p as *mut u8
}

#[test]
fn over_an_mmap_region() {
    let size = 16 << 20;
    for &(map, heap_flags) in &[(MAP_PRIVATE, 0), (MAP_SHARED, Heap::SHARED)] {
        // mmap aligns to the kernel's page; the library's may be larger.
        let map_len = size + lib_page();
        let mapping = mapped(map_len, map);
        let base = ((mapping as usize + lib_page() - 1) & !(lib_page() - 1)) as *mut u8;
        if base != mapping {
            let e = unsafe { Heap::from_raw(mapping, size, heap_flags) }.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Misaligned);
        }
        {
            let heap = unsafe { Heap::from_raw(base, size, heap_flags) }.unwrap();
            let st = heap.stats().unwrap();
            assert_eq!(st.shared, heap_flags != 0);
            let mut blocks: Vec<(NonNull<u8>, Layout)> = Vec::new();
            for i in 0..200usize {
                let layout = Layout::from_size_align(100 + i * 100, 64).unwrap();
                let p = heap.allocate(layout).unwrap();
                assert!(p.as_ptr() >= base && (p.as_ptr() as usize) < base as usize + size);
                unsafe { p.as_ptr().write_bytes(i as u8, layout.size()) };
                blocks.push((p, layout));
            }
            for (i, &(p, layout)) in blocks.iter().enumerate() {
                let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), layout.size()) };
                assert!(s.iter().all(|&b| b == i as u8));
            }
            // A huge block (above a chunk) from the region too.
            let huge = Layout::from_size_align(3 << 20, 4096).unwrap();
            let h = heap.allocate(huge).unwrap();
            assert!(h.as_ptr() >= base && (h.as_ptr() as usize) < base as usize + size);
            unsafe { heap.deallocate(h, huge) };
            for (p, layout) in blocks {
                unsafe { heap.deallocate(p, layout) };
            }
            assert_eq!(heap.stats().unwrap().nblocks, 0);
        }
        assert_eq!(unsafe { munmap(mapping as *mut c_void, map_len) }, 0);
    }
}

#[test]
fn threads_share_a_heap() {
    let mut buf = Buffer::new(16 << 20, lib_page());
    Heap::scope(buf.slice(), |heap| {
        let heap = &*heap;
        std::thread::scope(|s| {
            for t in 0..4u8 {
                s.spawn(move || {
                    for round in 0..200usize {
                        let layout = Layout::from_size_align(8 + round % 300, 8).unwrap();
                        let mut live = Vec::new();
                        for _ in 0..20 {
                            let p = heap.allocate(layout).unwrap();
                            unsafe { p.as_ptr().write_bytes(t, layout.size()) };
                            live.push(p);
                        }
                        for p in live {
                            let s =
                                unsafe { std::slice::from_raw_parts(p.as_ptr(), layout.size()) };
                            assert!(s.iter().all(|&b| b == t));
                            unsafe { heap.deallocate(p, layout) };
                        }
                    }
                });
            }
        });
        assert_eq!(heap.stats().unwrap().nblocks, 0);
    })
    .unwrap();
}

#[test]
fn page_is_what_the_tests_assume() {
    assert_eq!(lib_page() % PAGE, 0);
}
