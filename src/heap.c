/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Private heaps (heap.h, doc/heap.md): the alloc_heap_* API. A heap is an
 * arena placed in the caller's region; this file lays the region out, sets
 * the arena up there, installs it in a slot of arenas[], and implements the
 * heap lock of shared heaps with its recovery after a process died holding
 * it. Allocation itself is the arena's (through alloc.c, with no thread
 * cache).
 *
 * Region layout (low to high addresses; doc/heap.md has the figures):
 *   base        the header: alloc_heap_t (magic, layout fingerprint, the
 *               heap lock, counters, the arena_region_t and the arena_t
 *               itself), then the extent nodes of the arena's chunk cache
 *               (2 per chunk + 2); or, when the room before the first
 *               chunk boundary is too small for it, only a stub (magic,
 *               fingerprint, the header's address) and the header goes to
 *               the tail
 *               run-descriptor blocks of the first chunks (as many fit)
 *   chunks      the region's chunk-aligned middle: the arena's chunks
 *   tail        (the header,) run-descriptor blocks of the other chunks
 * Bytes before `chunks` not used by the header and descriptor blocks, and
 * after the tail's blocks, are lost to alignment.
 */
#include "alloc/internal/heap.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

#include "alloc/internal/arena_validate.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/message.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/tsd.h"

/* Magic numbers: a heap's header (one value per kind, so the hit paths
 * test validity and kind at once), and a stub at base pointing to a header
 * in the region's tail. */
#define HEAP_MAGIC        UINT64_C(0x4845415061686c61)
#define HEAP_MAGIC_SHARED UINT64_C(0x4845415061686c62)
#define HEAP_MAGIC_STUB   UINT64_C(0x4845415061686c63)

/* Free regions a heap's cache keeps per small class; fills and flushes
 * move half of that. */
#define HEAP_CACHE_SLOTS 32
/* The sentinel above a stack's last slot (no block has this address). */
#define HEAP_CACHE_FULL ((void *)1)

/* What attach finds at a heap's base: the start of the header, or a stub
 * pointing to it. */
typedef struct {
	/* HEAP_MAGIC (or _SHARED for a shared heap, _STUB for a stub) while
	 * the heap lives; 0 before it is set up and after destroy. Written
	 * last at create, first at destroy. */
	uint64_t magic;
	/* Fingerprint of the build's layout constants (heap_fingerprint):
	 * attach refuses a heap made by an incompatible build. */
	uint64_t fingerprint;
	/* The header. */
	alloc_heap_t *heap;
} heap_stub_t;

struct alloc_heap_s {
	/* The header's own stub: heap == this header. */
	heap_stub_t stub;
	char *base;
	size_t size;
	unsigned flags;
	/* A process died holding the heap lock and the heap failed
	 * validation: every call refuses it (ENOTRECOVERABLE). */
	bool damaged;
	/* Shared heaps: robust, process-shared; held around every arena call
	 * for the heap (heap.h). Unused otherwise. */
	pthread_mutex_t lock;
	/* Usable bytes of live blocks, their highest value since create or
	 * the last reset, and the number of live blocks (atomic). */
	size_t allocated;
	size_t high_water;
	size_t nblocks;
	/* Bytes the heap's blocks can use (chunks minus chunk headers). */
	size_t usable;
	/*
	 * The heap's cache (heaps without ALLOC_HEAP_SHARED only): per small
	 * class a stack of free regions in front of the arena's bins, used by
	 * alloc_heap_malloc and alloc_heap_free, which then take no mutex: a
	 * spin lock (cache_lock, 0 or 1) guards the stacks for the few
	 * instructions of a push or pop. The arena counts cached regions as
	 * allocated (as it does those in thread caches); the heap's own
	 * counters above do not. It lives in the region and reset empties it,
	 * so no block of the heap is cached outside it. Lock order: before
	 * the arena's bin locks (a fill or flush runs under it); shared heaps
	 * have no cache: a process dying with a spin lock held would wedge
	 * the others.
	 */
	int cache_lock;
	/* Stack of class ind: cache[ind][1..], its top at top[ind]; slot 0
	 * holds NULL and the slot past the last HEAP_CACHE_FULL, so popping
	 * tests the popped value for NULL (empty) and pushing tests the next
	 * slot for HEAP_CACHE_FULL (full), with no count to keep; the top can
	 * be compared with a freed pointer (a double free) even when the
	 * stack is empty. */
	void **top[SZ_NSMALL];
	void *cache[SZ_NSMALL][HEAP_CACHE_SLOTS + 2];
	arena_region_t region;
	arena_t arena;
};

/* Run-descriptor slot bytes: the most any bin needs per page of its runs,
 * rounded up to 8 (run_t's alignment). */
static size_t
heap_desc_slot(void) {
	size_t slot = 0;
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		size_t pages = bin_infos[i].run_size >> LG_PAGE;
		size_t need = (bin_infos[i].run_desc_size + pages - 1) / pages;
		if (need > slot) {
			slot = need;
		}
	}
	return ALIGN_UP(slot, 8);
}

static uint64_t
heap_fingerprint(void) {
	uint64_t parts[] = {sizeof(alloc_heap_t),
	                    sizeof(arena_t),
	                    sizeof(extent_t),
	                    sizeof(run_t),
	                    CHUNK,
	                    PAGE,
	                    SZ_NSMALL,
	                    heap_desc_slot()};
	uint64_t h = UINT64_C(1469598103934665603);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		h = (h ^ parts[i]) * UINT64_C(1099511628211);
	}
	return h;
}

/* Extent nodes a heap of n chunks may need: cached spans (at most one per
 * two chunks plus one) and huge blocks (at most one per chunk). */
static size_t
heap_nextents(size_t nchunks) {
	return 2 * nchunks + 2;
}

static size_t
heap_header_size(size_t nchunks) {
	return ALIGN_UP(sizeof(alloc_heap_t) + heap_nextents(nchunks) * sizeof(extent_t),
	                CACHELINE);
}

/* Where a heap's parts go in its region. */
typedef struct {
	alloc_heap_t *heap;
	arena_region_t region;
} heap_layout_t;

/*
 * Places the header, the chunks and the descriptor blocks in [base,
 * base+size): the most chunks for which the header fits before the first
 * chunk (or, with a stub at base, after the last one) and every chunk's
 * descriptor block fits in the space left before and after the chunks.
 * Returns false when not even one chunk fits.
 */
static bool
heap_layout(char *base, size_t size, heap_layout_t *out) {
	char *end = base + size;
	size_t block = CHUNK_NPAGES * heap_desc_slot();
	for (size_t n = size / CHUNK; n >= 1; n--) {
		size_t hdr = heap_header_size(n);
		for (int in_tail = 0; in_tail < 2; in_tail++) {
			size_t before = in_tail ? ALIGN_UP(sizeof(heap_stub_t), CACHELINE) : hdr;
			size_t after = in_tail ? hdr : 0;
			char *chunks = (char *)ALIGN_UP((uintptr_t)base + before, CHUNK);
			if (chunks < base || (size_t)(end - chunks) / CHUNK < n) {
				continue;
			}
			char *tail = chunks + n * CHUNK;
			if ((size_t)(end - tail) < after) {
				continue;
			}
			size_t head = (size_t)(chunks - base) - before;
			size_t nhead = head / block < n ? head / block : n;
			if (nhead + (size_t)(end - tail - after) / block < n) {
				continue;
			}
			out->heap = (alloc_heap_t *)(in_tail ? tail : base);
			out->region.chunks = chunks;
			out->region.nchunks = n;
			out->region.desc_head = base + before;
			out->region.ndesc_head = nhead;
			out->region.desc_tail = tail + after;
			out->region.desc_slot = block / CHUNK_NPAGES;
			return true;
		}
	}
	return false;
}

/* ---------------------------------------------------------------------- */
/* Locks. */

/* (Re)initialises the arena's locks; process-shared for a shared heap. */
static bool
heap_arena_locks_init(alloc_heap_t *h) {
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	if (h->flags & ALLOC_HEAP_SHARED) {
		pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	}
	bool failed = pthread_mutex_init(&h->arena.lock.lock, &attr) != 0;
	for (szind_t i = 0; i < SZ_NSMALL && !failed; i++) {
		failed = pthread_mutex_init(&h->arena.bins[i].lock.lock, &attr) != 0;
	}
	pthread_mutexattr_destroy(&attr);
	return failed;
}

static bool
heap_lock_init(alloc_heap_t *h) {
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	bool failed = pthread_mutex_init(&h->lock, &attr) != 0;
	pthread_mutexattr_destroy(&attr);
	return failed;
}

static alloc_heap_t *
heap_of_arena(arena_t *a) {
	return (alloc_heap_t *)((char *)a - offsetof(alloc_heap_t, arena));
}

/*
 * The heap lock came back EOWNERDEAD: a process died holding it, so maybe
 * in the middle of an arena operation. Nobody else is inside the heap (every
 * arena call for it runs under this lock), so the arena's own locks, which
 * the dead process may have held, are re-created; then the walker checks
 * the whole arena. Intact: the lock is made consistent and the heap goes
 * on. Damaged: the heap is marked so, and every later call fails.
 */
COLD NOINLINE static bool
heap_recover(alloc_heap_t *h) {
	bool ok = !heap_arena_locks_init(h);
	/* A purge in progress drops only the arena lock, inside the heap
	 * lock: if its process died there, its runs stay allocated (lost to
	 * the heap) but consistent. */
	h->arena.purging = false;
	/* The walker checks that each chunk is registered in this process;
	 * the chunks other processes made may not be yet. The list is walked
	 * for at most as many chunks as the region has (it may be damaged). */
	const arena_region_t *r = &h->region;
	size_t n = 0;
	for (arena_chunk_t *c = h->arena.chunks_head; c != NULL && n < r->nchunks;
	     c = c->next, n++) {
		if ((char *)c >= r->chunks &&
		    (size_t)((char *)c - r->chunks) < r->nchunks * CHUNK &&
		    ((uintptr_t)c & CHUNK_MASK) == 0) {
			arena_chunk_registry_set(c, ARENA_REGISTRY_HEAP);
		}
	}
	const char *why = ok ? arena_validate(&h->arena) : "cannot re-create the arena's locks";
	pthread_mutex_consistent(&h->lock);
	if (why != NULL) {
		__atomic_store_n(&h->damaged, true, __ATOMIC_RELEASE);
		msg_warn("heap at %p: a process died holding its lock and left it damaged (%s); "
		         "the heap is refused from now on",
		         (void *)h->base, why);
		pthread_mutex_unlock(&h->lock);
		errno = ENOTRECOVERABLE;
		return false;
	}
	msg_warn("heap at %p: a process died holding its lock; the heap checked out intact, "
	         "going on",
	         (void *)h->base);
	return true;
}

bool
heap_enter(arena_t *a) {
	alloc_heap_t *h = heap_of_arena(a);
	if (!a->region->shared) {
		return true;
	}
	int err = pthread_mutex_lock(&h->lock);
	if (unlikely(err == EOWNERDEAD)) {
		if (!heap_recover(h)) {
			return false;
		}
	} else if (unlikely(err != 0)) {
		errno = ENOTRECOVERABLE;
		return false;
	}
	if (unlikely(__atomic_load_n(&h->damaged, __ATOMIC_ACQUIRE))) {
		pthread_mutex_unlock(&h->lock);
		errno = ENOTRECOVERABLE;
		return false;
	}
	return true;
}

void
heap_leave(arena_t *a) {
	if (a->region->shared) {
		pthread_mutex_unlock(&heap_of_arena(a)->lock);
	}
}

/* ---------------------------------------------------------------------- */
/* The heap's cache (see alloc_heap_s). */

COLD NOINLINE static void
heap_cache_lock_wait(alloc_heap_t *h) {
	do {
		for (unsigned spins = 0; __atomic_load_n(&h->cache_lock, __ATOMIC_RELAXED) != 0;
		     spins++) {
			if (spins >= 64) {
				sched_yield();
			}
		}
	} while (__atomic_exchange_n(&h->cache_lock, 1, __ATOMIC_ACQUIRE) != 0);
}

ALWAYS_INLINE void
heap_cache_lock(alloc_heap_t *h) {
	if (unlikely(__atomic_exchange_n(&h->cache_lock, 1, __ATOMIC_ACQUIRE) != 0)) {
		heap_cache_lock_wait(h);
	}
}

/* The hit paths' lock: taken at once or not at all (they then leave for
 * a slow path that waits). */
ALWAYS_INLINE bool
heap_cache_trylock(alloc_heap_t *h) {
	return __atomic_exchange_n(&h->cache_lock, 1, __ATOMIC_ACQUIRE) == 0;
}

ALWAYS_INLINE void
heap_cache_unlock(alloc_heap_t *h) {
	__atomic_store_n(&h->cache_lock, 0, __ATOMIC_RELEASE);
}

/*
 * The heap's counters (allocated, nblocks, high_water): under the cache
 * lock in a heap that has a cache, so its hit paths update them with plain
 * instructions; atomically in a shared heap (no cache lock there).
 */
ALWAYS_INLINE void
heap_count_alloc_locked(alloc_heap_t *h, size_t usize) {
	size_t now = h->allocated + usize;
	h->allocated = now;
	h->nblocks++;
	if (now > h->high_water) {
		h->high_water = now;
	}
}

ALWAYS_INLINE void
heap_count_dalloc_locked(alloc_heap_t *h, size_t usize) {
	h->allocated -= usize;
	h->nblocks--;
}

void
heap_count_alloc(arena_t *a, size_t usize) {
	alloc_heap_t *h = heap_of_arena(a);
	if (!a->region->shared) {
		heap_cache_lock(h);
		heap_count_alloc_locked(h, usize);
		heap_cache_unlock(h);
		return;
	}
	size_t now = __atomic_add_fetch(&h->allocated, usize, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->nblocks, 1, __ATOMIC_RELAXED);
	size_t high = __atomic_load_n(&h->high_water, __ATOMIC_RELAXED);
	while (now > high && !__atomic_compare_exchange_n(&h->high_water, &high, now, true,
	                                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
	}
}

void
heap_count_dalloc(arena_t *a, size_t usize) {
	alloc_heap_t *h = heap_of_arena(a);
	if (!a->region->shared) {
		heap_cache_lock(h);
		heap_count_dalloc_locked(h, usize);
		heap_cache_unlock(h);
		return;
	}
	__atomic_sub_fetch(&h->allocated, usize, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&h->nblocks, 1, __ATOMIC_RELAXED);
}

/* The cache's lock: the spin lock, or in a shared heap the heap lock
 * (robust: a process dying in the middle of a push or pop leaves a block
 * in the cache or lost to it, never handed out twice). False: a damaged
 * shared heap (errno ENOTRECOVERABLE). */
static bool
heap_cache_enter(alloc_heap_t *h) {
	if (!h->region.shared) {
		heap_cache_lock(h);
		return true;
	}
	return heap_enter(&h->arena);
}

static void
heap_cache_leave(alloc_heap_t *h) {
	if (!h->region.shared) {
		heap_cache_unlock(h);
	} else {
		heap_leave(&h->arena);
	}
}

/* Gives every cached region back to the arena (a full heap); returns
 * whether there was any. */
static bool
heap_cache_release(alloc_heap_t *h) {
	if (!heap_cache_enter(h)) {
		return false;
	}
	bool any = false;
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		void **bottom = &h->cache[i][1];
		unsigned n = (unsigned)(h->top[i] - &h->cache[i][0]);
		if (n != 0) {
			any = true;
			for (unsigned left = n; left != 0;) {
				left = arena_bin_flush(bottom, left, i, 0);
			}
			h->top[i] = &h->cache[i][0];
		}
	}
	heap_cache_leave(h);
	return any;
}

/* Empties every stack and sets its sentinels (create, reset). */
static void
heap_cache_empty(alloc_heap_t *h) {
	for (szind_t i = 0; i < SZ_NSMALL; i++) {
		h->cache[i][0] = NULL;
		h->cache[i][HEAP_CACHE_SLOTS + 1] = HEAP_CACHE_FULL;
		h->top[i] = &h->cache[i][0];
	}
}

/* Under the cache lock, with class ind's stack empty: fills half of it
 * from the arena; returns how many it got. */
COLD NOINLINE static uint32_t
heap_cache_fill(alloc_heap_t *h, szind_t ind) {
	uint32_t n = arena_bin_fill(&h->arena, ind, &h->cache[ind][1], HEAP_CACHE_SLOTS / 2);
	h->top[ind] = &h->cache[ind][n];
	return n;
}

/* Under the cache lock, with class ind's stack full: gives its older half
 * back to the arena. */
COLD NOINLINE static void
heap_cache_flush(alloc_heap_t *h, szind_t ind) {
	void **stack = &h->cache[ind][1];
	unsigned half = HEAP_CACHE_SLOTS / 2;
	for (unsigned left = half; left != 0;) {
		left = arena_bin_flush(stack, left, ind, 0);
	}
	memmove(stack, stack + half, (HEAP_CACHE_SLOTS - half) * sizeof(void *));
	h->top[ind] = &h->cache[ind][HEAP_CACHE_SLOTS - half];
}

void
heap_prefork(void) {
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	for (unsigned i = narenas_auto; i < n; i++) {
		arena_t *a = arena_slot_region[i] ? arenas[i] : NULL;
		if (a != NULL && !a->region->shared) {
			heap_cache_lock(heap_of_arena(a));
		}
	}
}

void
heap_postfork(void) {
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	for (unsigned i = narenas_auto; i < n; i++) {
		arena_t *a = arena_slot_region[i] ? arenas[i] : NULL;
		if (a != NULL && !a->region->shared) {
			heap_cache_unlock(heap_of_arena(a));
		}
	}
}

/* ---------------------------------------------------------------------- */
/* The process's heaps. */

/* This process's slot of heap h, or ARENAS_MAX if h is in none. */
static unsigned
heap_slot(const alloc_heap_t *h) {
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	for (unsigned i = narenas_auto; i < n; i++) {
		if (__atomic_load_n(&arena_slot_region[i], __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE) == &h->arena) {
			return i;
		}
	}
	return ARENAS_MAX;
}

/* The arena of the heap (installed in this process) whose chunks contain
 * ptr, or NULL. */
static arena_t *
heap_find(const void *ptr) {
	unsigned n = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	for (unsigned i = narenas_auto; i < n; i++) {
		if (!__atomic_load_n(&arena_slot_region[i], __ATOMIC_ACQUIRE)) {
			continue;
		}
		arena_t *a = __atomic_load_n(&arenas[i], __ATOMIC_ACQUIRE);
		if (a != NULL && (const char *)ptr >= a->region->chunks &&
		    (size_t)((const char *)ptr - a->region->chunks) < a->region->nchunks * CHUNK) {
			return a;
		}
	}
	return NULL;
}

bool
heap_register_chunk(const void *ptr) {
	arena_t *a = heap_find(ptr);
	if (a == NULL) {
		return false;
	}
	arena_chunk_t *want = arena_chunk_of(ptr);
	if (!heap_enter(a)) {
		/* A damaged heap: its lists cannot be trusted, and it refuses
		 * every call anyway; a free of one of its blocks is dropped
		 * (dalloc_heap_paged), not reported as invalid. */
		arena_chunk_registry_set(want, ARENA_REGISTRY_HEAP);
		return true;
	}
	bool found = false;
	mutex_lock(&a->lock);
	for (arena_chunk_t *c = a->chunks_head; c != NULL && !found; c = c->next) {
		found = c == want;
	}
	if (found) {
		arena_chunk_registry_set(want, ARENA_REGISTRY_HEAP);
	}
	mutex_unlock(&a->lock);
	heap_leave(a);
	return found;
}

extent_t *
heap_adopt_huge(const void *ptr) {
	arena_t *a = heap_find(ptr);
	if (a == NULL || !heap_enter(a)) {
		return NULL;
	}
	extent_t *found = NULL;
	mutex_lock(&a->lock);
	for (extent_t *e = a->huge_list; e != NULL && found == NULL; e = e->next) {
		if (e->addr == ptr) {
			found = e;
		}
	}
	mutex_unlock(&a->lock);
	heap_leave(a);
	if (found != NULL && huge_adopt(found)) {
		return NULL;
	}
	return found;
}

/* ---------------------------------------------------------------------- */
/* The API. */

COLD NOINLINE static void
heap_report_invalid(const char *func, const void *ptr) {
	/* The words of every other invalid free (alloc.c's report_invalid). */
	msg_fatal("%s(): invalid pointer %p (not returned by malloc, or already freed)", func, ptr);
}

/* Whether h is a live heap: its magic is read, so h must point to readable
 * memory (a destroyed heap's handle must not be used, as after free). */
static bool
heap_valid(const alloc_heap_t *h) {
	if (h == NULL) {
		return false;
	}
	uint64_t magic = __atomic_load_n(&h->stub.magic, __ATOMIC_ACQUIRE);
	return magic == HEAP_MAGIC || magic == HEAP_MAGIC_SHARED;
}

/* Whether h is a live heap with a cache (not shared): the hit paths' one
 * test. */
ALWAYS_INLINE bool
heap_valid_cached(const alloc_heap_t *h) {
	return h != NULL && __atomic_load_n(&h->stub.magic, __ATOMIC_ACQUIRE) == HEAP_MAGIC;
}

/* The live heap whose region starts at base, or NULL. */
static alloc_heap_t *
heap_at(void *base) {
	const heap_stub_t *stub = base;
	if (base == NULL || ((uintptr_t)base & PAGE_MASK) != 0) {
		return NULL;
	}
	uint64_t magic = __atomic_load_n(&stub->magic, __ATOMIC_ACQUIRE);
	if ((magic != HEAP_MAGIC && magic != HEAP_MAGIC_SHARED && magic != HEAP_MAGIC_STUB) ||
	    stub->fingerprint != heap_fingerprint()) {
		return NULL;
	}
	alloc_heap_t *h = magic == HEAP_MAGIC_STUB ? stub->heap : base;
	return heap_valid(h) && h->stub.fingerprint == stub->fingerprint && h->base == (char *)base
	           ? h
	           : NULL;
}

/* The arena of the block at ptr, which must be h's; aborts with the report
 * of an invalid free naming func otherwise. */
static void
heap_check_owner(alloc_heap_t *h, const void *ptr, const char *func) {
	arena_t *owner = NULL;
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		extent_t *e = huge_lookup(ptr);
		if (e == NULL) {
			e = heap_adopt_huge(ptr);
		}
		owner = e != NULL ? e->arena : NULL;
	} else if (arena_chunk_in_region(ptr) || heap_register_chunk(ptr)) {
		owner = arena_chunk_of(ptr)->arena;
	}
	if (unlikely(owner != &h->arena)) {
		heap_report_invalid(func, ptr);
	}
}

ALLOC_EXPORT alloc_heap_t *
ALLOC_NAME(alloc_heap_create)(void *base, size_t size, unsigned flags) {
	/* Start the allocator up (bin shapes are needed for the layout). */
	if (!alloc_ready()) {
		errno = ENOMEM;
		return NULL;
	}
	char *b = base;
	size &= ~PAGE_MASK;
	heap_layout_t l;
	if (b == NULL || ((uintptr_t)b & PAGE_MASK) != 0 || size < HEAP_MIN_SIZE ||
	    (flags & ~ALLOC_HEAP_SHARED) != 0 || (uintptr_t)b + size < (uintptr_t)b ||
	    ((uintptr_t)b + size - 1) >> LG_VADDR != 0 || !heap_layout(b, size, &l)) {
		errno = EINVAL;
		return NULL;
	}
	alloc_heap_t *old = heap_at(b);
	if (old != NULL && heap_slot(old) != ARENAS_MAX) {
		/* A live heap of this process: creating over it would pull
		 * its memory from under its blocks. */
		errno = EBUSY;
		return NULL;
	}
	alloc_heap_t *h = l.heap;
	heap_stub_t *stub = (heap_stub_t *)b;
	memset(h, 0, heap_header_size(l.region.nchunks));
	memset(stub, 0, sizeof(*stub));
	h->base = b;
	h->size = size;
	h->flags = flags;
	l.region.shared = (flags & ALLOC_HEAP_SHARED) != 0;
	h->region = l.region;
	h->usable = l.region.nchunks * CHUNK_RUN_MAX_PAGES * PAGE;
	heap_cache_empty(h);
	arena_t *a = &h->arena;
	if (arena_init(a, 0) || heap_arena_locks_init(h) ||
	    (h->region.shared && heap_lock_init(h))) {
		errno = ENOMEM;
		return NULL;
	}
	a->region = &h->region;
	/* The region is the caller's: it is purged when the caller asks
	 * (arena.<i>.purge, arena.<i>.decay_time), never on a timer. */
	decay_init(&a->decay, -1, decay_now_ns());
	extent_t *nodes = (extent_t *)(h + 1);
	chunk_cache_init_region(&a->chunks, h->region.chunks, h->region.nchunks * CHUNK, nodes,
	                        heap_nextents(h->region.nchunks));
	unsigned ind = arena_install_region(a);
	if (ind == ARENAS_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	a->ind = ind;
	a->chunks.arena_ind = ind;
	uint64_t fingerprint = heap_fingerprint();
	h->stub.fingerprint = fingerprint;
	h->stub.heap = h;
	__atomic_store_n(&h->stub.magic, h->region.shared ? HEAP_MAGIC_SHARED : HEAP_MAGIC,
	                 __ATOMIC_RELEASE);
	if (stub != &h->stub) {
		stub->fingerprint = fingerprint;
		stub->heap = h;
		__atomic_store_n(&stub->magic, HEAP_MAGIC_STUB, __ATOMIC_RELEASE);
	}
	return h;
}

ALLOC_EXPORT alloc_heap_t *
ALLOC_NAME(alloc_heap_attach)(void *base) {
	if (!alloc_ready()) {
		errno = ENOMEM;
		return NULL;
	}
	alloc_heap_t *h = heap_at(base);
	if (h == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (heap_slot(h) != ARENAS_MAX) {
		return h;
	}
	if (arena_install_region(&h->arena) == ARENAS_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	return h;
}

/* alloc_heap_malloc past its hit path: a bad handle, a size or heap the
 * cache does not serve, or an empty stack (filled here). */
NOINLINE static void *
heap_malloc_slow(alloc_heap_t *h, size_t size) {
	if (unlikely(!heap_valid(h))) {
		errno = EINVAL;
		return NULL;
	}
	if (size <= SZ_LOOKUP_MAXCLASS) {
		szind_t ind = sz_size2index_lookup(size);
		if (!heap_cache_enter(h)) {
			return NULL;
		}
		if (*h->top[ind] != NULL || heap_cache_fill(h, ind) != 0) {
			void *ret = *h->top[ind];
			h->top[ind]--;
			size_t usize = sz_index2size(ind);
			heap_count_alloc_locked(h, usize);
			heap_cache_leave(h);
			if (config_stats) {
				TSD_FS(allocated) += usize;
			}
			return ret;
		}
		heap_cache_leave(h);
	}
	void *ret = alloc_arena_malloc(&h->arena, size, 0, false);
	if (ret == NULL && errno == ENOMEM && heap_cache_release(h)) {
		/* Regions the cache held back may have kept runs, even whole
		 * chunks, from the arena: once more without them. */
		ret = alloc_arena_malloc(&h->arena, size, 0, false);
	}
	return ret;
}

ALLOC_EXPORT void *
ALLOC_NAME(alloc_heap_malloc)(alloc_heap_t *h, size_t size) {
	/* The hit path: a small class popped from the heap's cache. */
	if (unlikely(!heap_valid_cached(h) || size > SZ_LOOKUP_MAXCLASS)) {
		return heap_malloc_slow(h, size);
	}
	/* The bin index of the thread caches' table is the class + 1. */
	szind_t ind = tcache_size2pc_tab[size] - 1;
	if (unlikely(!heap_cache_trylock(h))) {
		return heap_malloc_slow(h, size);
	}
	void **top = h->top[ind];
	void *ret = *top;
	if (unlikely(ret == NULL)) {
		heap_cache_unlock(h);
		return heap_malloc_slow(h, size);
	}
	h->top[ind] = top - 1;
	size_t usize = sz_index2size(ind);
	heap_count_alloc_locked(h, usize);
	heap_cache_unlock(h);
	if (config_stats) {
		TSD_FS(allocated) += usize;
	}
	return ret;
}

ALLOC_EXPORT void *
ALLOC_NAME(alloc_heap_calloc)(alloc_heap_t *h, size_t n, size_t size) {
	size_t total;
	if (unlikely(!heap_valid(h))) {
		errno = EINVAL;
		return NULL;
	}
	if (unlikely(__builtin_mul_overflow(n, size, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc_arena_malloc(&h->arena, total, 0, true);
}

ALLOC_EXPORT void *
ALLOC_NAME(alloc_heap_aligned_alloc)(alloc_heap_t *h, size_t alignment, size_t size) {
	if (unlikely(!heap_valid(h) || !is_pow2(alignment))) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_arena_malloc(&h->arena, size, alignment, false);
}

ALLOC_EXPORT void *
ALLOC_NAME(alloc_heap_realloc)(alloc_heap_t *h, void *ptr, size_t size) {
	if (unlikely(!heap_valid(h))) {
		errno = EINVAL;
		return NULL;
	}
	if (ptr == NULL) {
		return alloc_arena_malloc(&h->arena, size, 0, false);
	}
	heap_check_owner(h, ptr, "alloc_heap_realloc");
	if (size == 0) {
		alloc_arena_free(ptr);
		return NULL;
	}
	return alloc_arena_realloc(&h->arena, ptr, size);
}

/* alloc_heap_free past its hit path: NULL, a bad handle, a block the
 * cache does not take, a full stack (flushed here, which checks the
 * region of every pointer it gives back). */
NOINLINE static void
heap_free_slow(alloc_heap_t *h, void *ptr) {
	if (ptr == NULL) {
		return;
	}
	if (unlikely(!heap_valid(h))) {
		heap_report_invalid("alloc_heap_free", ptr);
	}
	unsigned pclass;
	if (arena_chunk_in_region(ptr) && arena_chunk_of(ptr)->arena == &h->arena &&
	    (pclass = arena_ptr_pclass(ptr)) != PCLASS_NONE && pclass <= SZ_NSMALL) {
		szind_t ind = pclass - 1;
		arena_check_small(ptr, ind);
		if (!heap_cache_enter(h)) {
			/* A damaged shared heap keeps the block. */
			return;
		}
		if (unlikely(*h->top[ind] == ptr)) {
			heap_cache_leave(h);
			arena_report_bad_free(ptr, "double free");
		}
		if (h->top[ind][1] == HEAP_CACHE_FULL) {
			heap_cache_flush(h, ind);
		}
		*++h->top[ind] = ptr;
		size_t usize = sz_index2size(ind);
		heap_count_dalloc_locked(h, usize);
		heap_cache_leave(h);
		if (config_stats) {
			TSD_FS(deallocated) += usize;
		}
		return;
	}
	heap_check_owner(h, ptr, "alloc_heap_free");
	alloc_arena_free(ptr);
}

ALLOC_EXPORT void
ALLOC_NAME(alloc_heap_free)(alloc_heap_t *h, void *ptr) {
	/*
	 * The hit path: a small block of this heap pushed on the heap's
	 * cache. Like free()'s thread-cache hit it checks only what it can
	 * cheaply: the chunk is a heap chunk of this heap (so a block of
	 * another heap is reported, below), the page starts a small object,
	 * the block is not the one on top of the stack (a double free); the
	 * region boundary is checked when the stack is flushed. ptr below
	 * 2^LG_VADDR, as for free() (the registry is not bounds-checked).
	 */
	if (unlikely(!heap_valid_cached(h) || !arena_chunk_heap(ptr) ||
	             arena_chunk_of(ptr)->arena != &h->arena)) {
		heap_free_slow(h, ptr);
		return;
	}
	unsigned pclass = arena_ptr_pclass(ptr);
	if (unlikely(pclass == PCLASS_NONE || pclass > SZ_NSMALL)) {
		heap_free_slow(h, ptr);
		return;
	}
	szind_t ind = pclass - 1;
	if (unlikely(!heap_cache_trylock(h))) {
		heap_free_slow(h, ptr);
		return;
	}
	void **top = h->top[ind];
	if (unlikely(*top == ptr || top[1] == HEAP_CACHE_FULL)) {
		heap_cache_unlock(h);
		heap_free_slow(h, ptr);
		return;
	}
	top[1] = ptr;
	h->top[ind] = top + 1;
	size_t usize = sz_index2size(ind);
	heap_count_dalloc_locked(h, usize);
	heap_cache_unlock(h);
	if (config_stats) {
		TSD_FS(deallocated) += usize;
	}
}

ALLOC_EXPORT unsigned
ALLOC_NAME(alloc_heap_arena)(alloc_heap_t *h) {
	if (!heap_valid(h)) {
		errno = EINVAL;
		return UINT32_MAX;
	}
	unsigned ind = heap_slot(h);
	if (ind == ARENAS_MAX) {
		errno = EINVAL;
		return UINT32_MAX;
	}
	return ind;
}

ALLOC_EXPORT int
ALLOC_NAME(alloc_heap_reset)(alloc_heap_t *h) {
	if (!heap_valid(h)) {
		return EINVAL;
	}
	return heap_reset(&h->arena);
}

int
heap_reset(arena_t *a) {
	alloc_heap_t *h = heap_of_arena(a);
	/* The cache's lock is held throughout (before the bin locks, as the
	 * order says): a concurrent hit path of this heap is a caller error,
	 * but must not see half a reset. */
	if (!heap_cache_enter(h)) {
		return ENOTRECOVERABLE;
	}
	heap_cache_empty(h);
	huge_reset(a);
	arena_reset(a);
	__atomic_store_n(&h->allocated, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&h->nblocks, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&h->high_water, 0, __ATOMIC_RELAXED);
	heap_cache_leave(h);
	return 0;
}

ALLOC_EXPORT int
ALLOC_NAME(alloc_heap_destroy)(alloc_heap_t *h) {
	if (!heap_valid(h)) {
		return EINVAL;
	}
	arena_t *a = &h->arena;
	unsigned ind = heap_slot(h);
	if (ind == ARENAS_MAX) {
		return EINVAL;
	}
	/* Damaged or not, the heap goes away: no recovery needed. */
	bool locked = heap_enter(a);
	__atomic_store_n(&((heap_stub_t *)h->base)->magic, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&h->stub.magic, 0, __ATOMIC_RELEASE);
	/* Forget the huge blocks (radix tree) and the chunks (registry)
	 * of this process; the arena's structures die with the region. */
	huge_reset(a);
	for (size_t i = 0; i < h->region.nchunks; i++) {
		arena_chunk_registry_set(h->region.chunks + i * CHUNK, 0);
	}
	arena_uninstall_region(ind);
	ctl_refresh_wait();
	if (locked) {
		heap_leave(a);
	}
	return 0;
}

ALLOC_EXPORT int
ALLOC_NAME(alloc_heap_stats)(alloc_heap_t *h, alloc_heap_stats_t *st) {
	if (!heap_valid(h) || st == NULL) {
		return EINVAL;
	}
	arena_t *a = &h->arena;
	if (!heap_enter(a)) {
		return ENOTRECOVERABLE;
	}
	mutex_lock(&a->lock);
	size_t active = (a->nactive << LG_PAGE) + a->stats.allocated_huge;
	mutex_unlock(&a->lock);
	heap_leave(a);
	memset(st, 0, sizeof(*st));
	st->size = h->size;
	st->usable = h->usable;
	st->overhead = h->size - h->usable;
	if (!h->region.shared) {
		heap_cache_lock(h);
	}
	st->allocated = __atomic_load_n(&h->allocated, __ATOMIC_RELAXED);
	st->high_water = __atomic_load_n(&h->high_water, __ATOMIC_RELAXED);
	st->nblocks = __atomic_load_n(&h->nblocks, __ATOMIC_RELAXED);
	if (!h->region.shared) {
		heap_cache_unlock(h);
	}
	st->active = active;
	st->free = h->usable > active ? h->usable - active : 0;
	st->chunks = h->region.nchunks;
	st->flags = h->flags;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* --enable-private-heap: the seed's interface over one heap. */

/* The heap of PFXconfig_private_heap (published with a release store,
 * read with acquire loads). */
static alloc_heap_t *heap_private;

arena_t *
heap_private_arena(void) {
	alloc_heap_t *h = __atomic_load_n(&heap_private, __ATOMIC_ACQUIRE);
	return h != NULL ? &h->arena : NULL;
}

#if ALLOC_CONFIG_PRIVATE_HEAP
ALLOC_EXPORT int
ALLOC_NAME(config_private_heap)(void *start, size_t size) {
	alloc_heap_t *h = __atomic_load_n(&heap_private, __ATOMIC_ACQUIRE);
	if (h != NULL) {
		/* Again with the same region (as the seed does after a
		 * reset): nothing to do. */
		return h->base == (char *)start ? 0 : EBUSY;
	}
	h = ALLOC_NAME(alloc_heap_create)(start, size, 0);
	if (h == NULL) {
		return errno;
	}
	alloc_heap_t *expected = NULL;
	if (!__atomic_compare_exchange_n(&heap_private, &expected, h, false, __ATOMIC_ACQ_REL,
	                                 __ATOMIC_ACQUIRE)) {
		ALLOC_NAME(alloc_heap_destroy)(h);
		return expected->base == (char *)start ? 0 : EBUSY;
	}
	return 0;
}

ALLOC_EXPORT void
ALLOC_NAME(malloc_reset)(void) {
	alloc_heap_t *h = __atomic_load_n(&heap_private, __ATOMIC_ACQUIRE);
	if (h != NULL) {
		ALLOC_NAME(alloc_heap_reset)(h);
	}
}
#endif
