/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Debugging fills (see fill.h): junk and zero patterns, redzones around
 * small objects, the per-thread quarantine of freed objects, and xmalloc.
 *
 * It owns the options' globals and each thread's quarantine array. It runs
 * only on slow paths: with any fill option on, thread caches are off, so
 * alloc.c sends every allocation through fill_alloc_finish() and every
 * free through fill_dalloc(). Errors in the program (a guard byte or a
 * freed object overwritten) are reported with the object's address and
 * size and the first wrong byte, then abort().
 */
#include "alloc/internal/fill.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/huge.h"
#include "alloc/internal/message.h"
#include "alloc/internal/util.h"

fill_junk_t opt_junk = FILL_JUNK_FALSE;
const char *const opt_junk_names[] = {
    [FILL_JUNK_FALSE] = "false",
    [FILL_JUNK_TRUE] = "true",
    [FILL_JUNK_ALLOC] = "alloc",
    [FILL_JUNK_FREE] = "free",
    NULL,
};
bool opt_zero = false;
bool opt_redzone = false;
size_t opt_quarantine = 0;
bool opt_xmalloc = false;

bool fill_junk_alloc;
bool fill_junk_free;
bool fill_slow_paths;

void
fill_boot(void) {
	if (!config_fill) {
		return;
	}
	fill_junk_alloc = opt_junk == FILL_JUNK_TRUE || opt_junk == FILL_JUNK_ALLOC;
	fill_junk_free = opt_junk == FILL_JUNK_TRUE || opt_junk == FILL_JUNK_FREE;
	fill_slow_paths =
	    fill_junk_alloc || fill_junk_free || opt_zero || opt_redzone || opt_quarantine != 0;
}

bool
fill_option_is_fill(const void *opt_ptr) {
	return opt_ptr == &opt_junk || opt_ptr == &opt_zero || opt_ptr == &opt_redzone ||
	       opt_ptr == &opt_quarantine || opt_ptr == &opt_xmalloc;
}

void
fill_xmalloc_check(size_t size) {
	if (config_fill && unlikely(opt_xmalloc)) {
		msg_fatal("out of memory: allocation of %zu bytes failed (xmalloc:true)", size);
	}
}

/* ---------------------------------------------------------------------- */
/* Redzones. */

size_t
fill_redzone_class(size_t size, size_t alignment, size_t *lead) {
	size_t l = alignment > FILL_REDZONE_SIZE ? alignment : FILL_REDZONE_SIZE;
	if (size <= SZ_SMALL_MAXCLASS) {
		/* malloc(0) gets a byte, so every object has some. */
		size_t need = (size == 0 ? 1 : size) + l + FILL_REDZONE_SIZE;
		size_t csize = alignment <= 1 ? sz_s2u(need) : sz_sa2u(need, alignment);
		if (csize != 0 && csize <= SZ_SMALL_MAXCLASS) {
			*lead = l;
			return csize;
		}
		/* Too big for a small class with its guards: take a large
		 * one, so that every small object has redzones. */
		size = SZ_LARGE_MINCLASS;
	}
	*lead = 0;
	return alignment <= 1 ? sz_s2u(size) : sz_sa2u(size, alignment);
}

size_t
fill_redzone_usize(size_t size, size_t alignment) {
	size_t lead;
	size_t csize = fill_redzone_class(size, alignment, &lead);
	return lead == 0 ? csize : csize - lead - FILL_REDZONE_SIZE;
}

COLD NOINLINE static void
fill_report_invalid(const char *func, const void *ptr) {
	msg_fatal("%s(): invalid pointer %p (not returned by malloc, or already freed)", func, ptr);
}

size_t
fill_redzone_lead(const void *ptr, szind_t ind, const char *func) {
	size_t lead = (size_t)((const char *)ptr - (const char *)arena_small_region_base(ptr, ind));
	/* lead is max(quantum, alignment): a power of two that ptr is
	 * aligned to, leaving a trailing guard in the region. */
	if (unlikely(lead < FILL_REDZONE_SIZE || !is_pow2(lead) ||
	             ((uintptr_t)ptr & (lead - 1)) != 0 ||
	             lead + FILL_REDZONE_SIZE >= sz_index2size(ind))) {
		fill_report_invalid(func, ptr);
	}
	return lead;
}

COLD NOINLINE static void
fill_report_redzone(const void *ptr, size_t usize, ptrdiff_t off, unsigned char byte) {
	msg_fatal("redzone corruption: object %p of size %zu, byte at offset %zd is 0x%02x "
	          "(expected 0x%02x)",
	          ptr, usize, (ssize_t)off, byte, FILL_REDZONE_BYTE);
}

/* Offset of the first byte in [p, p + n) that is not b, or n. */
static size_t
fill_mismatch(const unsigned char *p, size_t n, unsigned char b) {
	for (size_t i = 0; i < n; i++) {
		if (unlikely(p[i] != b)) {
			return i;
		}
	}
	return n;
}

/* Checks both guards of the small object ptr (lead bytes before, the rest
 * of its region of class size csize after its usize bytes). */
static void
fill_redzone_check(const unsigned char *ptr, size_t lead, size_t usize, size_t csize) {
	const unsigned char *region = ptr - lead;
	size_t i = fill_mismatch(region, lead, FILL_REDZONE_BYTE);
	if (i != lead) {
		fill_report_redzone(ptr, usize, (ptrdiff_t)i - (ptrdiff_t)lead, region[i]);
	}
	size_t tail = csize - lead - usize;
	i = fill_mismatch(ptr + usize, tail, FILL_REDZONE_BYTE);
	if (i != tail) {
		fill_report_redzone(ptr, usize, (ptrdiff_t)(usize + i), ptr[usize + i]);
	}
}

void *
fill_alloc_finish(void *region, size_t csize, size_t lead, bool zeroed) {
	unsigned char *ptr = (unsigned char *)region + lead;
	size_t usize = csize;
	if (lead != 0) {
		usize = csize - lead - FILL_REDZONE_SIZE;
		memset(region, FILL_REDZONE_BYTE, lead);
		memset(ptr + usize, FILL_REDZONE_BYTE, FILL_REDZONE_SIZE);
	}
	if (!zeroed) {
		if (fill_junk_alloc) {
			memset(ptr, FILL_ALLOC_BYTE, usize);
		} else if (opt_zero) {
			memset(ptr, 0, usize);
		}
	}
	return ptr;
}

void
fill_ralloc_grown(void *ptr, size_t old_usize, size_t new_usize, bool zeroed) {
	if (zeroed || new_usize <= old_usize) {
		return;
	}
	if (fill_junk_alloc) {
		memset((char *)ptr + old_usize, FILL_ALLOC_BYTE, new_usize - old_usize);
	} else if (opt_zero) {
		memset((char *)ptr + old_usize, 0, new_usize - old_usize);
	}
}

void
fill_ralloc_shrinking(void *ptr, size_t old_usize, size_t new_usize) {
	if (fill_junk_free && new_usize < old_usize) {
		memset((char *)ptr + new_usize, FILL_FREE_BYTE, old_usize - new_usize);
	}
}

/* ---------------------------------------------------------------------- */
/* Freeing and the quarantine. */

/* A live object as the program sees it. */
typedef struct {
	unsigned char *ptr;
	/* Usable size. */
	size_t usize;
	/* Class size and index of what holds it; huge: SZ_NPAGED. */
	size_t csize;
	szind_t ind;
	/* Redzone before ptr (0: none). */
	size_t lead;
	/* Arena that owns it. */
	arena_t *arena;
} fill_obj_t;

static fill_obj_t
fill_obj(void *ptr, const char *func) {
	fill_obj_t o = {ptr, 0, 0, SZ_NPAGED, 0, NULL};
	if (((uintptr_t)ptr & CHUNK_MASK) == 0) {
		extent_t *e = huge_lookup(ptr);
		if (unlikely(e == NULL)) {
			fill_report_invalid(func, ptr);
		}
		o.usize = o.csize = e->usize;
		o.arena = e->arena;
		return o;
	}
	unsigned pclass = arena_ptr_pclass(ptr);
	if (unlikely(pclass == PCLASS_NONE || pclass > SZ_NPAGED)) {
		fill_report_invalid(func, ptr);
	}
	o.ind = pclass - 1;
	o.usize = o.csize = sz_index2size(o.ind);
	o.arena = arena_chunk_of(ptr)->arena;
	if (opt_redzone && o.ind < SZ_NSMALL) {
		o.lead = fill_redzone_lead(ptr, o.ind, func);
		o.usize = o.csize - o.lead - FILL_REDZONE_SIZE;
	} else if (o.ind < SZ_NSMALL) {
		/* A pointer into the middle of a region must not reach the
		 * quarantine (it would be junk-filled and released later as if
		 * it were an object). */
		arena_check_small(ptr, o.ind);
	} else if (unlikely(((uintptr_t)ptr & PAGE_MASK) != 0)) {
		/* Inside the first page of a large block. */
		fill_report_invalid(func, ptr);
	}
	return o;
}

/* Gives a checked object back to its arena. */
static void
fill_release(const fill_obj_t *o) {
	if (o->ind == SZ_NPAGED) {
		huge_dalloc(o->ptr, false);
	} else if (o->ind < SZ_NSMALL) {
		arena_dalloc_small(o->ptr - o->lead, o->ind);
	} else {
		arena_dalloc_large(o->ptr, o->ind);
	}
}

COLD NOINLINE static void
fill_report_uaf(const void *ptr, size_t usize, size_t off, unsigned char byte) {
	msg_fatal("use after free: object %p of size %zu was written after free(): byte at offset "
	          "%zu is 0x%02x (expected 0x%02x)",
	          ptr, usize, off, byte, FILL_FREE_BYTE);
}

typedef struct {
	void *ptr;
	size_t usize;
} fill_qent_t;

/* A FIFO ring of freed objects; lives in a region of class `ind` from the
 * thread's arena. */
struct fill_quarantine_s {
	szind_t ind;
	/* Capacity (a power of two), oldest entry, entries. */
	size_t cap;
	size_t first;
	size_t count;
	/* Sum of the entries' usable sizes, <= opt_quarantine. */
	size_t bytes;
	fill_qent_t ents[];
};

#define FILL_QUARANTINE_CAP_MIN 64

static fill_quarantine_t *
fill_quarantine_new(tsd_t *tsd, size_t cap) {
	size_t size = sizeof(fill_quarantine_t) + cap * sizeof(fill_qent_t);
	if (size > SZ_LARGE_MAXCLASS) {
		return NULL;
	}
	arena_t *arena = tsd_arena(tsd);
	if (arena == NULL) {
		return NULL;
	}
	szind_t ind = sz_size2index(size);
	fill_quarantine_t *q = arena_malloc_paged(arena, ind);
	if (q == NULL) {
		return NULL;
	}
	q->ind = ind;
	q->cap = cap;
	q->first = 0;
	q->count = 0;
	q->bytes = 0;
	return q;
}

static void
fill_quarantine_free(fill_quarantine_t *q) {
	arena_dalloc_paged(q, q->ind);
}

/* Doubles the ring; false when memory is short (it then stays). */
static bool
fill_quarantine_grow(tsd_t *tsd) {
	fill_quarantine_t *old = tsd->quarantine;
	fill_quarantine_t *q = fill_quarantine_new(tsd, old->cap * 2);
	if (q == NULL) {
		return false;
	}
	for (size_t i = 0; i < old->count; i++) {
		q->ents[i] = old->ents[(old->first + i) & (old->cap - 1)];
	}
	q->count = old->count;
	q->bytes = old->bytes;
	tsd->quarantine = q;
	fill_quarantine_free(old);
	return true;
}

/* Checks that nothing wrote to the quarantined object at ptr, nor to its
 * redzones, since its free; returns the object. */
static fill_obj_t
fill_quarantined_check(void *ptr) {
	fill_obj_t o = fill_obj(ptr, "free");
	size_t i = fill_mismatch(o.ptr, o.usize, FILL_FREE_BYTE);
	if (i != o.usize) {
		fill_report_uaf(o.ptr, o.usize, i, o.ptr[i]);
	}
	if (o.lead != 0) {
		fill_redzone_check(o.ptr, o.lead, o.usize, o.csize);
	}
	return o;
}

/* Takes the oldest object out, checks it and frees it. */
static void
fill_quarantine_evict(fill_quarantine_t *q) {
	fill_qent_t e = q->ents[q->first];
	q->first = (q->first + 1) & (q->cap - 1);
	q->count--;
	q->bytes -= e.usize;
	fill_obj_t o = fill_quarantined_check(e.ptr);
	fill_release(&o);
}

/* Whether ptr sits in the thread's quarantine (a second free). */
static bool
fill_quarantine_holds(const fill_quarantine_t *q, const void *ptr) {
	for (size_t i = 0; i < q->count; i++) {
		if (q->ents[(q->first + i) & (q->cap - 1)].ptr == ptr) {
			return true;
		}
	}
	return false;
}

/* Puts the junk-filled object o in the quarantine; false if it cannot
 * hold it (it must then be freed now). */
static bool
fill_quarantine_put(tsd_t *tsd, const fill_obj_t *o) {
	/* An arena made by arenas.extend may be reset, which frees its
	 * objects under the quarantine's feet: its objects are not held. */
	if (o->usize > opt_quarantine || tsd->state != TSD_STATE_NOMINAL ||
	    o->arena->ind >= narenas_auto) {
		return false;
	}
	fill_quarantine_t *q = tsd->quarantine;
	if (q == NULL) {
		q = tsd->quarantine = fill_quarantine_new(tsd, FILL_QUARANTINE_CAP_MIN);
		if (q == NULL) {
			return false;
		}
	}
	while (q->bytes + o->usize > opt_quarantine) {
		fill_quarantine_evict(q);
	}
	if (q->count == q->cap) {
		if (fill_quarantine_grow(tsd)) {
			q = tsd->quarantine;
		} else {
			fill_quarantine_evict(q);
		}
	}
	q->ents[(q->first + q->count) & (q->cap - 1)] = (fill_qent_t){o->ptr, o->usize};
	q->count++;
	q->bytes += o->usize;
	return true;
}

COLD NOINLINE static void
fill_report_double_free(const void *ptr) {
	msg_fatal("free(): double free of %p (the object is in the quarantine)", ptr);
}

void
fill_dalloc(tsd_t *tsd, void *ptr) {
	fill_obj_t o = fill_obj(ptr, "free");
	if (config_stats) {
		tsd->deallocated += o.usize;
	}
	if (opt_quarantine != 0 && tsd->quarantine != NULL && o.usize > 0 &&
	    o.ptr[0] == FILL_FREE_BYTE &&
	    fill_mismatch(o.ptr, o.usize < 64 ? o.usize : 64, FILL_FREE_BYTE) ==
	        (o.usize < 64 ? o.usize : 64) &&
	    fill_quarantine_holds(tsd->quarantine, ptr)) {
		/* Only objects that look freed are looked up. */
		fill_report_double_free(ptr);
	}
	if (o.lead != 0) {
		fill_redzone_check(o.ptr, o.lead, o.usize, o.csize);
	}
	bool quarantine =
	    opt_quarantine != 0 && o.usize <= opt_quarantine && o.arena->ind < narenas_auto;
	if (quarantine || fill_junk_free) {
		memset(o.ptr, FILL_FREE_BYTE, o.usize);
	}
	if (quarantine && fill_quarantine_put(tsd, &o)) {
		return;
	}
	fill_release(&o);
}

/*
 * exit() runs no thread-exit destructor for the thread that calls it, so
 * this handler checks that thread's quarantine instead: a write after free
 * made late in the program is reported too. It only checks, and the objects
 * stay quarantined: frees made after it (later atexit handlers, library
 * destructors) keep their double-free check.
 */
static void
fill_quarantine_atexit(void) {
	const fill_quarantine_t *q = tsd_get()->quarantine;
	if (q == NULL) {
		return;
	}
	for (size_t i = 0; i < q->count; i++) {
		fill_quarantined_check(q->ents[(q->first + i) & (q->cap - 1)].ptr);
	}
}

void
fill_atexit_boot(void) {
	if (config_fill && opt_quarantine != 0) {
		atexit(fill_quarantine_atexit);
	}
}

void
fill_quarantine_drain(tsd_t *tsd) {
	fill_quarantine_t *q = tsd->quarantine;
	if (!config_fill || q == NULL) {
		return;
	}
	while (q->count > 0) {
		fill_quarantine_evict(q);
	}
	tsd->quarantine = NULL;
	fill_quarantine_free(q);
}
