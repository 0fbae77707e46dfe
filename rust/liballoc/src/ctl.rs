// SPDX-License-Identifier: BSD-2-Clause
//! `mallctl`: liballoc's statistics and tuning, by typed node, by MIB and by
//! raw name.
//!
//! Three ways in, from the most to the least convenient:
//!
//! - **Typed nodes**: one unit struct per node, in modules named like the
//!   namespace: `stats::allocated::read()`, `background_thread::write(true)`,
//!   `opt::narenas::read()`, `version::read()`. Each has `NAME`, `read()`,
//!   `mib()` and, where the node is writable, `write()` and `update()`.
//! - **MIBs** ([`Mib`], [`MibStr`]): the name resolved once into numbers, for
//!   hot loops; `set_index` reaches siblings such as `arena.<i>.*`.
//! - **Raw by name**: [`read()`], [`write()`], [`update()`], [`read_str`],
//!   [`call`], and the unsafe [`raw`] for any type.
//!
//! Statistics (`stats.*`) are a snapshot refreshed by writing `epoch`
//! ([`epoch::advance`]); `thread.*` counters are live. Errors carry the
//! `errno` value `mallctl` returned ([`Error::kind`]).
//!
//! ```no_run
//! use liballoc::ctl;
//! # fn main() -> Result<(), ctl::Error> {
//! let allocated = ctl::stats::allocated::mib()?; // resolve once
//! let epoch = ctl::epoch::mib()?;
//! for _ in 0..3 {
//!     epoch.advance()?;
//!     println!("{} bytes allocated", allocated.read()?);
//! }
//! let page: usize = ctl::read("arenas.page")?;
//! assert_eq!(page, ctl::arenas::page::read()?);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

use liballoc_sys as sys;

// errno values of Linux (the values mallctl returns): asm-generic/errno-base.h.
const EPERM: c_int = 1;
const ENOENT: c_int = 2;
const EAGAIN: c_int = 11;
const EFAULT: c_int = 14;
const EINVAL: c_int = 22;

/// The longest MIB this module resolves: `stats.arenas.<i>.bins.<j>.nmalloc`
/// has 6 components.
pub const MIB_MAX: usize = 8;

/// What a failed `mallctl` call meant, from its `errno` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ENOENT`: no such node (unknown name, index out of range, or a node
    /// compiled out of this build, e.g. `stats.*` without the `stats`
    /// feature).
    NotFound,
    /// `EINVAL`: the value's size does not match the node's type, or the
    /// value is out of range (also: a name with a NUL byte in it).
    InvalidArgument,
    /// `EPERM`: the node is read-only, or cannot be written now.
    PermissionDenied,
    /// `EFAULT`: the operation failed inside the allocator (for example a
    /// background thread could not be created).
    Fault,
    /// `EAGAIN`: the operation could not be done now (for example out of
    /// memory or out of arena/tcache slots); it may succeed later.
    Again,
    /// Any other `errno` value.
    Other,
}

/// A failed `mallctl` call: the `errno` value it returned.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error {
    code: c_int,
}

impl Error {
    /// The error for an `errno` value.
    pub const fn from_errno(code: c_int) -> Error {
        Error { code }
    }

    /// The `errno` value `mallctl` returned.
    pub const fn errno(&self) -> c_int {
        self.code
    }

    /// What the `errno` value means for a `mallctl` call.
    pub const fn kind(&self) -> ErrorKind {
        match self.code {
            ENOENT => ErrorKind::NotFound,
            EINVAL => ErrorKind::InvalidArgument,
            EPERM => ErrorKind::PermissionDenied,
            EFAULT => ErrorKind::Fault,
            EAGAIN => ErrorKind::Again,
            _ => ErrorKind::Other,
        }
    }

    fn description(&self) -> &'static str {
        match self.kind() {
            ErrorKind::NotFound => "ENOENT: no such mallctl node in this build",
            ErrorKind::InvalidArgument => "EINVAL: wrong value size or value out of range",
            ErrorKind::PermissionDenied => "EPERM: the node cannot be written",
            ErrorKind::Fault => "EFAULT: the allocator failed to carry out the operation",
            ErrorKind::Again => "EAGAIN: resources temporarily unavailable, try again",
            ErrorKind::Other => "unexpected errno value",
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error {{ errno: {}, kind: {:?} }}", self.code, self.kind())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mallctl failed: {} (errno {})", self.description(), self.code)
    }
}

impl std::error::Error for Error {}

/// The result of a `mallctl` call.
pub type Result<T> = std::result::Result<T, Error>;

fn check(rc: c_int) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::from_errno(rc))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A type a `mallctl` node can hold, moved by value: the integer types,
/// `bool` and `usize`-sized pointers. Implemented only here (sealed), for
/// types every bit pattern of which is valid, so reading a node with the
/// wrong type fails with `EINVAL` (size mismatch) instead of producing an
/// invalid value.
pub trait Value: Copy + sealed::Sealed {
    /// The type as C stores it.
    #[doc(hidden)]
    type Raw: Copy;
    /// From the C representation.
    #[doc(hidden)]
    fn from_raw(raw: Self::Raw) -> Self;
    /// To the C representation.
    #[doc(hidden)]
    fn to_raw(self) -> Self::Raw;
}

macro_rules! plain_value {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Value for $t {
            type Raw = $t;
            fn from_raw(raw: $t) -> $t { raw }
            fn to_raw(self) -> $t { self }
        }
    )*};
}
plain_value!(u8, u32, u64, usize, i32, i64, isize);

impl sealed::Sealed for bool {}
impl Value for bool {
    type Raw = u8;
    fn from_raw(raw: u8) -> bool {
        raw != 0
    }
    fn to_raw(self) -> u8 {
        self as u8
    }
}

/// Calls `f` with `name` as a NUL-terminated C string, on the stack when it
/// is short (so reading a counter allocates nothing).
fn with_c_name<R>(name: &str, f: impl FnOnce(*const c_char) -> Result<R>) -> Result<R> {
    if name.as_bytes().contains(&0) {
        return Err(Error::from_errno(EINVAL));
    }
    let mut buf = [0u8; 128];
    if name.len() < buf.len() {
        buf[..name.len()].copy_from_slice(name.as_bytes());
        f(buf.as_ptr() as *const c_char)
    } else {
        let mut v = Vec::with_capacity(name.len() + 1);
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        f(v.as_ptr() as *const c_char)
    }
}

/// `mallctl(name, oldp, oldlenp, newp, newlen)` as it is: the escape hatch
/// for node types this module does not model (e.g. `arena.<i>.chunk_hooks`).
///
/// # Safety
///
/// `oldp`/`oldlenp` and `newp`/`newlen` must be valid as `mallctl` uses
/// them, and the value written must be valid for the node (a pointer node
/// dereferences what it is given).
pub unsafe fn raw(
    name: &str,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *mut c_void,
    newlen: usize,
) -> Result<()> {
    with_c_name(name, |n| check(sys::mallctl(n, oldp, oldlenp, newp, newlen)))
}

/// Reads the node `name` as a `T`; `EINVAL` when its size is not `T`'s.
pub fn read<T: Value>(name: &str) -> Result<T> {
    let mut v = MaybeUninit::<T::Raw>::uninit();
    let mut len = size_of::<T::Raw>();
    unsafe {
        raw(name, v.as_mut_ptr() as *mut c_void, &mut len, ptr::null_mut(), 0)?;
        if len != size_of::<T::Raw>() {
            return Err(Error::from_errno(EINVAL));
        }
        Ok(T::from_raw(v.assume_init()))
    }
}

/// Writes `value` to the node `name`.
pub fn write<T: Value>(name: &str, value: T) -> Result<()> {
    let mut v = value.to_raw();
    unsafe { raw(name, ptr::null_mut(), ptr::null_mut(), &mut v as *mut T::Raw as *mut c_void, size_of::<T::Raw>()) }
}

/// Writes `value` to the node `name` and returns the value it had, in one
/// call.
pub fn update<T: Value>(name: &str, value: T) -> Result<T> {
    let mut old = MaybeUninit::<T::Raw>::uninit();
    let mut len = size_of::<T::Raw>();
    let mut v = value.to_raw();
    unsafe {
        raw(
            name,
            old.as_mut_ptr() as *mut c_void,
            &mut len,
            &mut v as *mut T::Raw as *mut c_void,
            size_of::<T::Raw>(),
        )?;
        Ok(T::from_raw(old.assume_init()))
    }
}

/// Runs the node `name` with neither an old nor a new value: the nodes that
/// are actions (`arena.<i>.purge`, `arena.<i>.decay`, `thread.tcache.flush`).
pub fn call(name: &str) -> Result<()> {
    unsafe { raw(name, ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0) }
}

/// Converts a C string a node returned; null reads as `""`.
///
/// # Safety
///
/// `p` is null or a NUL-terminated string.
unsafe fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Reads a node whose value is a string (`const char *`), copied out.
pub fn read_str(name: &str) -> Result<String> {
    let p: usize = read(name)?;
    Ok(unsafe { c_str(p as *const c_char) })
}

/// Writes a string to a node whose value is a string (`arena.<i>.dss`).
pub fn write_str(name: &str, value: &str) -> Result<()> {
    if value.as_bytes().contains(&0) {
        return Err(Error::from_errno(EINVAL));
    }
    let mut c = Vec::with_capacity(value.len() + 1);
    c.extend_from_slice(value.as_bytes());
    c.push(0);
    let mut p = c.as_ptr() as *const c_char;
    unsafe {
        raw(
            name,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut p as *mut *const c_char as *mut c_void,
            size_of::<*const c_char>(),
        )
    }
}

/// A node's name resolved once (`mallctlnametomib`) into a Management
/// Information Base, for reading and writing it without the name lookup,
/// as a value of type `T`.
#[derive(Clone, Copy)]
pub struct Mib<T> {
    mib: [usize; MIB_MAX],
    len: usize,
    marker: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Mib<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Mib").field(&self.as_slice()).finish()
    }
}

fn name_to_mib(name: &str) -> Result<([usize; MIB_MAX], usize)> {
    let mut mib = [0usize; MIB_MAX];
    let mut len = MIB_MAX;
    with_c_name(name, |n| check(unsafe { sys::mallctlnametomib(n, mib.as_mut_ptr(), &mut len) }))?;
    Ok((mib, len))
}

impl<T> Mib<T> {
    /// The MIB's components.
    pub fn as_slice(&self) -> &[usize] {
        &self.mib[..self.len]
    }

    /// Sets component `pos` (an index position such as the `<i>` of
    /// `arena.<i>.purge`, position 1), to reach a sibling node. Panics when
    /// `pos` is beyond the MIB.
    pub fn set_index(&mut self, pos: usize, index: usize) -> &mut Self {
        assert!(pos < self.len, "MIB position {} beyond its length {}", pos, self.len);
        self.mib[pos] = index;
        self
    }

    /// `mallctlbymib` with this MIB.
    ///
    /// # Safety
    ///
    /// As for [`raw`].
    pub unsafe fn raw(&self, oldp: *mut c_void, oldlenp: *mut usize, newp: *mut c_void, newlen: usize) -> Result<()> {
        check(sys::mallctlbymib(self.mib.as_ptr(), self.len, oldp, oldlenp, newp, newlen))
    }

    /// Runs the node as an action (neither old nor new value).
    pub fn call(&self) -> Result<()> {
        unsafe { self.raw(ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0) }
    }
}

impl<T: Value> Mib<T> {
    /// Resolves `name`.
    pub fn new(name: &str) -> Result<Self> {
        let (mib, len) = name_to_mib(name)?;
        Ok(Mib { mib, len, marker: PhantomData })
    }

    /// Reads the node.
    pub fn read(&self) -> Result<T> {
        let mut v = MaybeUninit::<T::Raw>::uninit();
        let mut len = size_of::<T::Raw>();
        unsafe {
            self.raw(v.as_mut_ptr() as *mut c_void, &mut len, ptr::null_mut(), 0)?;
            if len != size_of::<T::Raw>() {
                return Err(Error::from_errno(EINVAL));
            }
            Ok(T::from_raw(v.assume_init()))
        }
    }

    /// Writes the node.
    pub fn write(&self, value: T) -> Result<()> {
        let mut v = value.to_raw();
        unsafe { self.raw(ptr::null_mut(), ptr::null_mut(), &mut v as *mut T::Raw as *mut c_void, size_of::<T::Raw>()) }
    }

    /// Writes the node and returns its old value, in one call.
    pub fn update(&self, value: T) -> Result<T> {
        let mut old = MaybeUninit::<T::Raw>::uninit();
        let mut len = size_of::<T::Raw>();
        let mut v = value.to_raw();
        unsafe {
            self.raw(
                old.as_mut_ptr() as *mut c_void,
                &mut len,
                &mut v as *mut T::Raw as *mut c_void,
                size_of::<T::Raw>(),
            )?;
            Ok(T::from_raw(old.assume_init()))
        }
    }
}

impl Mib<u64> {
    /// For the `epoch` MIB: refreshes the statistics snapshot and returns
    /// the new epoch.
    pub fn advance(&self) -> Result<u64> {
        self.write(1)?;
        self.read()
    }
}

/// A MIB for a node whose value is a string.
#[derive(Clone, Copy, Debug)]
pub struct MibStr(Mib<usize>);

impl MibStr {
    /// Resolves `name`.
    pub fn new(name: &str) -> Result<Self> {
        Ok(MibStr(Mib::new(name)?))
    }

    /// The MIB's components.
    pub fn as_slice(&self) -> &[usize] {
        self.0.as_slice()
    }

    /// Sets index component `pos`, as [`Mib::set_index`].
    pub fn set_index(&mut self, pos: usize, index: usize) -> &mut Self {
        self.0.set_index(pos, index);
        self
    }

    /// Reads the string, copied out.
    pub fn read(&self) -> Result<String> {
        let p = self.0.read()?;
        Ok(unsafe { c_str(p as *const c_char) })
    }
}

/// A pointer into the calling thread's own counter (`thread.allocatedp`,
/// `thread.deallocatedp`): reading it costs one load, no `mallctl` call.
/// Valid for the thread that read the node only, so neither `Send` nor
/// `Sync`.
#[derive(Debug)]
pub struct ThreadLocal<T> {
    ptr: *const T,
}

impl<T: Copy> ThreadLocal<T> {
    /// The counter's current value.
    #[inline]
    pub fn get(&self) -> T {
        unsafe { ptr::read_volatile(self.ptr) }
    }
}

/// Declares one typed node per line: `ident "name" Type access "doc"`,
/// access being `r` (read-only), `rw` or `str` (read-only string).
macro_rules! nodes {
    () => {};
    ($(#[doc = $doc:expr])* $id:ident $name:literal $t:ty, r; $($rest:tt)*) => {
        $(#[doc = $doc])*
        #[doc = concat!("\n\nThe node `", $name, "` (read-only).")]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        pub struct $id;
        impl $id {
            /// The node's mallctl name.
            pub const NAME: &'static str = $name;
            /// Reads the node.
            pub fn read() -> $crate::ctl::Result<$t> {
                $crate::ctl::read($name)
            }
            /// Resolves the name once, for repeated reads.
            pub fn mib() -> $crate::ctl::Result<$crate::ctl::Mib<$t>> {
                $crate::ctl::Mib::new($name)
            }
        }
        nodes!($($rest)*);
    };
    ($(#[doc = $doc:expr])* $id:ident $name:literal $t:ty, rw; $($rest:tt)*) => {
        $(#[doc = $doc])*
        #[doc = concat!("\n\nThe node `", $name, "` (read-write).")]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        pub struct $id;
        impl $id {
            /// The node's mallctl name.
            pub const NAME: &'static str = $name;
            /// Reads the node.
            pub fn read() -> $crate::ctl::Result<$t> {
                $crate::ctl::read($name)
            }
            /// Writes the node.
            pub fn write(value: $t) -> $crate::ctl::Result<()> {
                $crate::ctl::write($name, value)
            }
            /// Writes the node and returns its old value.
            pub fn update(value: $t) -> $crate::ctl::Result<$t> {
                $crate::ctl::update($name, value)
            }
            /// Resolves the name once, for repeated access.
            pub fn mib() -> $crate::ctl::Result<$crate::ctl::Mib<$t>> {
                $crate::ctl::Mib::new($name)
            }
        }
        nodes!($($rest)*);
    };
    ($(#[doc = $doc:expr])* $id:ident $name:literal str; $($rest:tt)*) => {
        $(#[doc = $doc])*
        #[doc = concat!("\n\nThe node `", $name, "` (read-only string).")]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        pub struct $id;
        impl $id {
            /// The node's mallctl name.
            pub const NAME: &'static str = $name;
            /// Reads the string.
            pub fn read() -> $crate::ctl::Result<String> {
                $crate::ctl::read_str($name)
            }
            /// Resolves the name once, for repeated reads.
            pub fn mib() -> $crate::ctl::Result<$crate::ctl::MibStr> {
                $crate::ctl::MibStr::new($name)
            }
        }
        nodes!($($rest)*);
    };
}

nodes! {
    /// liballoc's version string.
    version "version" str;
}

/// `epoch`: the generation of the statistics snapshot.
pub mod epoch {
    nodes! {
        /// The current epoch; writing any value refreshes the `stats.*`
        /// snapshot.
        epoch "epoch" u64, rw;
    }

    /// Refreshes the `stats.*` snapshot; returns the new epoch.
    pub fn advance() -> super::Result<u64> {
        super::write("epoch", 1u64)?;
        super::read("epoch")
    }

    /// The `epoch` MIB (see [`Mib::advance`](super::Mib::advance)).
    pub fn mib() -> super::Result<super::Mib<u64>> {
        super::Mib::new("epoch")
    }
}

nodes! {
    /// Whether background purging threads run. Writing `true` starts them,
    /// `false` stops and joins them. Answers `ENOENT` when the library was
    /// built without the `background_threads_runtime_support` feature.
    background_thread "background_thread" bool, rw;
}

/// `stats.*`: totals of the snapshot taken at the last [`epoch::advance`].
/// Every node answers `ENOENT` without the `stats` feature.
pub mod stats {
    nodes! {
        /// Bytes allocated by the program (sum of the usable sizes in use).
        allocated "stats.allocated" usize, r;
        /// Bytes in active pages (pages holding allocated blocks).
        active "stats.active" usize, r;
        /// Bytes of allocator metadata.
        metadata "stats.metadata" usize, r;
        /// Bytes in physically resident pages mapped by the allocator.
        resident "stats.resident" usize, r;
        /// Bytes in chunks mapped by the allocator and in use by it.
        mapped "stats.mapped" usize, r;
        /// Bytes of virtual memory kept mapped but returned to the system
        /// (`opt.retain`).
        retained "stats.retained" usize, r;
    }
}

/// `arenas.*`: the arenas and the size classes.
pub mod arenas {
    nodes! {
        /// The number of arenas (automatic and created).
        narenas "arenas.narenas" u32, r;
        /// The page size the library was configured with.
        page "arenas.page" usize, r;
        /// The quantum: the spacing of the smallest size classes and the
        /// alignment of every block of at least this size.
        quantum "arenas.quantum" usize, r;
        /// The largest size the thread caches hold.
        tcache_max "arenas.tcache_max" usize, r;
        /// The number of small size classes.
        nbins "arenas.nbins" u32, r;
        /// The default decay time (seconds) of new arenas.
        decay_time "arenas.decay_time" isize, rw;
        /// Reading it creates a new arena and returns its index.
        extend "arenas.extend" u32, r;
    }
}

/// `arena.<i>.*`: actions on one arena, or on all when `arena` is
/// `arenas.narenas` (jemalloc's `MALLCTL_ARENAS_ALL` convention).
pub mod arena {
    fn run(arena: usize, action: &str) -> super::Result<()> {
        let mut mib = super::Mib::<u64>::new(&format!("arena.0.{}", action))?;
        mib.set_index(1, arena).call()
    }

    /// Purges every unused dirty page of arena `arena`.
    pub fn purge(arena: usize) -> super::Result<()> {
        run(arena, "purge")
    }

    /// Purges what arena `arena`'s decay curve says is due now.
    pub fn decay(arena: usize) -> super::Result<()> {
        run(arena, "decay")
    }
}

/// `thread.*`: the calling thread.
pub mod thread {
    use std::mem::size_of;
    use std::os::raw::c_void;
    use std::ptr;

    nodes! {
        /// Bytes the calling thread has allocated, ever (needs `stats`).
        allocated "thread.allocated" u64, r;
        /// Bytes the calling thread has freed, ever (needs `stats`).
        deallocated "thread.deallocated" u64, r;
        /// The arena the calling thread allocates from; writing moves it.
        arena "thread.arena" u32, rw;
    }

    fn counter(name: &str) -> super::Result<super::ThreadLocal<u64>> {
        let mut p: *const u64 = ptr::null();
        let mut len = size_of::<*const u64>();
        unsafe {
            super::raw(name, &mut p as *mut *const u64 as *mut c_void, &mut len, ptr::null_mut(), 0)?;
        }
        Ok(super::ThreadLocal { ptr: p })
    }

    /// `thread.allocatedp`: the calling thread's allocated-bytes counter,
    /// read by one load.
    #[allow(non_camel_case_types)]
    #[derive(Clone, Copy, Debug)]
    pub struct allocatedp;
    impl allocatedp {
        /// The node's mallctl name.
        pub const NAME: &'static str = "thread.allocatedp";
        /// A pointer to the calling thread's counter.
        pub fn read() -> super::Result<super::ThreadLocal<u64>> {
            counter(Self::NAME)
        }
    }

    /// `thread.deallocatedp`: the calling thread's freed-bytes counter,
    /// read by one load.
    #[allow(non_camel_case_types)]
    #[derive(Clone, Copy, Debug)]
    pub struct deallocatedp;
    impl deallocatedp {
        /// The node's mallctl name.
        pub const NAME: &'static str = "thread.deallocatedp";
        /// A pointer to the calling thread's counter.
        pub fn read() -> super::Result<super::ThreadLocal<u64>> {
            counter(Self::NAME)
        }
    }

    /// `thread.tcache.*`: the calling thread's cache.
    pub mod tcache {
        nodes! {
            /// Whether the calling thread has a thread cache; writing
            /// `false` flushes and disables it.
            enabled "thread.tcache.enabled" bool, rw;
        }

        /// Empties the calling thread's cache into the arenas.
        pub fn flush() -> crate::ctl::Result<()> {
            crate::ctl::call("thread.tcache.flush")
        }
    }
}

/// `opt.*`: the options in force (read-only; set them through
/// `MALLOC_CONF` or `LIBALLOC_SYS_WITH_MALLOC_CONF`).
pub mod opt {
    nodes! {
        /// Abort on warnings.
        abort "opt.abort" bool, r;
        /// Abort on a bad option.
        abort_conf "opt.abort_conf" bool, r;
        /// The number of automatic arenas.
        narenas "opt.narenas" u32, r;
        /// How threads are assigned arenas (`"percpu"`, `"disabled"`, ...).
        percpu_arena "opt.percpu_arena" str;
        /// Whether thread caches are on.
        tcache "opt.tcache" bool, r;
        /// log2 of the largest size cached per thread.
        lg_tcache_max "opt.lg_tcache_max" usize, r;
        /// Print statistics at exit.
        stats_print "opt.stats_print" bool, r;
        /// log2 of the chunk size.
        lg_chunk "opt.lg_chunk" usize, r;
        /// Seconds over which unused dirty pages are purged (-1: never).
        decay_time "opt.decay_time" isize, r;
        /// `opt.decay_time` in milliseconds (jemalloc 5's name).
        dirty_decay_ms "opt.dirty_decay_ms" isize, r;
        /// log2 of the active:dirty ratio of the ratio purge mode.
        lg_dirty_mult "opt.lg_dirty_mult" isize, r;
        /// The purge mode: `"decay"` or `"ratio"`.
        purge "opt.purge" str;
        /// The advice used to purge pages.
        purge_madvise "opt.purge_madvise" str;
        /// Keep unused chunks mapped (returned to the system) instead of
        /// unmapping them.
        retain "opt.retain" bool, r;
        /// A cap on mapped bytes (0: none).
        max_bytes "opt.max_bytes" usize, r;
        /// Transparent huge pages: `"default"`, `"always"` or `"never"`.
        thp "opt.thp" str;
        /// Whether background purging threads start enabled.
        background_thread "opt.background_thread" bool, r;
        /// Junk filling: `"false"`, `"true"`, `"alloc"` or `"free"`.
        junk "opt.junk" str;
        /// Zero every allocation.
        zero "opt.zero" bool, r;
        /// Redzones around small blocks.
        redzone "opt.redzone" bool, r;
        /// Bytes of freed blocks held back (quarantine).
        quarantine "opt.quarantine" usize, r;
        /// Abort instead of returning null.
        xmalloc "opt.xmalloc" bool, r;
    }
}

/// `config.*`: how the library was built.
pub mod config {
    nodes! {
        /// Always false in liballoc.
        cache_oblivious "config.cache_oblivious" bool, r;
        /// Built with `--enable-debug` (feature `debug`).
        debug "config.debug" bool, r;
        /// Built with the fill options (junk, zero, redzone, quarantine).
        fill "config.fill" bool, r;
        /// Always false in liballoc.
        lazy_lock "config.lazy_lock" bool, r;
        /// The options compiled in (`LIBALLOC_SYS_WITH_MALLOC_CONF`).
        malloc_conf "config.malloc_conf" str;
        /// Whether unused chunks can be unmapped.
        munmap "config.munmap" bool, r;
        /// Built with heap profiling (feature `profiling`).
        prof "config.prof" bool, r;
        /// Profiling unwinds with libgcc.
        prof_libgcc "config.prof_libgcc" bool, r;
        /// Profiling unwinds with libunwind.
        prof_libunwind "config.prof_libunwind" bool, r;
        /// Built with statistics (feature `stats`).
        stats "config.stats" bool, r;
        /// Built with thread caches.
        tcache "config.tcache" bool, r;
        /// Built with thread-local storage.
        tls "config.tls" bool, r;
        /// Always false in liballoc.
        utrace "config.utrace" bool, r;
        /// Always false in liballoc.
        valgrind "config.valgrind" bool, r;
        /// Built with `opt.xmalloc`.
        xmalloc "config.xmalloc" bool, r;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_follow_errno() {
        assert_eq!(Error::from_errno(ENOENT).kind(), ErrorKind::NotFound);
        assert_eq!(Error::from_errno(EINVAL).kind(), ErrorKind::InvalidArgument);
        assert_eq!(Error::from_errno(EPERM).kind(), ErrorKind::PermissionDenied);
        assert_eq!(Error::from_errno(EFAULT).kind(), ErrorKind::Fault);
        assert_eq!(Error::from_errno(EAGAIN).kind(), ErrorKind::Again);
        assert_eq!(Error::from_errno(999).kind(), ErrorKind::Other);
        let s = Error::from_errno(ENOENT).to_string();
        assert!(s.contains("ENOENT") && s.contains("errno 2"), "{}", s);
    }
}
