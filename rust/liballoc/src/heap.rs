// SPDX-License-Identifier: BSD-2-Clause
//! Private heaps: allocation inside a region of memory the caller provides.
//!
//! A [`Heap`] is liballoc's `alloc_heap_*` API (see `alloc(3)` and
//! `doc/heap.md`): an arena whose memory is a region you give it, at least
//! [`MIN_REGION`] bytes and page-aligned. All of the heap's state lives in
//! the region; a full heap fails with [`ErrorKind::OutOfMemory`] and never
//! falls back to the process heap; [`Heap::reset`] frees every block at once.
//!
//! ```
//! use std::alloc::Layout;
//! use liballoc::heap::{Heap, MIN_REGION};
//!
//! # fn main() -> Result<(), liballoc::heap::Error> {
//! // A page-aligned region (here from the global allocator), initialized:
//! // a `&mut [u8]` must not be made over uninitialized memory.
//! let layout = Layout::from_size_align(MIN_REGION, liballoc::heap::page_size()).unwrap();
//! let base = unsafe { std::alloc::alloc_zeroed(layout) };
//! assert!(!base.is_null());
//! let region = unsafe { std::slice::from_raw_parts_mut(base, MIN_REGION) };
//!
//! let total = Heap::scope(region, |heap| -> Result<usize, liballoc::heap::Error> {
//!     let block = heap.allocate(Layout::new::<[u64; 100]>())?;
//!     let stats = heap.stats()?;
//!     unsafe { heap.deallocate(block, Layout::new::<[u64; 100]>()) };
//!     heap.reset()?;
//!     Ok(stats.allocated)
//! })??;
//! assert!(total >= 800);
//! // The heap is gone: the region is ours again.
//! unsafe { std::alloc::dealloc(base, layout) };
//! # Ok(())
//! # }
//! ```
//!
//! # What the types enforce, and what they cannot
//!
//! - **The region outlives the heap.** A heap keeps pointers into its region
//!   in the library (its arena slot, and `fork()` locks a lock inside the
//!   region), so the region must stay valid until the heap is destroyed.
//!   Rust allows any value to be leaked (`std::mem::forget`), so a heap that
//!   owned a `&'a mut [u8]` could outlive its region without `unsafe`: that
//!   is why a borrowed region is lent only to a closure, through
//!   [`Heap::scope`], which destroys the heap before it returns (also when
//!   the closure panics), and why [`Heap::new`] takes only a
//!   `&'static mut [u8]` (a leaked heap then only leaks the region).
//!   [`Heap::from_raw`] leaves this to the caller.
//! - **Blocks do not outlive a reset or the heap.** Blocks are raw pointers;
//!   the borrow checker does not track them. [`Heap::reset`] takes
//!   `&mut self`, so nothing that borrows the heap (a collection using it
//!   through [`GlobalAlloc`], a guard) can be alive across it; raw pointers
//!   obtained before a reset or before the heap ends are dangling
//!   afterwards, and dereferencing them is undefined behaviour like any
//!   dangling pointer's.
//! - **Blocks go back to their own heap.** [`Heap::deallocate`] and
//!   [`Heap::reallocate`] are `unsafe`: the pointer must be a live block of
//!   this heap with the layout it was allocated with.
//!
//! The compiler refuses a scoped heap that would outlive its scope, by
//! swapping it with a heap of another lifetime (`Heap<'a>` is invariant in
//! `'a`):
//!
//! ```compile_fail
//! use liballoc::heap::Heap;
//! fn swap_out(region: &mut [u8], mut other: Heap<'static>) {
//!     let _ = Heap::scope(region, |heap| std::mem::swap(heap, &mut other));
//!     std::mem::forget(other); // would leak the scoped heap
//! }
//! ```
//!
//! and a reset while a block's borrower is alive:
//!
//! ```compile_fail
//! use std::alloc::{GlobalAlloc, Layout};
//! use liballoc::heap::Heap;
//! fn reset_under_a_borrow(heap: &mut Heap<'static>) {
//!     let alloc: &dyn GlobalAlloc = &*heap;
//!     heap.reset().unwrap();
//!     unsafe { alloc.alloc(Layout::new::<u8>()) };
//! }
//! ```
//!
//! A `Heap` is `Send` and `Sync`: the C heap serializes its own calls.

use std::alloc::{GlobalAlloc, Layout};
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_int, c_uint, c_void};
use std::ptr::{self, NonNull};

use liballoc_sys as sys;

// errno values of Linux (asm-generic/errno-base.h, errno.h).
const ENOMEM: c_int = 12;
const EBUSY: c_int = 16;
const EINVAL: c_int = 22;
const ENOTRECOVERABLE: c_int = 131;

/// The smallest region a heap accepts: 4 MiB.
pub const MIN_REGION: usize = 4 << 20;

/// The alignment `alloc_heap_malloc` guarantees a block of at least this
/// size (the quantum); above it, or above the size, `aligned_alloc`.
const MIN_ALIGN: usize = sys::QUANTUM;

/// What a failed heap call meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The region's start is not aligned to the library's page size
    /// (checked before calling the library).
    Misaligned,
    /// The region is smaller than [`MIN_REGION`] (checked before calling
    /// the library).
    TooSmall,
    /// `EINVAL`: the library refused the region, flags or layout (for
    /// example a region above the address bits the library handles, or an
    /// alignment it cannot give).
    InvalidArgument,
    /// `EBUSY`: a live heap is already in this region.
    Busy,
    /// `ENOMEM`: the heap is full (allocation), or no arena slot is free
    /// (creation).
    OutOfMemory,
    /// `ENOTRECOVERABLE`: a shared heap was found damaged after a process
    /// died holding its lock; only dropping it is left.
    NotRecoverable,
    /// Any other `errno` value.
    Other,
}

/// A failed heap call: its `errno` value and what it means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error {
    code: c_int,
    kind: ErrorKind,
}

impl Error {
    fn from_errno(code: c_int) -> Error {
        let kind = match code {
            EINVAL => ErrorKind::InvalidArgument,
            EBUSY => ErrorKind::Busy,
            ENOMEM => ErrorKind::OutOfMemory,
            ENOTRECOVERABLE => ErrorKind::NotRecoverable,
            _ => ErrorKind::Other,
        };
        Error { code, kind }
    }

    /// The `errno` of the failed C call (the library's `errno` when it
    /// returned null and set none: `ENOMEM`).
    fn last() -> Error {
        let code = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        Error::from_errno(if code == 0 { ENOMEM } else { code })
    }

    /// The `errno` value: the library's, or `EINVAL` for the region checks
    /// made in Rust ([`ErrorKind::Misaligned`], [`ErrorKind::TooSmall`]).
    pub fn errno(&self) -> c_int {
        self.code
    }

    /// What the error means.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn description(&self) -> &'static str {
        match self.kind {
            ErrorKind::Misaligned => "the region does not start on a page boundary",
            ErrorKind::TooSmall => "the region is smaller than 4 MiB",
            ErrorKind::InvalidArgument => "EINVAL: invalid region, flags or alignment",
            ErrorKind::Busy => "EBUSY: a live heap is already in this region",
            ErrorKind::OutOfMemory => "ENOMEM: the heap is full, or no arena slot is free",
            ErrorKind::NotRecoverable => "ENOTRECOVERABLE: the shared heap is damaged",
            ErrorKind::Other => "unexpected errno value",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error {{ errno: {}, kind: {:?} }}", self.code, self.kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "private heap: {} (errno {})",
            self.description(),
            self.code
        )
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        std::io::Error::new(std::io::Error::from_raw_os_error(e.code).kind(), e)
    }
}

/// The result of a heap call.
pub type Result<T> = std::result::Result<T, Error>;

/// A heap's counters (`alloc_heap_stats`): a snapshot, exact at the time
/// of the call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes of the region.
    pub size: usize,
    /// Bytes blocks can use (the region's chunks' run pages).
    pub usable: usize,
    /// `size - usable`: headers, descriptors, alignment.
    pub overhead: usize,
    /// Usable bytes of the live blocks.
    pub allocated: usize,
    /// The highest `allocated` since the heap was created or reset.
    pub high_water: usize,
    /// Bytes of the pages holding live blocks.
    pub active: usize,
    /// `usable - active`.
    pub free: usize,
    /// Live blocks.
    pub nblocks: usize,
    /// Chunks in the region.
    pub chunks: usize,
    /// Whether the heap was created shared ([`Heap::SHARED`]).
    pub shared: bool,
}

/// The page size of the library (`arenas.page`): region starts must be
/// multiples of it.
pub fn page_size() -> usize {
    crate::ctl::arenas::page::read().unwrap_or(4096)
}

/// The Rust-side checks of a region, before the library sees it.
fn check_region(base: *const u8, size: usize) -> Result<()> {
    if base.is_null() || base as usize % page_size() != 0 {
        return Err(Error {
            code: EINVAL,
            kind: ErrorKind::Misaligned,
        });
    }
    if size < MIN_REGION {
        return Err(Error {
            code: EINVAL,
            kind: ErrorKind::TooSmall,
        });
    }
    Ok(())
}

/// Whether `alloc_heap_malloc` aligns a block of `size` enough for `align`.
#[inline]
fn malloc_aligns(align: usize, size: usize) -> bool {
    align <= MIN_ALIGN && align <= size
}

/// A type invariant in `'a` (a `&'a mut [u8]` both in and out).
type Invariant<'a> = fn(&'a mut [u8]) -> &'a mut [u8];

/// A private heap in a region of memory; dropping it destroys the heap
/// (`alloc_heap_destroy`), after which nothing in the library refers to the
/// region.
///
/// `'a` is the region's lifetime. It is invariant, so a heap over a
/// borrowed region (from [`Heap::scope`]) cannot be swapped with one that
/// could escape.
pub struct Heap<'a> {
    raw: NonNull<sys::alloc_heap_t>,
    _region: PhantomData<Invariant<'a>>,
}

// The C heap serializes its calls (the heap cache's lock, the arena's
// locks); the region it lives in is exclusively the heap's.
unsafe impl Send for Heap<'_> {}
unsafe impl Sync for Heap<'_> {}

impl fmt::Debug for Heap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap").field("raw", &self.raw).finish()
    }
}

impl Heap<'static> {
    /// A heap in a region that lives for the rest of the program (for
    /// example from `Box::leak` or a `static mut` array): the region must be
    /// page-aligned ([`page_size`]) and at least [`MIN_REGION`] bytes.
    ///
    /// Errors: [`ErrorKind::Misaligned`], [`ErrorKind::TooSmall`], else the
    /// library's `errno` (`EINVAL`, `EBUSY`, `ENOMEM`: no arena slot left).
    pub fn new(region: &'static mut [u8]) -> Result<Heap<'static>> {
        check_region(region.as_ptr(), region.len())?;
        unsafe { Heap::create(region.as_mut_ptr(), region.len(), 0) }
    }

    /// A heap in `[base, base + size)` with `flags` (0 or [`Heap::SHARED`]),
    /// for memory no Rust reference describes: a shared mapping, a mapped
    /// file, a fixed address. The alignment and size are checked as in
    /// [`Heap::new`]. The heap's lifetime is `'static` (the types know
    /// nothing of the region), so it cannot stand in for a heap of
    /// [`Heap::scope`].
    ///
    /// # Safety
    ///
    /// - `[base, base + size)` is memory readable and writable by this
    ///   process, and nothing else reads or writes it while the heap lives
    ///   (except the heap's other processes, for a shared heap);
    /// - it stays valid until the heap is dropped: if the `Heap` is leaked
    ///   (`mem::forget`), forever.
    pub unsafe fn from_raw(base: *mut u8, size: usize, flags: c_uint) -> Result<Heap<'static>> {
        check_region(base, size)?;
        Heap::create(base, size, flags)
    }
}

impl<'a> Heap<'a> {
    /// `alloc_heap_create` with the flags of a shared heap: several processes
    /// map the region (at the same address) and use the heap; its locks are
    /// process-shared and robust. Pass it to [`Heap::from_raw`].
    pub const SHARED: c_uint = sys::ALLOC_HEAP_SHARED;

    /// Makes a heap in `region` for the duration of `f`: the heap is
    /// destroyed when `f` returns or panics, and the region is the caller's
    /// again. The region must be page-aligned ([`page_size`]) and at least
    /// [`MIN_REGION`] bytes; its contents are overwritten.
    ///
    /// Returns `f`'s value, or the error of the creation (as for
    /// [`Heap::new`]), in which case `f` is not called.
    pub fn scope<R>(region: &'a mut [u8], f: impl FnOnce(&mut Heap<'a>) -> R) -> Result<R> {
        check_region(region.as_ptr(), region.len())?;
        let mut heap = unsafe { Heap::create(region.as_mut_ptr(), region.len(), 0)? };
        Ok(f(&mut heap))
    }

    unsafe fn create(base: *mut u8, size: usize, flags: c_uint) -> Result<Heap<'a>> {
        let raw = sys::alloc_heap_create(base as *mut c_void, size, flags);
        match NonNull::new(raw) {
            Some(raw) => Ok(Heap {
                raw,
                _region: PhantomData,
            }),
            None => Err(Error::last()),
        }
    }

    /// The heap's C handle, for the `liballoc_sys::alloc_heap_*` functions.
    /// It is valid while `self` is.
    pub fn as_raw(&self) -> *mut sys::alloc_heap_t {
        self.raw.as_ptr()
    }

    /// A block for `layout` (`alloc_heap_malloc`, or `alloc_heap_aligned_alloc`
    /// when the alignment is above the quantum or the size). A zero-sized
    /// layout gets a real, 1-byte block (free it like any other).
    ///
    /// Errors: [`ErrorKind::OutOfMemory`] when the heap is full (nothing
    /// falls back to the process heap); [`ErrorKind::InvalidArgument`] for an
    /// alignment the library cannot give.
    pub fn allocate(&self, layout: Layout) -> Result<NonNull<u8>> {
        let size = layout.size().max(1);
        let p = unsafe {
            if malloc_aligns(layout.align(), size) {
                sys::alloc_heap_malloc(self.as_raw(), size)
            } else {
                sys::alloc_heap_aligned_alloc(self.as_raw(), layout.align(), size)
            }
        };
        NonNull::new(p as *mut u8).ok_or_else(Error::last)
    }

    /// Like [`Heap::allocate`], with the block's bytes zeroed
    /// (`alloc_heap_calloc` when the alignment allows).
    pub fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<u8>> {
        let size = layout.size().max(1);
        if malloc_aligns(layout.align(), size) {
            let p = unsafe { sys::alloc_heap_calloc(self.as_raw(), 1, size) };
            return NonNull::new(p as *mut u8).ok_or_else(Error::last);
        }
        let p = self.allocate(layout)?;
        unsafe { p.as_ptr().write_bytes(0, size) };
        Ok(p)
    }

    /// Frees a block (`alloc_heap_free`).
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this heap (not freed, not from before a
    /// [`Heap::reset`]), allocated with `layout`.
    pub unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let _ = layout;
        sys::alloc_heap_free(self.as_raw(), ptr.as_ptr() as *mut c_void)
    }

    /// Resizes a block to `new_size` bytes with `layout`'s alignment, inside
    /// this heap (`alloc_heap_realloc`, or a new aligned block, a copy and a
    /// free when the alignment is above what `realloc` keeps). On error the
    /// old block is untouched and still live.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this heap allocated with `layout`; on
    /// success it is freed (use the returned pointer). `new_size`, rounded
    /// up to `layout.align()`, must not overflow `isize`.
    pub unsafe fn reallocate(
        &self,
        ptr: NonNull<u8>,
        layout: Layout,
        new_size: usize,
    ) -> Result<NonNull<u8>> {
        let size = new_size.max(1);
        if malloc_aligns(layout.align(), size) && malloc_aligns(layout.align(), layout.size()) {
            let p = sys::alloc_heap_realloc(self.as_raw(), ptr.as_ptr() as *mut c_void, size);
            return NonNull::new(p as *mut u8).ok_or_else(Error::last);
        }
        let new_layout = Layout::from_size_align_unchecked(size, layout.align());
        let q = self.allocate(new_layout)?;
        ptr::copy_nonoverlapping(ptr.as_ptr(), q.as_ptr(), layout.size().min(new_size));
        self.deallocate(ptr, layout);
        Ok(q)
    }

    /// Frees every block of the heap at once (`alloc_heap_reset`), at a cost
    /// that grows with the region's chunks, not its blocks. Every pointer
    /// the heap handed out before is dangling afterwards; `&mut self`
    /// guarantees nothing borrowing the heap is alive.
    pub fn reset(&mut self) -> Result<()> {
        match unsafe { sys::alloc_heap_reset(self.as_raw()) } {
            0 => Ok(()),
            rc => Err(Error::from_errno(rc)),
        }
    }

    /// The heap's counters (`alloc_heap_stats`).
    pub fn stats(&self) -> Result<HeapStats> {
        let mut st = sys::alloc_heap_stats_t::default();
        match unsafe { sys::alloc_heap_stats(self.as_raw(), &mut st) } {
            0 => Ok(HeapStats {
                size: st.size,
                usable: st.usable,
                overhead: st.overhead,
                allocated: st.allocated,
                high_water: st.high_water,
                active: st.active,
                free: st.free,
                nblocks: st.nblocks,
                chunks: st.chunks,
                shared: st.flags & sys::ALLOC_HEAP_SHARED != 0,
            }),
            rc => Err(Error::from_errno(rc)),
        }
    }

    /// Destroys the heap (`alloc_heap_destroy`), as dropping it does, and
    /// reports the library's result: after `Ok`, nothing in the library
    /// refers to the region. A shared heap is destroyed for every process
    /// using it; in a process that forked with a `Heap` of a shared region,
    /// only one of the processes should destroy it (the other can
    /// `std::mem::forget` its copy: the region was made by
    /// [`Heap::from_raw`], which already promised it stays valid).
    pub fn destroy(self) -> Result<()> {
        let heap = std::mem::ManuallyDrop::new(self);
        match unsafe { sys::alloc_heap_destroy(heap.as_raw()) } {
            0 => Ok(()),
            rc => Err(Error::from_errno(rc)),
        }
    }

    /// The heap's arena index in this process (`alloc_heap_arena`): with
    /// `MALLOCX_ARENA(index)` the `mallocx` family allocates in the heap, and
    /// `arena.<i>.*` / `stats.arenas.<i>.*` mallctl nodes describe it.
    pub fn arena_index(&self) -> Result<u32> {
        match unsafe { sys::alloc_heap_arena(self.as_raw()) } {
            u32::MAX => Err(Error::last()),
            i => Ok(i),
        }
    }
}

impl Drop for Heap<'_> {
    /// Destroys the heap (`alloc_heap_destroy`); use [`Heap::destroy`] to see
    /// its result.
    fn drop(&mut self) {
        unsafe { sys::alloc_heap_destroy(self.as_raw()) };
    }
}

/// The heap as a [`GlobalAlloc`], for code generic over one: the calls of
/// [`Heap::allocate`], [`Heap::allocate_zeroed`], [`Heap::deallocate`] and
/// [`Heap::reallocate`], with null for any error. It cannot be the program's
/// `#[global_allocator]` (that needs a `static`, and a heap is made at run
/// time). It is sound because every block stays valid until it is freed
/// or the heap is reset or dropped, and both of those need the heap
/// unborrowed (`&mut self` or ownership).
unsafe impl GlobalAlloc for Heap<'_> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocate_zeroed(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.deallocate(NonNull::new_unchecked(ptr), layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.reallocate(NonNull::new_unchecked(ptr), layout, new_size)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }
}
