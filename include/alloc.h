/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * liballoc: a drop-in malloc replacement with jemalloc's extended API.
 *
 * The standard functions (malloc, free, calloc, realloc, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size,
 * reallocarray) keep their <stdlib.h>/<malloc.h> prototypes and are not
 * repeated here unless the library was built with a name prefix. This
 * header adds jemalloc's non-standard API with the same prototypes and the
 * same MALLOCX_* flag encodings, so a program written against
 * <jemalloc/jemalloc.h> builds and runs against liballoc unchanged.
 *
 * A build configured with --with-prefix=PFX exports every name with PFX in
 * front (PFXmalloc, PFXmallocx, ...); `make install` writes that prefix into
 * the ALLOC_PREFIX line below and defines ALLOC_PREFIXED_BUILD, which
 * declares the prefixed standard functions too.
 */
#ifndef ALLOC_H
#define ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Names and attributes
 * --------------------------------------------------------------------- */

#ifndef ALLOC_PREFIX
#define ALLOC_PREFIX
#endif
#define ALLOC_API_CONCAT2(a, b) a##b
#define ALLOC_API_CONCAT(a, b)  ALLOC_API_CONCAT2(a, b)
/* ALLOC_API(mallocx) is the exported name of mallocx in this build. */
#define ALLOC_API(name) ALLOC_API_CONCAT(ALLOC_PREFIX, name)

#if defined(__GNUC__) || defined(__clang__)
#define ALLOC_ATTR_MALLOC            __attribute__((malloc))
#define ALLOC_ATTR_ALLOC_SIZE(n)     __attribute__((alloc_size(n)))
#define ALLOC_ATTR_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#define ALLOC_ATTR_WARN_UNUSED       __attribute__((warn_unused_result))
#else
#define ALLOC_ATTR_MALLOC
#define ALLOC_ATTR_ALLOC_SIZE(n)
#define ALLOC_ATTR_ALLOC_SIZE2(n, m)
#define ALLOC_ATTR_WARN_UNUSED
#endif

#ifdef __cplusplus
#define ALLOC_NOTHROW noexcept
#else
#define ALLOC_NOTHROW
#endif

/* ------------------------------------------------------------------------
 * Flags for the *allocx functions: the bits are jemalloc's.
 * --------------------------------------------------------------------- */

/* Align to (1 << la) bytes. la is not checked. */
#define MALLOCX_LG_ALIGN(la) ((int)(la))
/* Align to a bytes; a must be a power of two (not checked). */
#define MALLOCX_ALIGN(a) ((int)__builtin_ctzll((unsigned long long)(a)))
/* Zero the new memory (for rallocx/xallocx: the part past the old size). */
#define MALLOCX_ZERO ((int)0x40)
/* Use explicit thread cache tc (from the "tcache.create" mallctl). */
#define MALLOCX_TCACHE(tc) ((int)(((tc) + 2) << 8))
/* Bypass thread caches altogether. */
#define MALLOCX_TCACHE_NONE MALLOCX_TCACHE(-1)
/* Allocate from arena a. */
#define MALLOCX_ARENA(a) ((((int)(a)) + 1) << 20)

/* ------------------------------------------------------------------------
 * The standard API, declared here only in prefixed builds.
 * --------------------------------------------------------------------- */

#ifdef ALLOC_PREFIXED_BUILD
ALLOC_ATTR_MALLOC ALLOC_ATTR_ALLOC_SIZE(1) void *ALLOC_API(malloc)(size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC ALLOC_ATTR_ALLOC_SIZE2(1, 2) void *ALLOC_API(calloc)(size_t num,
                                                                       size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_ALLOC_SIZE(2) void *ALLOC_API(realloc)(void *ptr, size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_ALLOC_SIZE2(2, 3)
void *ALLOC_API(reallocarray)(void *ptr, size_t num, size_t size) ALLOC_NOTHROW;
void ALLOC_API(free)(void *ptr) ALLOC_NOTHROW;
int ALLOC_API(posix_memalign)(void **memptr, size_t alignment, size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC
ALLOC_ATTR_ALLOC_SIZE(2)
void *ALLOC_API(aligned_alloc)(size_t alignment, size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC ALLOC_ATTR_ALLOC_SIZE(2) void *ALLOC_API(memalign)(size_t alignment,
                                                                     size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC ALLOC_ATTR_ALLOC_SIZE(1) void *ALLOC_API(valloc)(size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC void *ALLOC_API(pvalloc)(size_t size) ALLOC_NOTHROW;
size_t ALLOC_API(malloc_usable_size)(const void *ptr) ALLOC_NOTHROW;
#endif

/* ------------------------------------------------------------------------
 * jemalloc's extended allocation API
 * --------------------------------------------------------------------- */

/* Allocates at least size bytes with the given flags; NULL on failure. */
ALLOC_ATTR_MALLOC ALLOC_ATTR_ALLOC_SIZE(1) void *ALLOC_API(mallocx)(size_t size,
                                                                    int flags) ALLOC_NOTHROW;
/* Resizes ptr to at least size bytes, moving it if needed; NULL on failure
 * (ptr is then untouched). */
ALLOC_ATTR_ALLOC_SIZE(2) void *ALLOC_API(rallocx)(void *ptr, size_t size, int flags) ALLOC_NOTHROW;
/* Resizes ptr in place to at least size and, where possible, up to
 * size + extra bytes; never moves. Returns the resulting usable size (the
 * old one when nothing could be done). */
size_t ALLOC_API(xallocx)(void *ptr, size_t size, size_t extra, int flags) ALLOC_NOTHROW;
/* Usable size of ptr. */
size_t ALLOC_API(sallocx)(const void *ptr, int flags) ALLOC_NOTHROW;
/* Frees ptr. */
void ALLOC_API(dallocx)(void *ptr, int flags) ALLOC_NOTHROW;
/* Frees ptr, whose size the caller knows: any size from the one requested
 * up to the usable size. */
void ALLOC_API(sdallocx)(void *ptr, size_t size, int flags) ALLOC_NOTHROW;
/* Usable size mallocx(size, flags) would return, without allocating; 0 if
 * the request cannot be satisfied. */
size_t ALLOC_API(nallocx)(size_t size, int flags) ALLOC_NOTHROW;

/* ------------------------------------------------------------------------
 * Private heaps: allocation inside a region the caller provides (shared
 * memory, a mapped file, a static array), many per process, shared between
 * processes that map the region at the same address, emptied in one call.
 * All of a heap's state lives in its region. See alloc(3) and doc/heap.md.
 * --------------------------------------------------------------------- */

typedef struct alloc_heap_s alloc_heap_t;

/* alloc_heap_create flag: the heap is used by several processes (robust,
 * process-shared locks). */
#define ALLOC_HEAP_SHARED 1u

typedef struct {
	size_t size;       /* bytes of the region */
	size_t usable;     /* bytes blocks can use (the region's chunks) */
	size_t overhead;   /* size - usable: headers, descriptors, alignment */
	size_t allocated;  /* usable bytes of the live blocks */
	size_t high_water; /* highest `allocated` since create or reset */
	size_t active;     /* bytes of the pages holding live blocks */
	size_t free;       /* usable - active */
	size_t nblocks;    /* live blocks */
	size_t chunks;     /* chunks (CHUNK bytes each) in the region */
	unsigned flags;    /* the flags the heap was created with */
} alloc_heap_stats_t;

/* Makes a heap in [base, base+size): base page-aligned, size >= 4 MiB.
 * NULL with errno EINVAL (bad region or flags), EBUSY (a live heap is
 * there), ENOMEM (no free arena slot). */
alloc_heap_t *ALLOC_API(alloc_heap_create)(void *base, size_t size, unsigned flags) ALLOC_NOTHROW;
/* The heap another process made at base, which this process maps at the
 * same address; NULL with errno EINVAL when base holds no heap. */
alloc_heap_t *ALLOC_API(alloc_heap_attach)(void *base) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC
ALLOC_ATTR_ALLOC_SIZE(2)
void *ALLOC_API(alloc_heap_malloc)(alloc_heap_t *heap, size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC
ALLOC_ATTR_ALLOC_SIZE2(2, 3)
void *ALLOC_API(alloc_heap_calloc)(alloc_heap_t *heap, size_t n, size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_ALLOC_SIZE(3)
void *ALLOC_API(alloc_heap_realloc)(alloc_heap_t *heap, void *ptr, size_t size) ALLOC_NOTHROW;
ALLOC_ATTR_MALLOC ALLOC_ATTR_ALLOC_SIZE(3) void *ALLOC_API(alloc_heap_aligned_alloc)(
    alloc_heap_t *heap, size_t alignment, size_t size) ALLOC_NOTHROW;
void ALLOC_API(alloc_heap_free)(alloc_heap_t *heap, void *ptr) ALLOC_NOTHROW;
/* The heap's arena index in this process, for MALLOCX_ARENA() and
 * mallctl's arena.<i> / stats.arenas.<i>. */
unsigned ALLOC_API(alloc_heap_arena)(alloc_heap_t *heap) ALLOC_NOTHROW;
/* Frees every block of the heap at once; 0 or an errno value. */
int ALLOC_API(alloc_heap_reset)(alloc_heap_t *heap) ALLOC_NOTHROW;
/* Ends the heap; afterwards nothing refers to the region. 0 or an errno
 * value. */
int ALLOC_API(alloc_heap_destroy)(alloc_heap_t *heap) ALLOC_NOTHROW;
/* Fills *st; 0 or an errno value. */
int ALLOC_API(alloc_heap_stats)(alloc_heap_t *heap, alloc_heap_stats_t *st) ALLOC_NOTHROW;

/* Only in builds configured with --enable-private-heap (and --with-prefix):
 * the prefixed malloc family allocates only from the heap made in
 * [start, start+size) by the first call (before it: NULL + ENOMEM); 0, or
 * an errno value (EBUSY: another region is already set). malloc_reset
 * frees every block of it at once; the heap stays set up. */
int ALLOC_API(config_private_heap)(void *start, size_t size) ALLOC_NOTHROW;
void ALLOC_API(malloc_reset)(void) ALLOC_NOTHROW;

/* ------------------------------------------------------------------------
 * Chunk hooks (arena.<i>.chunk_hooks): jemalloc 4's types. Every hook but
 * alloc returns false on success; see alloc(3).
 * --------------------------------------------------------------------- */

typedef void *(chunk_alloc_t)(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit,
                              unsigned arena_ind);
typedef bool(chunk_dalloc_t)(void *chunk, size_t size, bool committed, unsigned arena_ind);
typedef bool(chunk_commit_t)(void *chunk, size_t size, size_t offset, size_t length,
                             unsigned arena_ind);
typedef bool(chunk_decommit_t)(void *chunk, size_t size, size_t offset, size_t length,
                               unsigned arena_ind);
typedef bool(chunk_purge_t)(void *chunk, size_t size, size_t offset, size_t length,
                            unsigned arena_ind);
typedef bool(chunk_split_t)(void *chunk, size_t size, size_t size_a, size_t size_b, bool committed,
                            unsigned arena_ind);
typedef bool(chunk_merge_t)(void *chunk_a, size_t size_a, void *chunk_b, size_t size_b,
                            bool committed, unsigned arena_ind);

typedef struct {
	chunk_alloc_t *alloc;
	chunk_dalloc_t *dalloc;
	chunk_commit_t *commit;
	chunk_decommit_t *decommit;
	chunk_purge_t *purge;
	chunk_split_t *split;
	chunk_merge_t *merge;
} chunk_hooks_t;

/* ------------------------------------------------------------------------
 * Extent hooks (arena.<i>.extent_hooks, arenas.create): jemalloc 5.3's
 * types, the same hook layer as the chunk hooks above seen the 5.x way.
 * Every hook gets the extent_hooks_t it was called through; every hook but
 * alloc and destroy returns false on success. A NULL member means "not
 * supported" (dalloc: the memory is retained until destroy). See alloc(3).
 * --------------------------------------------------------------------- */

typedef struct extent_hooks_s extent_hooks_t;

typedef void *(extent_alloc_t)(extent_hooks_t *extent_hooks, void *new_addr, size_t size,
                               size_t alignment, bool *zero, bool *commit, unsigned arena_ind);
typedef bool(extent_dalloc_t)(extent_hooks_t *extent_hooks, void *addr, size_t size, bool committed,
                              unsigned arena_ind);
typedef void(extent_destroy_t)(extent_hooks_t *extent_hooks, void *addr, size_t size,
                               bool committed, unsigned arena_ind);
typedef bool(extent_commit_t)(extent_hooks_t *extent_hooks, void *addr, size_t size, size_t offset,
                              size_t length, unsigned arena_ind);
typedef bool(extent_decommit_t)(extent_hooks_t *extent_hooks, void *addr, size_t size,
                                size_t offset, size_t length, unsigned arena_ind);
typedef bool(extent_purge_t)(extent_hooks_t *extent_hooks, void *addr, size_t size, size_t offset,
                             size_t length, unsigned arena_ind);
typedef bool(extent_split_t)(extent_hooks_t *extent_hooks, void *addr, size_t size, size_t size_a,
                             size_t size_b, bool committed, unsigned arena_ind);
typedef bool(extent_merge_t)(extent_hooks_t *extent_hooks, void *addr_a, size_t size_a,
                             void *addr_b, size_t size_b, bool committed, unsigned arena_ind);

struct extent_hooks_s {
	extent_alloc_t *alloc;
	extent_dalloc_t *dalloc;
	extent_destroy_t *destroy;
	extent_commit_t *commit;
	extent_decommit_t *decommit;
	extent_purge_t *purge_lazy;
	extent_purge_t *purge_forced;
	extent_split_t *split;
	extent_merge_t *merge;
};

/* ------------------------------------------------------------------------
 * Introspection and tuning (see alloc(3) for the namespace)
 * --------------------------------------------------------------------- */

int ALLOC_API(mallctl)(const char *name, void *oldp, size_t *oldlenp, void *newp,
                       size_t newlen) ALLOC_NOTHROW;
int ALLOC_API(mallctlnametomib)(const char *name, size_t *mibp, size_t *miblenp) ALLOC_NOTHROW;
int ALLOC_API(mallctlbymib)(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp,
                            void *newp, size_t newlen) ALLOC_NOTHROW;
/* Writes statistics through write_cb (malloc_message when NULL). opts: see
 * alloc(3); "J" selects JSON. */
void ALLOC_API(malloc_stats_print)(void (*write_cb)(void *, const char *), void *cbopaque,
                                   const char *opts) ALLOC_NOTHROW;
/* Where liballoc writes its messages; a program may replace it. */
extern void (*ALLOC_API(malloc_message))(void *cbopaque, const char *s);
/* Options a program compiles in, read at start-up like MALLOC_CONF. */
extern const char *ALLOC_API(malloc_conf);

#ifdef __cplusplus
}
#endif

#endif /* ALLOC_H */
