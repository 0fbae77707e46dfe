/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target "api": random sequences of every allocation entry point,
 * checked against a model.
 *
 * The input is a program of operations on 48 slots: malloc, calloc,
 * realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc, mallocx, rallocx, xallocx with random sizes (tiny to a few
 * chunks, around class and power-of-two boundaries), alignments and flags
 * (MALLOCX_ZERO, MALLOCX_TCACHE of explicit caches, MALLOCX_TCACHE_NONE,
 * MALLOCX_ARENA of arena 0 and of two extended arenas); frees by free,
 * dallocx and sdallocx with any size from the requested to the usable one;
 * impossible sizes and alignments; explicit cache create/flush/destroy,
 * thread cache flush, arena purge and decay; statistics reads. A private
 * heap (alloc_heap_*, in a 16 MiB region) takes part: its own malloc,
 * calloc, aligned_alloc, realloc and free, mallocx with its arena, reset
 * (the model forgets its blocks), its statistics; its blocks are also
 * freed and resized by every generic entry point, and a full heap may
 * answer NULL + ENOMEM.
 *
 * The model keeps, for each live block, the size asked, the alignment and
 * a byte pattern written into it. It checks that contents survive
 * realloc/rallocx/xallocx (and purging), the usable size is at least the
 * request and sallocx, malloc_usable_size and nallocx agree, alignment
 * holds, zeroing flags give zeros, xallocx never moves, failures set errno,
 * thread.allocated - thread.deallocated moves by exactly the usable bytes
 * of the live blocks, and after an epoch stats.allocated covers them, with
 * stats.active and stats.mapped above. Every input frees all it made.
 *
 * The allocator under test is the unittest_-prefixed copy of liballoc; the
 * harness's own memory comes from the C library (ASan's) malloc.
 */
#define FUZZ_TARGET "api"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/internal/config.h"
#include "alloc/internal/export.h"
#define ALLOC_PREFIXED_BUILD 1
#include "alloc.h"

#include "fuzz_driver.h"

#define A(name) ALLOC_API(name)

/* ---------------------------------------------------------------------- */
/* Reading the input. Past its end every read gives 0 and `end` is set. */

typedef struct {
	const uint8_t *p;
	size_t n;
	bool end;
} input_t;

static uint8_t
in_u8(input_t *in) {
	if (in->n == 0) {
		in->end = true;
		return 0;
	}
	in->n--;
	return *in->p++;
}

static uint32_t
in_u32(input_t *in) {
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		v = v << 8 | in_u8(in);
	}
	return v;
}

/* A request size: mostly small, often on a boundary, at most 4 chunks. */
static size_t
in_size(input_t *in) {
	uint8_t kind = in_u8(in);
	uint32_t v = in_u32(in);
	switch (kind % 8) {
	case 0:
		return v % 65;
	case 1:
	case 2:
		return v % 4097;
	case 3:
		return v % (16 * PAGE + 1);
	case 4:
		return v % (CHUNK + 1);
	case 5: {
		/* Within 16 bytes of a power of two up to 2 chunks. */
		size_t p = (size_t)1 << (v % (LG_CHUNK + 2));
		size_t d = (v >> 8) % 33;
		return d <= 16 ? p - (p < d ? p : d) : p + (d - 16);
	}
	case 6:
		/* Within a page of a multiple of a page. */
		{
			size_t p = (size_t)((v >> 12) % (4 * CHUNK / PAGE)) * PAGE;
			size_t d = v % 33;
			return d <= 16 ? p - (p < d ? p : d) : p + (d - 16);
		}
	default:
		return CHUNK / 2 + v % (3 * CHUNK + 1);
	}
}

/* ---------------------------------------------------------------------- */
/* The model. */

#define NSLOTS  48
#define NTCACHE 3
/* Live requested bytes are kept below this; allocations past it are
 * skipped. */
#define LIVE_MAX ((size_t)96 << 20)

typedef struct {
	uint8_t *p;
	/* Size asked; pattern bytes cover [0, req). */
	size_t req;
	/* Alignment asked (0: none): what nallocx and sdallocx are told. */
	size_t align;
	uint8_t seed;
} block_t;

static block_t slots[NSLOTS];
static size_t live_req;
static size_t live_usize;
/* Explicit caches made by this input; -1: none. */
static int tcaches[NTCACHE];
/* Arenas made once by arenas.extend. */
static unsigned ext_arenas[2];
static uint64_t *thread_allocated, *thread_deallocated;
/* config.stats: without it (configure --disable-stats) the stats.* and
 * thread.allocated* nodes answer ENOENT and only that is checked. */
static bool have_stats;
/* config.tcache: a --disable-tcache build has no tcache.* nodes. */
static bool have_tcache;
static uint64_t thread_base;
/* The private heap, its region and its arena index. */
#define HEAP_SIZE ((size_t)16 << 20)
static alloc_heap_t *heap;
static uint8_t *heap_region;
static unsigned heap_arena;

static bool
in_heap(const void *p) {
	return p != NULL && (const uint8_t *)p >= heap_region &&
	       (const uint8_t *)p < heap_region + HEAP_SIZE;
}

static void
die(const char *what, const block_t *b, size_t off) {
	fprintf(stderr, "api fuzz: %s (block %p, req %zu, align %zu, offset %zu)\n", what,
	        b != NULL ? (void *)b->p : NULL, b != NULL ? b->req : 0, b != NULL ? b->align : 0,
	        off);
	abort();
}

static inline uint8_t
pattern(uint8_t seed, size_t i) {
	return (uint8_t)(((uint32_t)i * 2654435761u) >> 24) ^ seed;
}

/* Fills (check false) or checks [from, to) of b, against the pattern or,
 * with zero, zeros. Past the first 64 KiB only the first and last 16 bytes
 * of each page are looked at: the positions depend on the offset alone, so
 * a block that shrinks or grows keeps a consistent pattern. */
#define DENSE 65536

static void
range_do(const block_t *b, size_t from, size_t to, bool check, bool zero) {
	for (size_t i = from; i < to; i++) {
		uint8_t want = zero ? 0 : pattern(b->seed, i);
		if (!check) {
			b->p[i] = want;
		} else if (b->p[i] != want) {
			die(zero ? "byte not zero" : "contents changed", b, i);
		}
	}
}

static void
span_do(const block_t *b, size_t from, size_t to, bool check, bool zero) {
	if (from < DENSE) {
		range_do(b, from, to < DENSE ? to : DENSE, check, zero);
		from = DENSE;
	}
	for (size_t pg = from & ~(size_t)4095; pg < to; pg += 4096) {
		size_t lo = pg < from ? from : pg;
		size_t hi = pg + 16 < to ? pg + 16 : to;
		range_do(b, lo, hi, check, zero);
		lo = pg + 4080 < from ? from : pg + 4080;
		hi = pg + 4096 < to ? pg + 4096 : to;
		range_do(b, lo, hi, check, zero);
	}
}

static int
lg_of(size_t align) {
	return align <= 1 ? 0 : __builtin_ctzl(align);
}

/* The flags that tell nallocx/sdallocx the block's alignment. */
static int
align_flags(const block_t *b) {
	return b->align > 1 ? MALLOCX_LG_ALIGN(lg_of(b->align)) : 0;
}

/* The checks every live block passes at any time. */
static size_t
block_check(const block_t *b) {
	size_t usize = A(sallocx)(b->p, 0);
	if (usize < b->req) {
		die("usable size below the request", b, usize);
	}
	if (A(malloc_usable_size)(b->p) != usize) {
		die("malloc_usable_size != sallocx", b, usize);
	}
	if (A(nallocx)(b->req, align_flags(b)) != usize) {
		die("nallocx != sallocx", b, usize);
	}
	if (b->align > 1 && ((uintptr_t)b->p & (b->align - 1)) != 0) {
		die("misaligned", b, 0);
	}
	/* Unaligned requests: max_align_t from 16 bytes, or what the quantum
	 * gives under --with-lg-quantum=3 (an object of 24 is 8-aligned). */
	size_t natural = b->req >= QUANTUM ? QUANTUM : 8;
	if (b->align == 0 && b->req >= 16 && ((uintptr_t)b->p & (natural - 1)) != 0) {
		die("not aligned to the quantum", b, 0);
	}
	span_do(b, 0, b->req, true, false);
	return usize;
}

/* Takes a new block into slot s: checks it and writes its pattern. */
static void
block_new(unsigned s, void *p, size_t req, size_t align, bool zeroed, uint8_t seed) {
	block_t *b = &slots[s];
	*b = (block_t){p, req, align, seed};
	size_t usize = A(sallocx)(p, 0);
	if (zeroed) {
		span_do(b, 0, usize, true, true);
	}
	span_do(b, 0, req, false, false);
	block_check(b);
	live_req += req;
	live_usize += usize;
}

static void
block_forget(unsigned s) {
	live_req -= slots[s].req;
	live_usize -= A(sallocx)(slots[s].p, 0);
	slots[s].p = NULL;
}

/* ---------------------------------------------------------------------- */
/* Flags. */

static int
tcache_pick(uint8_t v) {
	for (unsigned i = 0; i < NTCACHE; i++) {
		int t = tcaches[(v + i) % NTCACHE];
		if (t >= 0) {
			return t;
		}
	}
	return -1;
}

/* Random cache and arena flags (no alignment, no zeroing). */
static int
in_cache_flags(input_t *in) {
	uint8_t b = in_u8(in);
	int flags = 0;
	switch (b & 3) {
	case 1:
		flags |= MALLOCX_TCACHE_NONE;
		break;
	case 2: {
		int t = tcache_pick(b >> 4);
		if (t >= 0) {
			flags |= MALLOCX_TCACHE(t);
		}
		break;
	}
	default:
		break;
	}
	switch ((b >> 2) & 3) {
	case 2:
		flags |= MALLOCX_ARENA(0);
		break;
	case 3:
		flags |=
		    b & 0x80 ? MALLOCX_ARENA(heap_arena) : MALLOCX_ARENA(ext_arenas[(b >> 4) & 1]);
		break;
	default:
		break;
	}
	return flags;
}

/* Only the private heap may run out of memory: the last allocation failed
 * there with ENOMEM when the call named its arena (mallocx) or it was one
 * of the heap's own functions. */
static bool heap_op_failed;

static bool
heap_full_ok(int err) {
	bool ok = heap_op_failed && err == ENOMEM;
	heap_op_failed = false;
	return ok;
}

/* An alignment: 0 (none) or a power of two up to 4 MiB. */
static size_t
in_align(input_t *in) {
	uint8_t v = in_u8(in);
	unsigned lg = v % 32;
	return lg == 0 || lg > 22 ? 0 : (size_t)1 << lg;
}

/* ---------------------------------------------------------------------- */
/* Operations. */

static void
free_slot(unsigned s, uint8_t how, input_t *in) {
	block_t *b = &slots[s];
	block_check(b);
	size_t usize = A(sallocx)(b->p, 0);
	void *p = b->p;
	size_t req = b->req;
	int aflags = align_flags(b);
	block_forget(s);
	FUZZ_TRACE_PRINT("slot %u: free %p (req %zu, usize %zu) by method %u\n", s, p, req, usize,
	                 how % 4);
	switch (how % 4) {
	case 0:
		A(free)(p);
		break;
	case 1:
		A(dallocx)(p, in_cache_flags(in));
		break;
	case 2:
		A(sdallocx)(p, req, aflags | in_cache_flags(in));
		break;
	default:
		/* Any size from the request to the usable size. */
		A(sdallocx)(p, req + in_u32(in) % (usize - req + 1), aflags | in_cache_flags(in));
		break;
	}
}

static void
expect_enomem(void *p, const char *what) {
	if (p != NULL) {
		die(what, NULL, 0);
	}
	if (errno != ENOMEM) {
		die("impossible size: errno is not ENOMEM", NULL, (size_t)errno);
	}
}

/* Hides a value from the compiler, which warns about impossible sizes. */
static size_t
opaque(size_t v) {
	__asm__("" : "+r"(v));
	return v;
}

/* Sizes no call can serve: each must fail with ENOMEM, or EINVAL for
 * alignments posix_memalign refuses. */
static void
op_impossible(input_t *in) {
	uint32_t v = in_u32(in);
	size_t size = SIZE_MAX - (v % (2 * CHUNK));
	if (v & 1) {
		size = ((size_t)1 << 63) + v;
	}
	size = opaque(size);
	errno = 0;
	expect_enomem(A(malloc)(size), "malloc of an impossible size");
	expect_enomem(A(mallocx)(size, in_cache_flags(in)), "mallocx of an impossible size");
	expect_enomem(A(calloc)(size / 2 + 1, 2), "calloc overflow");
	expect_enomem(A(aligned_alloc)(64, size), "aligned_alloc of an impossible size");
	if (A(nallocx)(size, 0) != 0) {
		die("nallocx of an impossible size is not 0", NULL, size);
	}
	void *p = (void *)&v;
	if (A(posix_memalign)(&p, 64, size) != ENOMEM || p != (void *)&v) {
		die("posix_memalign of an impossible size", NULL, size);
	}
	size_t bad = (v % 2 == 0) ? 24 : (v % 8) + 1;
	if (bad != 8 && A(posix_memalign)(&p, bad, 16) != EINVAL) {
		die("posix_memalign accepted a bad alignment", NULL, bad);
	}
	if (p != (void *)&v) {
		die("posix_memalign wrote *memptr on failure", NULL, 0);
	}
}

static void
op_alloc(unsigned op, unsigned s, input_t *in) {
	size_t size = in_size(in);
	size_t align = 0;
	bool zeroed = false;
	uint8_t seed = in_u8(in);
	void *p = NULL;
	size_t req = size;
	if (live_req + size > LIVE_MAX) {
		return;
	}
	errno = 0;
	heap_op_failed = false;
	switch (op) {
	case 0:
		p = A(malloc)(size);
		break;
	case 1: {
		size_t n = 1 + in_u8(in) % 16;
		req = size / n * n;
		p = A(calloc)(n, size / n);
		zeroed = true;
		break;
	}
	case 2: {
		align = in_align(in);
		if (align < sizeof(void *)) {
			align = sizeof(void *);
		}
		if (A(posix_memalign)(&p, align, size) != 0) {
			die("posix_memalign failed", NULL, size);
		}
		break;
	}
	case 3:
		align = in_align(in);
		align = align == 0 ? 1 : align;
		p = A(aligned_alloc)(align, size);
		break;
	case 4:
		align = in_align(in);
		align = align == 0 ? 1 : align;
		p = A(memalign)(align, size);
		break;
	case 5:
		align = PAGE;
		p = A(valloc)(size);
		break;
	case 6:
		align = PAGE;
		req = (size + PAGE - 1) & ~(PAGE - 1);
		p = A(pvalloc)(size);
		break;
	default: {
		align = in_align(in);
		int flags = in_cache_flags(in) | (align != 0 ? MALLOCX_LG_ALIGN(lg_of(align)) : 0);
		if (in_u8(in) & 1) {
			flags |= MALLOCX_ZERO;
			zeroed = true;
		}
		heap_op_failed = ((unsigned)flags >> 20) == heap_arena + 1;
		p = A(mallocx)(size, flags);
		break;
	}
	}
	FUZZ_TRACE_PRINT("slot %u: alloc op %u, size %zu, align %zu -> %p\n", s, op, size, align,
	                 p);
	if (p == NULL && heap_full_ok(errno)) {
		return;
	}
	if (p == NULL) {
		die("allocation failed", NULL, size);
	}
	if (align == 1) {
		align = 0;
	}
	if (slots[s].p != NULL) {
		free_slot(s, in_u8(in), in);
	}
	block_new(s, p, req, align, zeroed, seed);
}

/* realloc, reallocarray, rallocx of slot s (NULL when empty). */
static void
op_realloc(unsigned op, unsigned s, input_t *in) {
	block_t *b = &slots[s];
	size_t size = in_size(in);
	if (live_req + size > LIVE_MAX) {
		return;
	}
	size_t old_req = b->p != NULL ? b->req : 0;
	size_t old_usize = b->p != NULL ? block_check(b) : 0;
	size_t align = 0;
	bool zero = false;
	void *p;
	errno = 0;
	heap_op_failed = false;
	if (op == 0) {
		if (size == 0 && b->p != NULL) {
			/* liballoc, like glibc: frees and returns NULL. */
			void *old = b->p;
			block_forget(s);
			if (A(realloc)(old, 0) != NULL) {
				die("realloc(p, 0) returned a block", NULL, 0);
			}
			return;
		}
		p = A(realloc)(b->p, size);
	} else if (op == 1) {
		size_t n = 1 + in_u8(in) % 8;
		size = size / n * n;
		if (size == 0 && b->p != NULL) {
			void *old = b->p;
			block_forget(s);
			if (A(reallocarray)(old, n, 0) != NULL) {
				die("reallocarray(p, n, 0) returned a block", NULL, 0);
			}
			return;
		}
		p = A(reallocarray)(b->p, n, size / n);
	} else {
		align = in_align(in);
		int flags = in_cache_flags(in) | (align != 0 ? MALLOCX_LG_ALIGN(lg_of(align)) : 0);
		if (in_u8(in) & 1) {
			flags |= MALLOCX_ZERO;
			zero = true;
		}
		FUZZ_TRACE_PRINT("slot %u: rallocx(%p, %zu, %#x)\n", s, (void *)b->p, size,
		                 (unsigned)flags);
		heap_op_failed = ((unsigned)flags >> 20) == heap_arena + 1;
		p = A(rallocx)(b->p, size, flags);
	}
	FUZZ_TRACE_PRINT(
	    "slot %u: resize op %u of %p (req %zu), size %zu, align %zu, zero %d -> %p\n", s, op,
	    (void *)b->p, old_req, size, align, zero, p);
	if (p == NULL && errno == ENOMEM && (in_heap(b->p) || heap_op_failed)) {
		/* A full heap: the block stays as it was (none, for a resize
		 * of an empty slot into the heap's arena). */
		if (b->p != NULL) {
			block_check(b);
		}
		return;
	}
	if (p == NULL) {
		die("resize failed", b, size);
	}
	uint8_t seed = b->p != NULL ? b->seed : in_u8(in);
	if (b->p != NULL) {
		live_req -= b->req;
		live_usize -= old_usize;
	}
	*b = (block_t){p, size, align, seed};
	size_t usize = A(sallocx)(p, 0);
	live_req += size;
	live_usize += usize;
	size_t keep = old_req < size ? old_req : size;
	span_do(b, 0, keep, true, false);
	if (zero) {
		span_do(b, old_usize, usize, true, true);
	}
	span_do(b, keep, size, false, false);
	block_check(b);
}

static void
op_xallocx(unsigned s, input_t *in) {
	block_t *b = &slots[s];
	if (b->p == NULL) {
		return;
	}
	size_t size = in_size(in);
	size_t extra = in_u8(in) & 1 ? in_size(in) : 0;
	if (live_req + size + extra > LIVE_MAX) {
		return;
	}
	size_t old_usize = block_check(b);
	int flags = in_u8(in) & 1 ? MALLOCX_ZERO : 0;
	flags |= align_flags(b);
	size_t usize = A(xallocx)(b->p, size == 0 ? 1 : size, extra, flags);
	FUZZ_TRACE_PRINT("slot %u: xallocx(%p (req %zu), %zu, %zu, %#x) -> %zu\n", s, (void *)b->p,
	                 b->req, size == 0 ? 1 : size, extra, (unsigned)flags, usize);
	if (A(sallocx)(b->p, 0) != usize) {
		die("xallocx result != sallocx", b, usize);
	}
	if (usize == old_usize) {
		block_check(b);
		return;
	}
	size_t keep = b->req < usize ? b->req : usize;
	span_do(b, 0, keep, true, false);
	if (flags & MALLOCX_ZERO) {
		span_do(b, old_usize, usize, true, true);
	}
	live_req -= b->req;
	live_usize += usize - old_usize;
	/* The block is now as if usize bytes had been asked. */
	b->req = usize;
	live_req += usize;
	span_do(b, keep, usize, false, false);
	block_check(b);
}

static void
ctl_check(int err, const char *name) {
	if (err != 0) {
		fprintf(stderr, "api fuzz: mallctl %s: error %d\n", name, err);
		abort();
	}
}

static size_t
ctl_size(const char *name) {
	size_t v;
	size_t len = sizeof(v);
	ctl_check(A(mallctl)(name, &v, &len, NULL, 0), name);
	return v;
}

static void
op_stats(void) {
	if (!have_stats) {
		/* --disable-stats: the counters are not there at all. */
		size_t v;
		size_t len = sizeof(v);
		if (A(mallctl)("stats.allocated", &v, &len, NULL, 0) != ENOENT) {
			die("stats.allocated answers without config.stats", NULL, 0);
		}
		return;
	}
	if (*thread_allocated - *thread_deallocated - thread_base != live_usize) {
		fprintf(stderr, "thread.allocated - thread.deallocated moved by %llu, live %zu\n",
		        (unsigned long long)(*thread_allocated - *thread_deallocated - thread_base),
		        live_usize);
		die("thread counters do not match the live blocks", NULL, 0);
	}
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);
	ctl_check(A(mallctl)("epoch", &epoch, &len, &epoch, sizeof(epoch)), "epoch");
	size_t allocated = ctl_size("stats.allocated");
	size_t active = ctl_size("stats.active");
	size_t mapped = ctl_size("stats.mapped");
	if (allocated < live_usize) {
		die("stats.allocated below the live bytes", NULL, allocated);
	}
	if (active < allocated) {
		die("stats.active below stats.allocated", NULL, active);
	}
	if (mapped < active) {
		die("stats.mapped below stats.active", NULL, mapped);
	}
}

static void
op_control(input_t *in) {
	uint8_t v = in_u8(in);
	unsigned t = v % NTCACHE;
	char name[64];
	unsigned what = (v >> 2) % 6;
	if (what <= 3 && !have_tcache) {
		return;
	}
	switch (what) {
	case 0:
		if (tcaches[t] < 0) {
			unsigned id;
			size_t len = sizeof(id);
			ctl_check(A(mallctl)("tcache.create", &id, &len, NULL, 0), "tcache.create");
			tcaches[t] = (int)id;
		}
		break;
	case 1:
		if (tcaches[t] >= 0) {
			unsigned id = (unsigned)tcaches[t];
			ctl_check(A(mallctl)("tcache.flush", NULL, NULL, &id, sizeof(id)),
			          "tcache.flush");
		}
		break;
	case 2:
		if (tcaches[t] >= 0) {
			unsigned id = (unsigned)tcaches[t];
			ctl_check(A(mallctl)("tcache.destroy", NULL, NULL, &id, sizeof(id)),
			          "tcache.destroy");
			tcaches[t] = -1;
		}
		break;
	case 3:
		ctl_check(A(mallctl)("thread.tcache.flush", NULL, NULL, NULL, 0),
		          "thread.tcache.flush");
		break;
	case 4:
		snprintf(name, sizeof(name), "arena.%u.%s", v & 0x40 ? ext_arenas[v >> 7] : 0,
		         v & 0x80 ? "purge" : "decay");
		ctl_check(A(mallctl)(name, NULL, NULL, NULL, 0), name);
		break;
	default:
		op_stats();
		break;
	}
}

/* Forgets every block of the heap (after a reset): none is freed, so the
 * thread counters keep counting them as live: move the base. */
static void
heap_forget_all(void) {
	for (unsigned s = 0; s < NSLOTS; s++) {
		if (in_heap(slots[s].p)) {
			thread_base += A(sallocx)(slots[s].p, 0);
			block_forget(s);
		}
	}
}

static void
op_heap(unsigned s, input_t *in) {
	uint8_t what = in_u8(in);
	block_t *b = &slots[s];
	size_t size = in_size(in);
	uint8_t seed = in_u8(in);
	void *p = NULL;
	size_t align = 0;
	bool zeroed = false;
	switch (what % 8) {
	case 0:
	case 1:
		p = A(alloc_heap_malloc)(heap, size);
		break;
	case 2: {
		size_t n = 1 + in_u8(in) % 16;
		size = size / n * n;
		p = A(alloc_heap_calloc)(heap, n, size / n);
		zeroed = true;
		break;
	}
	case 3:
		align = in_align(in);
		p = A(alloc_heap_aligned_alloc)(heap, align == 0 ? 1 : align, size);
		break;
	case 4:
		if (in_heap(b->p) && size != 0 && live_req + size <= LIVE_MAX) {
			size_t old_usize = block_check(b);
			size_t old_req = b->req;
			errno = 0;
			p = A(alloc_heap_realloc)(heap, b->p, size);
			FUZZ_TRACE_PRINT("slot %u: alloc_heap_realloc(%zu) -> %p\n", s, size, p);
			if (p == NULL) {
				if (errno != ENOMEM) {
					die("alloc_heap_realloc failed without ENOMEM", b, size);
				}
				return;
			}
			if (!in_heap(p)) {
				die("alloc_heap_realloc left the heap", b, size);
			}
			live_req += size - b->req;
			b->p = p;
			b->req = size;
			size_t usize = A(sallocx)(p, 0);
			live_usize += usize - old_usize;
			size_t keep = old_req < size ? old_req : size;
			span_do(b, 0, keep, true, false);
			span_do(b, keep, size, false, false);
		}
		return;
	case 5:
		if (in_heap(b->p)) {
			block_check(b);
			void *q = b->p;
			live_req -= b->req;
			live_usize -= A(sallocx)(q, 0);
			b->p = NULL;
			A(alloc_heap_free)(heap, q);
		}
		return;
	case 6:
		heap_forget_all();
		if (A(alloc_heap_reset)(heap) != 0) {
			die("alloc_heap_reset failed", NULL, 0);
		}
		return;
	default: {
		alloc_heap_stats_t st;
		if (A(alloc_heap_stats)(heap, &st) != 0) {
			die("alloc_heap_stats failed", NULL, 0);
		}
		size_t n = 0, bytes = 0;
		for (unsigned i = 0; i < NSLOTS; i++) {
			if (in_heap(slots[i].p)) {
				n++;
				bytes += A(sallocx)(slots[i].p, 0);
			}
		}
		if (st.nblocks != n || st.allocated != bytes || st.high_water < bytes ||
		    st.active < bytes || st.usable + st.overhead != st.size) {
			die("alloc_heap_stats does not match the heap's blocks", NULL,
			    st.allocated);
		}
		return;
	}
	}
	FUZZ_TRACE_PRINT("slot %u: heap op %u, size %zu -> %p\n", s, what % 8, size, p);
	if (p == NULL) {
		if (errno != ENOMEM) {
			die("heap allocation failed without ENOMEM", NULL, size);
		}
		return;
	}
	if (!in_heap(p)) {
		die("heap block outside the region", NULL, size);
	}
	if (slots[s].p != NULL) {
		free_slot(s, in_u8(in), in);
	}
	block_new(s, p, size, align <= 1 ? 0 : align, zeroed, seed);
}

static void
setup_once(void) {
	static bool done;
	if (done) {
		return;
	}
	done = true;
	size_t blen = sizeof(have_tcache);
	ctl_check(A(mallctl)("config.tcache", &have_tcache, &blen, NULL, 0), "config.tcache");
	for (unsigned i = 0; i < 2; i++) {
		size_t len = sizeof(ext_arenas[i]);
		ctl_check(A(mallctl)("arenas.extend", &ext_arenas[i], &len, NULL, 0),
		          "arenas.extend");
	}
	heap_region =
	    mmap(NULL, HEAP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	heap = heap_region == MAP_FAILED ? NULL : A(alloc_heap_create)(heap_region, HEAP_SIZE, 0);
	if (heap == NULL) {
		die("alloc_heap_create failed", NULL, HEAP_SIZE);
	}
	heap_arena = A(alloc_heap_arena)(heap);
	blen = sizeof(have_stats);
	ctl_check(A(mallctl)("config.stats", &have_stats, &blen, NULL, 0), "config.stats");
	if (!have_stats) {
		static uint64_t none;
		thread_allocated = thread_deallocated = &none;
		return;
	}
	size_t len = sizeof(thread_allocated);
	ctl_check(A(mallctl)("thread.allocatedp", &thread_allocated, &len, NULL, 0),
	          "thread.allocatedp");
	len = sizeof(thread_deallocated);
	ctl_check(A(mallctl)("thread.deallocatedp", &thread_deallocated, &len, NULL, 0),
	          "thread.deallocatedp");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	setup_once();
	for (unsigned i = 0; i < NTCACHE; i++) {
		tcaches[i] = -1;
	}
	thread_base = *thread_allocated - *thread_deallocated;
	input_t in = {data, size, false};
	/* At most 512 operations, so one input stays fast. */
	for (unsigned n = 0; n < 512 && !in.end; n++) {
		uint8_t op = in_u8(&in);
		unsigned s = in_u8(&in) % NSLOTS;
		if (in.end) {
			break;
		}
		switch (op % 16) {
		case 0:
		case 1:
		case 2:
		case 3:
		case 4:
		case 5:
		case 6:
			op_alloc(op % 16, s, &in);
			break;
		case 7:
		case 8:
			op_alloc(7, s, &in);
			break;
		case 9:
		case 10:
		case 11:
			op_realloc(op % 16 - 9, s, &in);
			break;
		case 12:
			op_xallocx(s, &in);
			break;
		case 13:
			if (slots[s].p != NULL) {
				free_slot(s, in_u8(&in), &in);
			}
			break;
		case 14:
			op_control(&in);
			break;
		default:
			if (op & 0x80) {
				op_impossible(&in);
			} else if (op & 0x40) {
				op_heap(s, &in);
			} else if (slots[s].p != NULL) {
				block_check(&slots[s]);
			}
			break;
		}
	}
	op_stats();
	input_t none = {NULL, 0, true};
	for (unsigned s = 0; s < NSLOTS; s++) {
		if (slots[s].p != NULL) {
			free_slot(s, (uint8_t)s, &none);
		}
	}
	for (unsigned i = 0; i < NTCACHE; i++) {
		if (tcaches[i] >= 0) {
			unsigned id = (unsigned)tcaches[i];
			ctl_check(A(mallctl)("tcache.destroy", NULL, NULL, &id, sizeof(id)),
			          "tcache.destroy");
		}
	}
	if (live_req != 0 || live_usize != 0) {
		die("model lost count", NULL, live_usize);
	}
	op_stats();
	return 0;
}
