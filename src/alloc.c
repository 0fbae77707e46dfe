/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The public allocation API: malloc, free and their standard relatives,
 * glibc's __libc_* names for them, start-up and fork handling.
 *
 * Shape of every entry point: the exported function is an always-inline
 * fast path (size class, thread-cache pop or push, return) that tail-calls
 * one NOINLINE slow path for everything else: initialisation, a cache miss
 * or overflow, huge sizes, errors. A thread that has not been set up has a
 * zeroed cache whose bins always miss, so "first call" costs the hit path
 * nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/assert.h"
#include "alloc/internal/background_thread.h"
#include "alloc/internal/base.h"
#include "alloc/internal/conf.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/export.h"
#include "alloc/internal/fill.h"
#include "alloc/internal/heap.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/message.h"
#include "alloc/internal/opt.h"
#include "alloc/internal/pages.h"
#include "alloc/internal/prof.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/timeline.h"
#include "alloc/internal/tsd.h"

/* ---------------------------------------------------------------------- */
/* Start-up. */

/* Serialises start-up. Lock order: first (see mutex.h). */
static mutex_t init_lock = MUTEX_INITIALIZER;
static bool malloc_initialized;
static bool malloc_init_failed;

static void alloc_prefork(void);
static void alloc_postfork_parent(void);
static void alloc_postfork_child(void);

/*
 * Sets every subsystem up. Nothing here may call malloc: under LD_PRELOAD
 * the first call can come from the dynamic loader or from pthread_create
 * before anything else ran. pthread_atfork may allocate, so it runs after
 * the allocator is usable.
 */
/* At a thread's exit, before its cache is flushed (tsd_hooks_t). */
static void
alloc_thread_exit(tsd_t *tsd) {
	fill_quarantine_drain(tsd);
	if (config_prof) {
		/* The thread's profile record outlives it while its samples
		 * live (prof.h). */
		prof_thread_exit(tsd->prof);
		tsd->prof = NULL;
	}
}

COLD NOINLINE static bool
malloc_init_hard(void) {
	mutex_lock(&init_lock);
	if (malloc_initialized || malloc_init_failed) {
		mutex_unlock(&init_lock);
		return malloc_init_failed;
	}
	/* Options first: everything below reads them. */
	conf_boot();
	fill_boot();
	pages_boot();
	arena_boot();
	tcache_boot();
	prof_boot();
	/* The fill options act on slow paths only: no cache (fill.h). */
	const tsd_hooks_t tsd_hooks = {.tcache = opt_tcache && !fill_slow_paths,
	                               .exit = alloc_thread_exit};
	if (huge_boot() || tsd_boot(&tsd_hooks) || arena_get(0) == NULL) {
		malloc_init_failed = true;
		mutex_unlock(&init_lock);
		msg_warn("start-up failed: out of memory");
		return true;
	}
	__atomic_store_n(&malloc_initialized, true, __ATOMIC_RELEASE);
	mutex_unlock(&init_lock);
	if (opt_background_thread && !config_background_thread_support) {
		msg_warn("background_thread:true ignored: built with "
		         "--disable-background-thread-support");
		opt_background_thread = false;
	}
	if (opt_background_thread) {
		/* Only marks purging enabled here: the threads start at the
		 * next slow path, outside start-up (background_thread.h). */
		background_thread_mark_enabled();
	}
	pthread_atfork(alloc_prefork, alloc_postfork_parent, alloc_postfork_child);
	/* Tested here: the never-run code (stats_print.c) stays untouched. */
	if (opt_stats_print) {
		stats_print_atexit_boot();
	}
	fill_atexit_boot();
	prof_boot_late();
	timeline_boot();
	return false;
}

/*
 * The library's DT_FINI, named by the link (-Wl,-fini=alloc_dt_fini, when
 * the linker takes it: configure.ac, LAYOUT_LDFLAGS): the dynamic loader
 * calls it once at exit. The C runtime's own _fini does nothing
 * (destructors run from .fini_array) but sits in .fini, after all the
 * text, so calling it faulted the last 64 KiB of text in, in every
 * process; this one lies with the start-up code (src/hot_text.list).
 */
void alloc_dt_fini(void);
__attribute__((used)) void
alloc_dt_fini(void) {
}

/* Returns true if the allocator cannot be used. */
ALWAYS_INLINE bool
malloc_init(void) {
	if (likely(__atomic_load_n(&malloc_initialized, __ATOMIC_ACQUIRE))) {
		return false;
	}
	return malloc_init_hard();
}

/* Flag fields (the bits of jemalloc's MALLOCX_* macros, see alloc.h). */
#define FLAGS_LG_ALIGN_MASK 0x3f
#define FLAGS_ZERO          0x40
#define FLAGS_TCACHE_SHIFT  8
#define FLAGS_TCACHE_MASK   0xfff
#define FLAGS_ARENA_SHIFT   20

/* The alignment MALLOCX_LG_ALIGN asks for in `flags` (0: none). */
ALWAYS_INLINE size_t
flags_alignment(int flags) {
	unsigned lg = (unsigned)flags & FLAGS_LG_ALIGN_MASK;
	return lg == 0 ? 0 : (size_t)1 << lg;
}

/* Class size of a request for `size` bytes aligned to `alignment` (0 or 1:
 * no constraint beyond the class's own); 0 when it cannot be served. */
ALWAYS_INLINE size_t
usize_class(size_t size, size_t alignment) {
	return alignment <= 1 ? sz_s2u(size) : sz_sa2u(size, alignment);
}

/* Usable size of such a request: the class size, except that under
 * opt.redzone small objects lose their guards' bytes (fill.h). */
ALWAYS_INLINE size_t
usize_for(size_t size, size_t alignment) {
	if (config_fill && unlikely(opt_redzone)) {
		return fill_redzone_usize(size, alignment);
	}
	return usize_class(size, alignment);
}

/* The private heap ptr belongs to (its arena), or NULL. */
static arena_t *heap_arena_of(const void *ptr);

/*
 * Blocks of private heaps get none of the debugging fills (junk, zero,
 * redzone, quarantine): a reset or destroy throws them away in bulk, which
 * a quarantine holding them would not survive, and the caller's region
 * holds exactly what the heap API hands out. So their usable sizes are the
 * plain class sizes, and an allocation for a heap skips alloc_fill.
 */
ALWAYS_INLINE bool
alloc_for_heap(const arena_t *arena) {
	return config_private_heap_only || (arena != NULL && arena->region != NULL);
}

/* usize_for for a request about the existing block ptr. */
static size_t
usize_for_block(const void *ptr, size_t size, size_t alignment) {
	if (config_fill && unlikely(opt_redzone) && heap_arena_of(ptr) != NULL) {
		return usize_class(size, alignment);
	}
	return usize_for(size, alignment);
}

/* Sets errno for a failed allocation of `size` bytes (opt.xmalloc aborts
 * instead). */
COLD NOINLINE static void
alloc_fail(size_t size) {
	fill_xmalloc_check(size);
	errno = ENOMEM;
}

/* The same after alloc_class failed: a private heap's path has set errno
 * itself (ENOMEM when full, ENOTRECOVERABLE when damaged). */
COLD NOINLINE static void
alloc_fail_class(size_t size, size_t usize, arena_t *arena) {
	if (usize != 0 && (config_private_heap_only || (arena != NULL && arena->region != NULL))) {
		fill_xmalloc_check(size);
		return;
	}
	alloc_fail(size);
}

/* ---------------------------------------------------------------------- */
/* Slow paths. */

/*
 * Allocates an object of class size `usize` (a class that satisfies
 * `alignment`) for a request of `size` bytes (usize when the whole class
 * is wanted: fill options, private heaps), zeroed if asked, through cache
 * `tc` (NULL: none) from `arena` (NULL: the thread's). NULL on failure.
 */
/* alloc_class once the arena is known. */
ALWAYS_INLINE void *
alloc_from_arena(size_t size, size_t usize, size_t alignment, bool zero, tcache_t *tc,
                 arena_t *arena) {
	szind_t ind = sz_size2index(usize);
	void *ret;
	if (config_prof && unlikely(prof_enabled) && arena->region == NULL) {
		/* Allocations a thread-cache bin counts are sampled there
		 * (tcache_alloc); the rest share the thread's byte countdown.
		 * Private heaps (heap.c) are not profiled. */
		bool bin = ind < SZ_NPAGED && (alignment <= PAGE || ind < SZ_NSMALL) &&
		           tc != NULL && tcache_caches(tc, ind);
		if (!bin && prof_count_bytes(usize)) {
			return prof_alloc_sampled(arena, ind, alignment, zero);
		}
	}
	if (ind < SZ_NPAGED && (alignment <= PAGE || ind < SZ_NSMALL)) {
		if (tc != NULL && tcache_caches(tc, ind)) {
			ret = tcache_alloc(tc, arena, ind);
		} else if (ind < SZ_NSMALL) {
			ret = arena_malloc_small(arena, ind, false);
		} else if (!zero) {
			ret = arena_malloc_large_request(arena, ind, size);
		} else {
			ret = arena_malloc_large(arena, ind, PAGE, false);
		}
		if (zero && ret != NULL) {
			memset(ret, 0, usize);
		}
	} else if (ind < SZ_NPAGED) {
		ret = arena_malloc_large(arena, ind, alignment, zero);
	} else {
		ret = huge_malloc(arena, usize, alignment, zero);
	}
	return ret;
}

/* An allocation from a private heap's arena: never through a cache (a
 * reset or destroy must find no block of the heap cached anywhere), under
 * the heap lock of a shared heap, counted in the heap's statistics. */
NOINLINE static void *
alloc_from_heap(size_t usize, size_t alignment, bool zero, arena_t *arena) {
	if (unlikely(!heap_enter(arena))) {
		return NULL;
	}
	void *ret = alloc_from_arena(usize, usize, alignment, zero, NULL, arena);
	if (ret != NULL) {
		heap_count_alloc(arena, usize);
	} else {
		errno = ENOMEM;
	}
	heap_leave(arena);
	return ret;
}

ALWAYS_INLINE void *
alloc_class(tsd_t *tsd, size_t size, size_t usize, size_t alignment, bool zero, tcache_t *tc,
            arena_t *arena) {
	if (config_private_heap_only && arena == NULL) {
		/* The private heap or nothing (NULL + ENOMEM before
		 * PFXconfig_private_heap). */
		arena = heap_private_arena();
		if (arena == NULL) {
			errno = ENOMEM;
			return NULL;
		}
	}
	if (arena == NULL) {
		/* An explicit cache fills from the arena it was created for,
		 * as in jemalloc; the thread's own cache from the thread's. */
		arena = tc != NULL && tc != &tsd->tcache ? tc->arena : tsd_arena(tsd);
		if (unlikely(arena == NULL)) {
			return NULL;
		}
	} else if (unlikely(arena->region != NULL)) {
		return alloc_from_heap(usize, alignment, zero, arena);
	}
	return alloc_from_arena(size, usize, alignment, zero, tc, arena);
}

/*
 * alloc_impl under the fill options (fill.h): no cache, not even an
 * explicit one, may hand out an object the options have not seen; the
 * object gets its redzones and junk or zero.
 */
NOINLINE static void *
alloc_fill(tsd_t *tsd, size_t size, size_t alignment, bool zero, arena_t *arena) {
	zero = zero || (opt_zero && !fill_junk_alloc);
	/* Where the user's bytes start in the region (opt.redzone). */
	size_t lead = 0;
	size_t usize =
	    opt_redzone ? fill_redzone_class(size, alignment, &lead) : usize_for(size, alignment);
	void *ret =
	    usize == 0 ? NULL : alloc_class(tsd, usize, usize, alignment, zero, NULL, arena);
	if (unlikely(ret == NULL)) {
		alloc_fail_class(size, usize, arena);
		return NULL;
	}
	if (config_stats) {
		/* The usable size, without redzones. */
		tsd->allocated += lead == 0 ? usize : usize - lead - FILL_REDZONE_SIZE;
	}
	return fill_alloc_finish(ret, usize, lead, zero);
}

/*
 * Allocates `size` bytes aligned to `alignment` (0 or 1: no constraint
 * beyond the size class's own), zeroed if asked, through cache `tc` (NULL:
 * none) from `arena` (NULL: the thread's). Sets errno to ENOMEM and returns
 * NULL on failure. The thread must be set up.
 */
static void *
alloc_impl(tsd_t *tsd, size_t size, size_t alignment, bool zero, tcache_t *tc, arena_t *arena) {
	if (config_fill && unlikely(fill_slow_paths) && !alloc_for_heap(arena)) {
		return alloc_fill(tsd, size, alignment, zero, arena);
	}
	size_t usize = usize_class(size, alignment);
	void *ret = usize == 0 ? NULL : alloc_class(tsd, size, usize, alignment, zero, tc, arena);
	if (unlikely(ret == NULL)) {
		alloc_fail_class(size, usize, arena);
		return NULL;
	}
	if (config_stats) {
		tsd->allocated += usize;
	}
	return ret;
}

/* Sets the allocator and the calling thread up; NULL if that fails. */
ALWAYS_INLINE tsd_t *
tsd_ready(void) {
	if (unlikely(malloc_init())) {
		return NULL;
	}
	tsd_t *tsd = tsd_get();
	if (unlikely(tsd->state == TSD_STATE_UNINIT)) {
		tsd_setup(tsd);
	}
	return tsd;
}

static void *alloc_tick(size_t size);

/* Every allocation through the thread's own cache that misses the fast
 * path comes here. */
NOINLINE static void *
alloc_slow(size_t size, size_t alignment, bool zero) {
	/* The hit path's one test also sends here a bin that reached a new
	 * low-water mark but still holds objects: pop as alloc_tick does,
	 * without choosing an arena or reading the decay clock. A bin that
	 * other threads' objects keep refilling through frees (cross-thread
	 * traffic) comes here about as often as it runs empty. */
	if (config_tcache && !config_private_heap_only && alignment == 0 && !zero &&
	    size <= SZ_LARGE_MAXCLASS) {
		/* The hit path's bin. It holds objects only in a set-up thread
		 * whose cache caches the class (never under debugging fills,
		 * whose threads get no cache). */
		uintptr_t pc =
		    size <= SZ_LOOKUP_MAXCLASS ? tsd_fs_size2pc(size) : tcache_big_pc(size);
		if (TSD_FS(tcache.head[pc]) != TSD_FS(tcache.empty[pc])) {
			return alloc_tick(size);
		}
	}
	tsd_t *tsd = tsd_ready();
	if (unlikely(tsd == NULL)) {
		alloc_fail(size);
		return NULL;
	}
	void *ret = alloc_impl(tsd, size, alignment, zero, &tsd->tcache, NULL);
	/* Cached classes count GC time per bin (tcache_alloc); the rest
	 * here. */
	if (size > tcache_maxclass && unlikely(--tsd->tcache.gc_ticker < 0)) {
		tcache_gc_step(&tsd->tcache);
	}
	arena_decay_sweep_if_due();
	background_thread_check();
	if (config_prof && unlikely(__atomic_load_n(&prof_dump_pending, __ATOMIC_RELAXED))) {
		prof_dump_pending_run();
	}
	return ret;
}

/* malloc's hit path for `size`, when its bin's tick period ended: the bin
 * holds an object (so the thread is set up); pop it and let the cache run
 * its GC step. Cheaper than alloc_slow: no arena choice, no decay clock. */
NOINLINE static void *
alloc_tick(size_t size) {
	tsd_t *tsd = tsd_get();
	szind_t ind = sz_size2index(size);
	void *ret = tcache_alloc(&tsd->tcache, tsd->arena, ind);
	if (config_prof && unlikely(prof_enabled)) {
		/* A sampled object comes from the arena and may fail. */
		if (unlikely(ret == NULL)) {
			alloc_fail(size);
			return NULL;
		}
		if (unlikely(__atomic_load_n(&prof_dump_pending, __ATOMIC_RELAXED))) {
			prof_dump_pending_run();
		}
	}
	if (config_stats) {
		tsd->allocated += sz_index2size(ind);
	}
	return ret;
}

COLD NOINLINE static void
report_invalid(const char *func, const void *ptr) {
	msg_fatal("%s(): invalid pointer %p (not returned by malloc, or already freed)", func, ptr);
}

/* Size class of the object at ptr, which is not chunk-aligned: in an arena
 * chunk (the registry says so) and where an object starts (the page map);
 * aborts with a report naming func otherwise. */
static szind_t
paged_ind_of(const void *ptr, const char *func) {
	if (unlikely(!arena_chunk_registered_checked(ptr)) && !heap_register_chunk(ptr)) {
		report_invalid(func, ptr);
	}
	unsigned pclass = arena_ptr_pclass(ptr);
	if (config_prof && unlikely(pclass == PCLASS_SAMPLED)) {
		/* The class the program asked for; dalloc_paged knows. */
		szind_t ind;
		prof_sampled_usize(ptr, &ind);
		return ind;
	}
	if (unlikely(pclass == PCLASS_NONE || pclass > SZ_NPAGED)) {
		report_invalid(func, ptr);
	}
	return pclass - 1;
}

/* Size class of a live allocation in the page map (or SZ_NPAGED.. for huge
 * ones), and its usable size; aborts on a pointer that is not one. */
static szind_t
ind_of(const void *ptr, size_t *usize, const char *func) {
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		extent_t *e = huge_lookup(ptr);
		if (unlikely(e == NULL) && (e = heap_adopt_huge(ptr)) == NULL) {
			report_invalid(func, ptr);
		}
		*usize = e->usize;
		return sz_size2index(e->usize);
	}
	szind_t ind = paged_ind_of(ptr, func);
	*usize = sz_index2size(ind);
	if (config_fill && unlikely(opt_redzone) && ind < SZ_NSMALL &&
	    !arena_chunk_in_region(ptr)) {
		*usize -= fill_redzone_lead(ptr, ind, func) + FILL_REDZONE_SIZE;
	}
	return ind;
}

static size_t
usize_of(const void *ptr, const char *func) {
	size_t usize;
	ind_of(ptr, &usize, func);
	return usize;
}

/* Frees ptr, whose class is `ind` (from the page map or a checked size),
 * through cache `tc` (NULL: none). ptr is not huge. */
/* dalloc_paged of a block in a private heap's chunk: no cache, under the
 * heap lock of a shared heap. A damaged shared heap keeps the block. */
NOINLINE static void
dalloc_heap_paged(tsd_t *tsd, void *ptr, szind_t ind) {
	arena_t *a = arena_chunk_of(ptr)->arena;
	if (unlikely(!heap_enter(a))) {
		return;
	}
	arena_dalloc_paged(ptr, ind);
	heap_count_dalloc(a, sz_index2size(ind));
	heap_leave(a);
	if (config_stats) {
		tsd->deallocated += sz_index2size(ind);
	}
}

static void
dalloc_paged(tsd_t *tsd, void *ptr, szind_t ind, tcache_t *tc) {
	if (unlikely(arena_chunk_in_region(ptr))) {
		dalloc_heap_paged(tsd, ptr, ind);
		return;
	}
	if (config_prof && unlikely(prof_paged_is_sampled(ptr))) {
		size_t usize = prof_dalloc_sampled(ptr);
		if (config_stats) {
			tsd->deallocated += usize;
		}
		return;
	}
	if (config_fill && unlikely(fill_slow_paths)) {
		fill_dalloc(tsd, ptr);
		return;
	}
	if (config_stats) {
		tsd->deallocated += sz_index2size(ind);
	}
	if (tc != NULL && tcache_caches(tc, ind)) {
		/* The hit path cannot afford the region check; the slow path
		 * can (uncached frees are checked in arena_dalloc_small). */
		if (ind < SZ_NSMALL) {
			arena_check_small(ptr, ind);
		} else if (unlikely(((uintptr_t)ptr & PAGE_MASK) != 0)) {
			/* Inside the first page of a large block. */
			report_invalid("free", ptr);
		}
		tcache_dalloc(tc, ptr, ind);
	} else {
		/* arena_dalloc_small checks the region boundary and its bitmap. */
		arena_dalloc_paged(ptr, ind);
	}
}

/* `purge`: the old block of a copying reallocation (huge_dalloc). */
static void
dalloc_huge(tsd_t *tsd, void *ptr, bool purge) {
	if (config_prof && unlikely(prof_enabled)) {
		prof_forget_huge(ptr);
	}
	extent_t *e = huge_lookup(ptr);
	if (e == NULL) {
		e = heap_adopt_huge(ptr);
	}
	arena_t *heap = e != NULL && e->arena->region != NULL ? e->arena : NULL;
	if (config_fill && unlikely(fill_slow_paths) && heap == NULL) {
		fill_dalloc(tsd, ptr);
		return;
	}
	if (unlikely(heap != NULL) && !heap_enter(heap)) {
		return;
	}
	size_t usize = huge_dalloc(ptr, purge);
	if (unlikely(heap != NULL)) {
		heap_count_dalloc(heap, usize);
		heap_leave(heap);
	}
	if (config_stats) {
		tsd->deallocated += usize;
	}
}

NOINLINE static void
free_slow(void *ptr) {
	if (ptr == NULL) {
		return;
	}
	tsd_t *tsd = tsd_get();
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		dalloc_huge(tsd, ptr, false);
		return;
	}
	szind_t ind = paged_ind_of(ptr, "free");
	if (unlikely(tsd->state == TSD_STATE_UNINIT)) {
		/* A thread whose first call is free(): set it up, so its
		 * cache gets flushed at exit like any other. */
		tsd_setup(tsd);
	}
	dalloc_paged(tsd, ptr, ind, &tsd->tcache);
	arena_decay_sweep_if_due();
	timeline_tick();
}

/* A block went from usable size old_usize to usize without a copy (in
 * place, or its pages moved): junk or zero the grown bytes as the fill
 * options ask, and count the change in the thread's byte counters. */
static void
ralloc_resized(void *ptr, size_t old_usize, size_t usize, bool zero) {
	if (config_fill && unlikely(fill_slow_paths)) {
		fill_ralloc_grown(ptr, old_usize, usize, zero);
	}
	if (config_stats) {
		tsd_t *tsd = tsd_get();
		tsd->allocated += usize;
		tsd->deallocated += old_usize;
	}
}

/*
 * Resizes ptr in place so its usable size lies in [umin, umax] (usable
 * sizes of classes), preferring the largest. Returns the new usable size, or
 * 0 when that cannot be done without moving. Zeroes grown bytes when asked;
 * under opt.junk junk-fills them, and the bytes a shrink gives back
 * beforehand (a huge shrink that then fails leaves them junk: they are past
 * the size asked for).
 */
static size_t ralloc_in_place_arena(void *ptr, szind_t old_ind, size_t old_usize, size_t umin,
                                    size_t umax, bool zero);

static arena_t *
heap_arena_of(const void *ptr) {
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		extent_t *e = huge_lookup(ptr);
		return e != NULL && e->arena->region != NULL ? e->arena : NULL;
	}
	return arena_chunk_in_region(ptr) ? arena_chunk_of(ptr)->arena : NULL;
}

static size_t
ralloc_in_place(void *ptr, szind_t old_ind, size_t old_usize, size_t umin, size_t umax, bool zero) {
	/* A block that already fits still tries to grow to umax (xallocx's
	 * extra, as the manual says); when it cannot, it stays as it is. */
	bool fits = old_usize >= umin && old_usize <= umax;
	if (fits && (old_usize == umax || sz_is_small(old_ind))) {
		return old_usize;
	}
	arena_t *heap = heap_arena_of(ptr);
	if (likely(heap == NULL)) {
		return ralloc_in_place_arena(ptr, old_ind, old_usize, umin, umax, zero);
	}
	if (!heap_enter(heap)) {
		return 0;
	}
	size_t usize = ralloc_in_place_arena(ptr, old_ind, old_usize, umin, umax, zero);
	if (usize != 0) {
		heap_count_dalloc(heap, old_usize);
		heap_count_alloc(heap, usize);
	}
	heap_leave(heap);
	return usize;
}

static size_t
ralloc_in_place_arena(void *ptr, szind_t old_ind, size_t old_usize, size_t umin, size_t umax,
                      bool zero) {
	bool fits = old_usize >= umin && old_usize <= umax;
	size_t targets[2] = {umax, umin};
	for (unsigned i = 0; i < (fits ? 1u : 2u); i++) {
		size_t usize = targets[i];
		szind_t ind = sz_size2index(usize);
		bool ok = false;
		bool large = sz_is_large(old_ind) && sz_is_large(ind);
		bool huge = sz_is_huge(old_ind) && sz_is_huge(ind);
		if (config_fill && unlikely(fill_slow_paths) && (large || huge)) {
			fill_ralloc_shrinking(ptr, old_usize, usize);
		}
		if (large) {
			ok = arena_ralloc_large_in_place(ptr, old_ind, ind, zero);
		} else if (huge) {
			/* Into cached address space after it, else by growing
			 * its mapping where it is. */
			extent_t *e = huge_lookup(ptr);
			ok = huge_ralloc_in_place(e, usize, zero) ||
			     (usize > e->size && huge_ralloc_extend(e, usize) == PAGES_GREW);
		}
		if (ok) {
			ralloc_resized(ptr, old_usize, usize, zero);
			return usize;
		}
	}
	return fits ? old_usize : 0;
}

/* A large block that a reallocation copies away from, from this size up,
 * is purged at once rather than left dirty (doc/design.md, "Huge
 * reallocation"); below it the madvise would cost more than it saves.
 * With pages above 16 KiB small classes reach past this size (up to 4
 * pages less half a page): those regions go back to their bin as usual,
 * the test below is on the class, not only the size. */
#define RALLOC_PURGE_MIN ((size_t)64 << 10)

/*
 * The moving resize shared by realloc and rallocx: in place when the
 * classes allow, else allocate, copy, free. ptr is live and non-NULL.
 */
static void *
ralloc_impl(tsd_t *tsd, void *ptr, size_t size, size_t alignment, bool zero, tcache_t *tc,
            arena_t *arena, const char *func) {
	size_t old_usize;
	szind_t old_ind = ind_of(ptr, &old_usize, func);
	size_t usize = usize_for_block(ptr, size, alignment);
	if (unlikely(usize == 0)) {
		alloc_fail(size);
		return NULL;
	}
	/* A block of a private heap moves only within its heap. */
	arena_t *heap = heap_arena_of(ptr);
	if (unlikely(heap != NULL)) {
		arena = heap;
		tc = NULL;
	}
	/* A sampled paged object is resized only by moving (its page is
	 * marked and its run may be a promoted one), unless its class stays;
	 * a sampled huge one resizes like any other and its record follows
	 * (prof_huge_resized). */
	bool sampled = config_prof && unlikely(prof_enabled) && prof_is_sampled(ptr);
	bool move_only = sampled && !sz_is_huge(old_ind);
	if (move_only && usize == old_usize &&
	    (alignment <= 1 || ((uintptr_t)ptr & (alignment - 1)) == 0)) {
		return ptr;
	}
	if (!move_only && (alignment <= 1 || ((uintptr_t)ptr & (alignment - 1)) == 0)) {
		size_t got = ralloc_in_place(ptr, old_ind, old_usize, usize, usize, zero);
		if (got != 0) {
			if (sampled) {
				prof_huge_resized(ptr, ptr, got);
			}
			return ptr;
		}
	}
	if (!move_only && sz_is_huge(old_ind) && usize > old_usize) {
		/* Move the pages rather than the bytes (huge_ralloc_remap). */
		extent_t *e = huge_lookup(ptr);
		if (arena == NULL || arena == e->arena) {
			void *ret = huge_ralloc_remap(e, usize, alignment);
			if (ret != NULL) {
				if (sampled) {
					prof_huge_resized(ptr, ret, usize);
				}
				ralloc_resized(ret, old_usize, usize, zero);
				return ret;
			}
		}
	}
	/* Above a page, the new block comes from the arena and the old one
	 * goes back there, not through the thread's own cache: a growing or
	 * shrinking block walks through classes the program is leaving, which
	 * the cache would hoard, pinning their runs. Smaller blocks stay with
	 * the cache, where a chain of small reallocations is 3 times as fast
	 * (doc/design.md, "Huge reallocation"). An explicit cache
	 * (MALLOCX_TCACHE) is still used. */
	if (tc == &tsd->tcache && (usize > PAGE || old_usize > PAGE)) {
		tc = NULL;
	}
	void *ret = alloc_impl(tsd, size, alignment, zero, tc, arena);
	if (unlikely(ret == NULL)) {
		return NULL;
	}
	memcpy(ret, ptr, old_usize < usize ? old_usize : usize);
	if (sz_is_huge(old_ind)) {
		dalloc_huge(tsd, ptr, true);
	} else if (sz_is_large(old_ind) && old_usize >= RALLOC_PURGE_MIN && heap == NULL &&
	           !(config_fill && unlikely(fill_slow_paths)) && !sampled) {
		if (config_stats) {
			tsd->deallocated += old_usize;
		}
		arena_dalloc_large_purged(ptr, old_ind);
	} else {
		dalloc_paged(tsd, ptr, old_ind, tc);
	}
	return ret;
}

/* ---------------------------------------------------------------------- */
/* For private heaps (heap.h). */

bool
alloc_ready(void) {
	return tsd_ready() != NULL;
}

void *
alloc_arena_malloc(arena_t *arena, size_t size, size_t alignment, bool zero) {
	tsd_t *tsd = tsd_ready();
	if (unlikely(tsd == NULL)) {
		alloc_fail(size);
		return NULL;
	}
	return alloc_impl(tsd, size, alignment, zero, NULL, arena);
}

void *
alloc_arena_realloc(arena_t *arena, void *ptr, size_t size) {
	tsd_t *tsd = tsd_ready();
	if (unlikely(tsd == NULL)) {
		alloc_fail(size);
		return NULL;
	}
	return ralloc_impl(tsd, ptr, size, 0, false, NULL, arena, "alloc_heap_realloc");
}

void
alloc_arena_free(void *ptr) {
	free_slow(ptr);
}

/* ---------------------------------------------------------------------- */
/* Fast paths. */

/*
 * The hit paths. They reach the thread's state through TSD_FS (see tsd.h)
 * rather than a pointer, so the compiler uses %fs-relative operands instead
 * of materialising the address. No branch on them depends on the size
 * class (doc/design.md, "The hit path").
 */

/* malloc's hit path for `size`, whose bin is pc. */
ALWAYS_INLINE void *
malloc_pop(size_t size, uintptr_t pc) {
	void **head = TSD_FS(tcache.head[pc]);
	/* One test for "empty", "new low-water mark" and "not set up". */
	if (unlikely(head == TSD_FS(tcache.low_water[pc]))) {
		return alloc_slow(size, 0, false);
	}
	/* The tick counts the request and times GC (tcache.h). */
	if (unlikely(tsd_fs_tick(pc))) {
		return alloc_tick(size);
	}
	tsd_fs_head_move(pc, 1);
	if (config_stats) {
		TSD_FS(allocated) += TSD_FS(tcache.usize[pc]);
	}
	void *ret = *head;
	/* Out of the cache: no longer marked as freed (tcache.h). */
	*tcache_key_slot(ret) = 0;
	return ret;
}

/* Written out twice (malloc_pop inlined in each branch): joined, GCC 12
 * loads the thread-state offset again after the join, one instruction
 * more for the small sizes, which read their bin %fs-relative. */
ALWAYS_INLINE void *
malloc_fast(size_t size) {
	if (!config_tcache) {
		return alloc_slow(size, 0, false);
	}
	if (likely(size <= SZ_LOOKUP_MAXCLASS)) {
		return malloc_pop(size, tsd_fs_size2pc(size));
	}
	if (likely(size <= SZ_LARGE_MAXCLASS)) {
		return malloc_pop(size, tcache_big_pc(size));
	}
	return alloc_slow(size, 0, false);
}

static void sdallocx_slow(void *ptr, size_t size, int flags);

/*
 * Where free's hit path goes when it misses: free_slow, or for sdallocx
 * (`sized`, a compile-time constant in each caller) its checked path, which
 * also compares the size with the block's.
 */
ALWAYS_INLINE void
free_miss(void *ptr, size_t size, bool sized) {
	if (sized) {
		sdallocx_slow(ptr, size, 0);
	} else {
		free_slow(ptr);
	}
}

/*
 * The bin sdallocx's size names (malloc's bin for it): 0, which no block's
 * page-map byte equals on the hit path, for sizes malloc's hit path does
 * not serve (0, huge). 0 too on a thread not set up (its size2pc is zeros).
 */
ALWAYS_INLINE uintptr_t
sdallocx_size2pc(size_t size) {
	if (likely(size - 1 < SZ_LOOKUP_MAXCLASS)) {
		return tsd_fs_size2pc(size);
	}
	/* size 0 fails here too (size - 1 wraps). */
	if (likely(size - 1 < SZ_LARGE_MAXCLASS)) {
		return tcache_big_pc(size);
	}
	return 0;
}

/*
 * free's hit path when bin pc is full (or zeroed: head == full). The hit
 * path has made every test of the slow path already: ptr is in an arena
 * chunk (the registry), where an object of the class starts (page map and
 * region start), and for sdallocx its size names this bin. So a bin that
 * caches the class, i.e. a live cache of a set-up thread, flushes from
 * here without the checked path (sdallocx_slow or free_slow, ind_of,
 * dalloc_paged); tcache_dalloc still looks for a double free when the
 * object holds the key. A zeroed bin (no cache: a thread not set up,
 * debugging fills, a sampled object's class) takes the slow path.
 */
NOINLINE static void
free_full(void *ptr, uintptr_t pc, size_t size, bool sized) {
	tsd_t *tsd = tsd_get();
	if (unlikely(tsd->tcache.ncached_max[pc] == 0)) {
		free_miss(ptr, size, sized);
		return;
	}
	if (config_stats) {
		tsd->deallocated += tsd->tcache.usize[pc];
	}
	tcache_dalloc(&tsd->tcache, ptr, (szind_t)pc - 1);
	if (!sized) {
		/* What free_slow does after freeing. */
		arena_decay_sweep_if_due();
		timeline_tick();
	}
}

/*
 * The second half of free's hit path: ptr starts an object of bin pc's
 * class. Full bins go to free_full, objects that hold the key already (a
 * double free, or data that matches the secret: tcache.h) to the slow path
 * (free_miss).
 */
ALWAYS_INLINE void
free_push(void *ptr, uintptr_t pc, size_t size, bool sized) {
	void **head = TSD_FS(tcache.head[pc]);
	uintptr_t key = tsd_fs_key();
	if (unlikely(head == TSD_FS(tcache.full[pc]))) {
		free_full(ptr, pc, size, sized);
		return;
	}
	if (unlikely(*tcache_key_slot(ptr) == key)) {
		free_miss(ptr, size, sized);
		return;
	}
	*tcache_key_slot(ptr) = key;
	head[-1] = ptr;
	tsd_fs_head_move(pc, -1);
	if (config_stats) {
		TSD_FS(deallocated) += TSD_FS(tcache.usize[pc]);
	}
}

/*
 * The part of free's hit path for a pointer that fails the alignment mask
 * (tcache.h): in a small class whose size is not a power of two (mask all
 * ones) it may still start a region, which the run offset says
 * (arena_region_start); anything else goes to the slow path, which reports
 * it. Inlined, so the compiler lays it out of line with its own copy of
 * free_push rather than joining the hit path again (which costs the hit
 * path a reload of the thread-state offset).
 */
ALWAYS_INLINE void
free_unaligned(void *ptr, uintptr_t pc, const arena_chunk_t *chunk, uintptr_t pageind, size_t size,
               bool sized) {
	/* Pages above 4 KiB: runs outgrow the 32-bit magic's range
	 * (arena.h), so the offset is divided; magic 0 still rejects. */
	bool start = TSD_FS(tcache.region_magic[pc]) != 0 &&
	             arena_region_offset(chunk, pageind, ptr) % sz_index2size((szind_t)pc - 1) == 0;
	if (unlikely(!start)) {
		free_miss(ptr, size, sized);
		return;
	}
	free_push(ptr, pc, size, sized);
}

/* free's hit path; `sized` (a constant in each caller): sdallocx's, which
 * takes the hit path only when `size` names the block's bin. */
ALWAYS_INLINE void
free_fast_impl(void *ptr, size_t size, bool sized) {
	if (!config_tcache || config_debug) {
		/* Debug builds check every free in full on the slow path. */
		free_miss(ptr, size, sized);
		return;
	}
	/* Not an arena chunk (a huge block, a private heap's block, or a
	 * pointer liballoc never returned, maybe unmapped): the slow path
	 * sorts it out. This is arena_chunk_cacheable and arena_ptr_pclass
	 * with one shift shared: the chunk header's address is the registry
	 * slot shifted back. */
	uintptr_t page = (uintptr_t)ptr >> LG_PAGE;
	/* Keeps GCC from deriving slot and the header from ptr afresh (two
	 * more instructions). */
	__asm__("" : "+r"(page));
	uintptr_t slot = page >> (LG_CHUNK - LG_PAGE);
	if (unlikely(arena_chunk_registry[slot] != ARENA_REGISTRY_ARENA)) {
		free_miss(ptr, size, sized);
		return;
	}
	if (sizeof(arena_pbias_t) == 1) {
		/* The page-map byte indexes the bins directly (class + 1;
		 * slot 0, "no object here", always misses), read with the
		 * page's bias off one multiply of the slot (arena_page_hdr). */
		uintptr_t hdr = arena_page_hdr(slot);
		uintptr_t pc = arena_page_hdr_pclass(hdr, page);
		if (sized && unlikely(pc != sdallocx_size2pc(size))) {
			sdallocx_slow(ptr, size, 0);
			return;
		}
		/* One test for every class, so that its branch does not
		 * depend on the class (tcache.h): not where an object of
		 * the class starts (an interior pointer, or a bin that
		 * always misses). */
		if (unlikely(!tsd_fs_region_start8(hdr, page, ptr, pc))) {
			free_miss(ptr, size, sized);
			return;
		}
		free_push(ptr, pc, size, sized);
		return;
	}
	/* The page-map byte indexes the bins directly (class + 1; slot 0,
	 * "no object here", always misses). */
	const arena_chunk_t *chunk = (const arena_chunk_t *)(slot << LG_CHUNK);
	/* Shifts slot in place (GCC copies it first: one more instruction). */
	__asm__("" : "+r"(chunk));
	uintptr_t pageind = page & (CHUNK_NPAGES - 1);
	uintptr_t pc = arena_pclass_get(chunk, pageind);
	if (sized && unlikely(pc != sdallocx_size2pc(size))) {
		sdallocx_slow(ptr, size, 0);
		return;
	}
	/* Not where an object of the class can start (an interior pointer),
	 * or a class whose regions need the run offset (tcache.h). */
	if (unlikely(tsd_fs_misaligned(ptr, pc))) {
		free_unaligned(ptr, pc, chunk, pageind, size, sized);
		return;
	}
	free_push(ptr, pc, size, sized);
}

/* free's hit path. */
ALWAYS_INLINE void
free_fast(void *ptr) {
	free_fast_impl(ptr, 0, false);
}

/* ---------------------------------------------------------------------- */
/* The standard API. */

ALLOC_EXPORT void *
ALLOC_NAME(malloc)(size_t size) {
	return malloc_fast(size);
}

ALLOC_EXPORT void
ALLOC_NAME(free)(void *ptr) {
	free_fast(ptr);
}

ALLOC_EXPORT void *
ALLOC_NAME(calloc)(size_t num, size_t size) {
	size_t total;
	if (unlikely(__builtin_mul_overflow(num, size, &total))) {
		alloc_fail(SIZE_MAX);
		return NULL;
	}
	return alloc_slow(total, 0, true);
}

int opt_zero_realloc = ZERO_REALLOC_FREE;
size_t alloc_zero_reallocs;

/* realloc(ptr, 0), ptr non-NULL, per opt.zero_realloc. */
COLD NOINLINE static void *
realloc_zero(void *ptr) {
	if (config_stats) {
		__atomic_fetch_add(&alloc_zero_reallocs, 1, __ATOMIC_RELAXED);
	}
	switch (opt_zero_realloc) {
	case ZERO_REALLOC_ALLOC: {
		/* A zero-size allocation is one of the smallest class, as
		 * malloc(0) gives. */
		tsd_t *tsd = tsd_ready();
		if (unlikely(tsd == NULL)) {
			alloc_fail(1);
			return NULL;
		}
		return ralloc_impl(tsd, ptr, 1, 0, false, &tsd->tcache, NULL, "realloc");
	}
	case ZERO_REALLOC_ABORT:
		msg_fatal("realloc(%p, 0) under opt.zero_realloc:abort", ptr);
	default:
		/* glibc's behaviour, which programs rely on: free, return NULL. */
		free_fast(ptr);
		return NULL;
	}
}

/* realloc's hit path covers blocks and sizes up to this: those ralloc_impl
 * moves through the thread's cache, and that malloc's hit path finds the
 * bin of by one table load. */
#define RALLOC_FAST_MAX (PAGE < SZ_LOOKUP_MAXCLASS ? PAGE : SZ_LOOKUP_MAXCLASS)
_Static_assert(SZ_SMALL_MAXCLASS >= PAGE, "blocks of at most a page are small");

/*
 * The bin of ptr when realloc's hit path may resize it to `size`: ptr in
 * an arena chunk (not a private heap's, not huge; NULL is not) where the
 * page map has a small class of at most RALLOC_FAST_MAX (not a sampled
 * object's page), size in 1..RALLOC_FAST_MAX, no debugging fills (their
 * usable sizes are not the class sizes). 0 otherwise.
 */
ALWAYS_INLINE uintptr_t
ralloc_fast_pc(const void *ptr, size_t size) {
	if (!config_tcache || config_debug || (config_fill && unlikely(fill_slow_paths)) ||
	    size - 1 >= RALLOC_FAST_MAX || !arena_chunk_cacheable(ptr)) {
		return 0;
	}
	uintptr_t pc = arena_ptr_pclass(ptr);
	if (pc - 1 >= SZ_NSMALL || sz_index2size((szind_t)pc - 1) > RALLOC_FAST_MAX) {
		return 0;
	}
	return pc;
}

/*
 * realloc's hit path, for the blocks ralloc_fast_pc accepts: the same class
 * keeps the block (ralloc_in_place's answer for a small one); another
 * moves it through malloc's and free's hit paths (whose misses take their
 * slow paths) instead of ralloc_impl's lookups. What it does is what
 * ralloc_impl does for these blocks: allocate from the thread's cache,
 * copy, free into it. old_pc: ralloc_fast_pc's answer; pc: size's bin.
 */
ALWAYS_INLINE void *
ralloc_fast(void *ptr, size_t size, uintptr_t old_pc, uintptr_t pc) {
	if (pc == old_pc) {
		return ptr;
	}
	void *ret = malloc_pop(size, pc);
	if (unlikely(ret == NULL)) {
		return NULL;
	}
	size_t old_usize = sz_index2size((szind_t)old_pc - 1);
	size_t usize = sz_index2size((szind_t)pc - 1);
	memcpy(ret, ptr, old_usize < usize ? old_usize : usize);
	free_fast(ptr);
	return ret;
}

ALLOC_EXPORT void *
ALLOC_NAME(realloc)(void *ptr, size_t size) {
	uintptr_t old_pc = ralloc_fast_pc(ptr, size);
	if (likely(old_pc != 0)) {
		uintptr_t pc = tsd_fs_size2pc(size);
		/* 0: the thread is not set up (its table is zeros). */
		if (likely(pc != 0)) {
			return ralloc_fast(ptr, size, old_pc, pc);
		}
	}
	if (ptr == NULL) {
		return alloc_slow(size, 0, false);
	}
	if (size == 0) {
		return realloc_zero(ptr);
	}
	tsd_t *tsd = tsd_ready();
	if (unlikely(tsd == NULL)) {
		alloc_fail(size);
		return NULL;
	}
	return ralloc_impl(tsd, ptr, size, 0, false, &tsd->tcache, NULL, "realloc");
}

ALLOC_EXPORT void *
ALLOC_NAME(reallocarray)(void *ptr, size_t num, size_t size) {
	size_t total;
	if (unlikely(__builtin_mul_overflow(num, size, &total))) {
		alloc_fail(SIZE_MAX);
		return NULL;
	}
	return ALLOC_NAME(realloc)(ptr, total);
}

ALLOC_EXPORT int
ALLOC_NAME(posix_memalign)(void **memptr, size_t alignment, size_t size) {
	if (unlikely(!is_pow2(alignment) || alignment < sizeof(void *))) {
		return EINVAL;
	}
	int saved_errno = errno;
	void *ret = alloc_slow(size, alignment, false);
	errno = saved_errno;
	if (unlikely(ret == NULL)) {
		return ENOMEM;
	}
	*memptr = ret;
	return 0;
}

ALLOC_EXPORT void *
ALLOC_NAME(aligned_alloc)(size_t alignment, size_t size) {
	/* C17 (DR 460) and glibc 2.38+: an alignment the implementation does
	 * not support fails; only powers of two are supported. */
	if (unlikely(!is_pow2(alignment))) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_slow(size, alignment, false);
}

ALLOC_EXPORT void *
ALLOC_NAME(memalign)(size_t alignment, size_t size) {
	/* glibc's contract: a non-power-of-two alignment is rounded up, one
	 * too large for that fails with EINVAL. */
	if (unlikely(alignment > ((size_t)1 << (sizeof(size_t) * 8 - 1)))) {
		errno = EINVAL;
		return NULL;
	}
	if (!is_pow2(alignment)) {
		alignment = alignment == 0 ? 1 : pow2_ceil(alignment);
	}
	return alloc_slow(size, alignment, false);
}

ALLOC_EXPORT void *
ALLOC_NAME(valloc)(size_t size) {
	return alloc_slow(size, PAGE, false);
}

ALLOC_EXPORT void *
ALLOC_NAME(pvalloc)(size_t size) {
	size_t rounded = ALIGN_UP(size, PAGE);
	if (unlikely(rounded < size)) {
		alloc_fail(size);
		return NULL;
	}
	return alloc_slow(rounded == 0 ? PAGE : rounded, PAGE, false);
}

ALLOC_EXPORT size_t
ALLOC_NAME(malloc_usable_size)(const void *ptr) {
	if (ptr == NULL) {
		return 0;
	}
	return usize_of(ptr, "malloc_usable_size");
}

/* ---------------------------------------------------------------------- */
/* jemalloc's extended API. */

typedef struct {
	size_t alignment;
	bool zero;
	/* Cache to go through (NULL: none). */
	tcache_t *tc;
	/* Arena to allocate from (NULL: the thread's). */
	arena_t *arena;
} flags_t;

/* Decodes flags; returns false when they name a cache or arena that does
 * not exist. With MALLOCX_ARENA and no MALLOCX_TCACHE, the thread's cache
 * is bypassed, so the memory really comes from the arena asked for. */
static bool
flags_decode(tsd_t *tsd, int flags, flags_t *out) {
	out->alignment = flags_alignment(flags);
	out->zero = (flags & FLAGS_ZERO) != 0;
	unsigned a = (unsigned)flags >> FLAGS_ARENA_SHIFT;
	out->arena = NULL;
	if (a != 0) {
		if (a - 1 >= __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE)) {
			return false;
		}
		out->arena = arena_get(a - 1);
		if (out->arena == NULL) {
			return false;
		}
	}
	unsigned t = ((unsigned)flags >> FLAGS_TCACHE_SHIFT) & FLAGS_TCACHE_MASK;
	if (t == 0) {
		out->tc = out->arena == NULL ? &tsd->tcache : NULL;
	} else if (t == 1) {
		out->tc = NULL;
	} else {
		out->tc = tcaches_get(t - 2);
		if (out->tc == NULL) {
			return false;
		}
	}
	return true;
}

ALLOC_EXPORT void *
ALLOC_NAME(mallocx)(size_t size, int flags) {
	if (likely(flags == 0)) {
		return malloc_fast(size);
	}
	tsd_t *tsd = tsd_ready();
	flags_t f;
	if (unlikely(tsd == NULL || !flags_decode(tsd, flags, &f))) {
		return NULL;
	}
	return alloc_impl(tsd, size, f.alignment, f.zero, f.tc, f.arena);
}

ALLOC_EXPORT void *
ALLOC_NAME(rallocx)(void *ptr, size_t size, int flags) {
	tsd_t *tsd = tsd_ready();
	flags_t f;
	if (unlikely(tsd == NULL || !flags_decode(tsd, flags, &f))) {
		return NULL;
	}
	if (unlikely(ptr == NULL)) {
		return alloc_impl(tsd, size, f.alignment, f.zero, f.tc, f.arena);
	}
	return ralloc_impl(tsd, ptr, size, f.alignment, f.zero, f.tc, f.arena, "rallocx");
}

ALLOC_EXPORT size_t
ALLOC_NAME(xallocx)(void *ptr, size_t size, size_t extra, int flags) {
	size_t old_usize;
	szind_t old_ind = ind_of(ptr, &old_usize, "xallocx");
	size_t alignment = flags_alignment(flags);
	if (alignment > 1 && ((uintptr_t)ptr & (alignment - 1)) != 0) {
		return old_usize;
	}
	size_t max = size + extra < size ? SIZE_MAX : size + extra;
	size_t umin = usize_for_block(ptr, size, alignment);
	size_t umax = usize_for_block(ptr, max, alignment);
	if (umin == 0) {
		return old_usize;
	}
	if (umax == 0) {
		umax = SZ_HUGE_MAXCLASS;
	}
	bool sampled = config_prof && unlikely(prof_enabled) && prof_is_sampled(ptr);
	if (sampled && !sz_is_huge(old_ind)) {
		/* Sampled paged objects never resize in place (ralloc_impl). */
		return old_usize;
	}
	size_t usize =
	    ralloc_in_place(ptr, old_ind, old_usize, umin, umax, (flags & FLAGS_ZERO) != 0);
	if (sampled && usize != 0) {
		prof_huge_resized(ptr, ptr, usize);
	}
	return usize != 0 ? usize : old_usize;
}

ALLOC_EXPORT size_t
ALLOC_NAME(sallocx)(const void *ptr, int flags) {
	(void)flags;
	return usize_of(ptr, "sallocx");
}

ALLOC_EXPORT void
ALLOC_NAME(dallocx)(void *ptr, int flags) {
	if (likely(flags == 0)) {
		free_fast(ptr);
		return;
	}
	tsd_t *tsd = tsd_get();
	flags_t f;
	if (unlikely(ptr == NULL)) {
		return;
	}
	if (unlikely(!flags_decode(tsd, flags, &f))) {
		msg_fatal("dallocx(): flags %#x name no live thread cache or arena", flags);
	}
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		dalloc_huge(tsd, ptr, false);
		return;
	}
	size_t usize;
	szind_t ind = ind_of(ptr, &usize, "dallocx");
	dalloc_paged(tsd, ptr, ind, f.tc);
}

COLD NOINLINE static void
report_size_mismatch(const void *ptr, size_t size, size_t usize) {
	msg_fatal("sdallocx(): size %zu does not match the allocation at %p (usable size %zu)",
	          size, ptr, usize);
}

/* sdallocx in full: flags, a NULL pointer, the size check that fails or
 * that free's hit path could not make, huge blocks, and the hit path's
 * misses. */
NOINLINE static void
sdallocx_slow(void *ptr, size_t size, int flags) {
	tsd_t *tsd = tsd_get();
	flags_t f = {0, false, &tsd->tcache, NULL};
	if (unlikely(flags != 0 && !flags_decode(tsd, flags, &f))) {
		msg_fatal("sdallocx(): flags %#x name no live thread cache or arena", flags);
	}
	if (unlikely(ptr == NULL)) {
		return;
	}
	size_t expect = usize_for_block(ptr, size, f.alignment);
	size_t usize;
	szind_t ind = ind_of(ptr, &usize, "sdallocx");
	/* The size costs one compare to check: a mismatch means the
	 * program's idea of its memory is wrong, and freeing under the wrong
	 * class would corrupt the heap. */
	if (unlikely(expect != usize)) {
		report_size_mismatch(ptr, size, usize);
	}
	if (sz_is_huge(ind)) {
		dalloc_huge(tsd, ptr, false);
		return;
	}
	dalloc_paged(tsd, ptr, ind, f.tc);
}

/* Without flags, free's hit path with one more compare: the size's bin
 * against the block's (doc/design.md, "sdallocx"). */
ALLOC_EXPORT void
ALLOC_NAME(sdallocx)(void *ptr, size_t size, int flags) {
	if (likely(flags == 0)) {
		free_fast_impl(ptr, size, true);
		return;
	}
	sdallocx_slow(ptr, size, flags);
}

ALLOC_EXPORT size_t
ALLOC_NAME(nallocx)(size_t size, int flags) {
	if (unlikely(malloc_init())) {
		return 0;
	}
	return usize_for(size, flags_alignment(flags));
}

#if !ALLOC_PREFIXED
#if defined(__GNUC__) && !defined(__clang__)
/* The aliases need not repeat the attributes glibc's header puts on the
 * standard names. */
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif
/* glibc's internal names, used by some programs and libraries to reach the
 * C library's allocator directly; they must reach liballoc too, or blocks
 * would cross allocators. */
ALLOC_EXPORT void *__libc_malloc(size_t size) __attribute__((alias("malloc")));
ALLOC_EXPORT void *__libc_calloc(size_t num, size_t size) __attribute__((alias("calloc")));
ALLOC_EXPORT void *__libc_realloc(void *ptr, size_t size) __attribute__((alias("realloc")));
ALLOC_EXPORT void __libc_free(void *ptr) __attribute__((alias("free")));
ALLOC_EXPORT void *__libc_memalign(size_t alignment, size_t size)
    __attribute__((alias("memalign")));
ALLOC_EXPORT void *__libc_valloc(size_t size) __attribute__((alias("valloc")));
ALLOC_EXPORT void *__libc_pvalloc(size_t size) __attribute__((alias("pvalloc")));
ALLOC_EXPORT int __posix_memalign(void **memptr, size_t alignment, size_t size)
    __attribute__((alias("posix_memalign")));
#endif

/* ---------------------------------------------------------------------- */
/* Fork: every lock is taken before fork() so that no other thread holds
 * one at the moment the child is created; both sides then release them
 * (the child by re-creating them). Order as in mutex.h. */

static void
alloc_prefork(void) {
	if (!__atomic_load_n(&malloc_initialized, __ATOMIC_ACQUIRE)) {
		return;
	}
	background_thread_prefork();
	timeline_prefork();
	mutex_prefork(&init_lock);
	ctl_prefork();
	tcache_prefork();
	heap_prefork();
	arena_prefork();
	huge_prefork();
	prof_prefork();
	base_prefork();
}

static void
alloc_postfork_parent(void) {
	if (!__atomic_load_n(&malloc_initialized, __ATOMIC_ACQUIRE)) {
		return;
	}
	base_postfork_parent();
	prof_postfork_parent();
	huge_postfork_parent();
	arena_postfork_parent();
	heap_postfork();
	tcache_postfork_parent();
	ctl_postfork_parent();
	mutex_postfork_parent(&init_lock);
	timeline_postfork_parent();
	background_thread_postfork_parent();
}

static void
alloc_postfork_child(void) {
	if (!__atomic_load_n(&malloc_initialized, __ATOMIC_ACQUIRE)) {
		return;
	}
	base_postfork_child();
	prof_postfork_child();
	huge_postfork_child();
	arena_postfork_child();
	heap_postfork();
	tcache_postfork_child();
	tsd_postfork_child();
	ctl_postfork_child();
	mutex_postfork_child(&init_lock);
	timeline_postfork_child();
	background_thread_postfork_child();
}
