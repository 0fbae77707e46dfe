/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jemalloc 5's extent hooks, as a program built against jemalloc 5.3's own
 * header (Debian's <jemalloc/jemalloc.h>, package libjemalloc-dev) uses
 * them, linked with -lalloc only, so every call lands in liballoc:
 *
 *   - arena.0.extent_hooks reads the default hooks, every member set and
 *     callable directly (a chunk mapped, purged lazily and forcibly, split,
 *     merged, given back);
 *   - arenas.create with hooks that wrap the defaults: small, large and huge
 *     allocations go through alloc; purging goes through purge and hands the
 *     chunks back through dalloc; arena.<i>.extent_hooks reads the wrapper
 *     back and can swap it; NULL split/merge members keep liballoc from
 *     shrinking or growing a huge block in place;
 *   - hooks that fail: alloc returning NULL makes mallocx fail with the
 *     arena's flags; dalloc returning true keeps the memory with the arena
 *     until arena.<i>.destroy hands it to destroy;
 *   - hooks that feed an arena from a region the test mapped itself: every
 *     allocation of the arena lies inside it, and destroy returns it all;
 *   - dalloc calls counted in children under MALLOC_CONF=retain:true and
 *     retain:false: liballoc gives a hooked arena's chunks back at purge in
 *     both (opt.retain is about its own mappings only).
 *
 * Skipped (exit 77) when the header is not installed or the process
 * allocator has no mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "test_jemalloc.h"
#ifdef HAVE_JEMALLOC_H

#include "test_child.h"

#define MiB ((size_t)1 << 20)

static int failures;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                     \
		}                                                                       \
	} while (0)

/* The default hooks, read from arena 0. */
static extent_hooks_t *def;

static void
hooks_name(char *buf, size_t len, unsigned arena) {
	snprintf(buf, len, "arena.%u.extent_hooks", arena);
}

static extent_hooks_t *
hooks_read(unsigned arena) {
	char name[64];
	hooks_name(name, sizeof(name), arena);
	extent_hooks_t *h = NULL;
	size_t len = sizeof(h);
	CHECK(mallctl(name, &h, &len, NULL, 0) == 0);
	return h;
}

static int
hooks_write(unsigned arena, extent_hooks_t *h) {
	char name[64];
	hooks_name(name, sizeof(name), arena);
	return mallctl(name, NULL, NULL, &h, sizeof(h));
}

static unsigned
arena_create(extent_hooks_t *h) {
	unsigned a = 0;
	size_t len = sizeof(a);
	CHECK(mallctl("arenas.create", &a, &len, h != NULL ? &h : NULL,
	              h != NULL ? sizeof(h) : 0) == 0);
	return a;
}

static void
arena_do(unsigned arena, const char *what) {
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.%s", arena, what);
	CHECK(mallctl(name, NULL, NULL, NULL, 0) == 0);
}

/* ---- wrapping hooks: count calls, forward to the defaults ---- */

static unsigned n_alloc, n_dalloc, n_destroy, n_commit, n_decommit, n_lazy, n_forced, n_split,
    n_merge;

static void
counts_reset(void) {
	n_alloc = n_dalloc = n_destroy = n_commit = n_decommit = n_lazy = n_forced = n_split =
	    n_merge = 0;
}

static void *
wrap_alloc(extent_hooks_t *h, void *addr, size_t size, size_t align, bool *zero, bool *commit,
           unsigned ind) {
	(void)h;
	n_alloc++;
	return def->alloc(def, addr, size, align, zero, commit, ind);
}
static bool
wrap_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned ind) {
	(void)h;
	n_dalloc++;
	return def->dalloc(def, addr, size, committed, ind);
}
static void
wrap_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned ind) {
	(void)h;
	n_destroy++;
	def->destroy(def, addr, size, committed, ind);
}
static bool
wrap_commit(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len, unsigned ind) {
	(void)h;
	n_commit++;
	return def->commit(def, addr, size, off, len, ind);
}
static bool
wrap_decommit(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len, unsigned ind) {
	(void)h;
	n_decommit++;
	return def->decommit(def, addr, size, off, len, ind);
}
static bool
wrap_lazy(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len, unsigned ind) {
	(void)h;
	n_lazy++;
	return def->purge_lazy(def, addr, size, off, len, ind);
}
static bool
wrap_forced(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len, unsigned ind) {
	(void)h;
	n_forced++;
	return def->purge_forced(def, addr, size, off, len, ind);
}
static bool
wrap_split(extent_hooks_t *h, void *addr, size_t size, size_t a, size_t b, bool committed,
           unsigned ind) {
	(void)h;
	n_split++;
	return def->split(def, addr, size, a, b, committed, ind);
}
static bool
wrap_merge(extent_hooks_t *h, void *a, size_t sa, void *b, size_t sb, bool committed,
           unsigned ind) {
	(void)h;
	n_merge++;
	return def->merge(def, a, sa, b, sb, committed, ind);
}

static extent_hooks_t wrap = {wrap_alloc, wrap_dalloc, wrap_destroy, wrap_commit, wrap_decommit,
                              wrap_lazy,  wrap_forced, wrap_split,   wrap_merge};

/* The defaults called directly, as a wrapper would. */
static void
test_defaults(void) {
	def = hooks_read(0);
	CHECK(def != NULL);
	if (def == NULL)
		return;
	CHECK(def->alloc != NULL && def->dalloc != NULL && def->destroy != NULL);
	CHECK(def->commit != NULL && def->decommit != NULL);
	CHECK(def->purge_lazy != NULL && def->purge_forced != NULL);
	CHECK(def->split != NULL && def->merge != NULL);
	/* Every arena starts on the same defaults. */
	unsigned a = arena_create(NULL);
	CHECK(hooks_read(a) == def);

	bool zero = false, commit = false;
	char *c = def->alloc(def, NULL, 4 * MiB, 2 * MiB, &zero, &commit, 0);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK(((uintptr_t)c & (2 * MiB - 1)) == 0);
	CHECK(zero && commit);
	memset(c, 7, 4 * MiB);
	CHECK(!def->commit(def, c, 4 * MiB, 0, 4 * MiB, 0));
	CHECK(!def->purge_forced(def, c, 4 * MiB, 0, 2 * MiB, 0));
	CHECK(c[0] == 0 && c[2 * MiB - 1] == 0 && c[2 * MiB] == 7);
	/* MADV_FREE may be missing (old kernels): true then, and no harm. */
	(void)def->purge_lazy(def, c, 4 * MiB, 2 * MiB, 2 * MiB, 0);
	CHECK(!def->split(def, c, 4 * MiB, 2 * MiB, 2 * MiB, true, 0));
	CHECK(!def->merge(def, c, 2 * MiB, c + 2 * MiB, 2 * MiB, true, 0));
	CHECK(!def->dalloc(def, c, 2 * MiB, true, 0));
	def->destroy(def, c + 2 * MiB, 2 * MiB, true, 0);
}

/* An arena made with the wrapper; everything goes through it. */
static void
test_wrap(void) {
	unsigned a = arena_create(&wrap);
	CHECK(hooks_read(a) == &wrap);
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	counts_reset();
	void *small = mallocx(64, flags);
	void *large = mallocx(100000, flags);
	void *huge = mallocx(5 * MiB, flags);
	CHECK(small != NULL && large != NULL && huge != NULL);
	CHECK(n_alloc >= 2);
	memset(huge, 1, 5 * MiB);
	/* Shrinking a huge block in place splits its span: asked first. */
	size_t got = xallocx(huge, 3 * MiB, 0, flags);
	CHECK(got == 3 * MiB);
	CHECK(n_split >= 1);
	dallocx(small, flags);
	dallocx(large, flags);
	dallocx(huge, flags);
	arena_do(a, "purge");
	CHECK(n_forced + n_lazy >= 1);
	/* The freed huge span goes back to the program at purge. */
	CHECK(n_dalloc >= 1);
	CHECK(n_destroy == 0);

	/* Swapped for the defaults and back; the old value is returned. */
	extent_hooks_t *old = NULL;
	size_t len = sizeof(old);
	char name[64];
	hooks_name(name, sizeof(name), a);
	CHECK(mallctl(name, &old, &len, &def, sizeof(def)) == 0);
	CHECK(old == &wrap);
	CHECK(hooks_read(a) == def);
	CHECK(hooks_write(a, &wrap) == 0);
	/* No hooks, or hooks without alloc, are refused. */
	extent_hooks_t *null_hooks = NULL;
	CHECK(mallctl(name, NULL, NULL, &null_hooks, sizeof(null_hooks)) == EINVAL);
	extent_hooks_t no_alloc = wrap;
	no_alloc.alloc = NULL;
	CHECK(hooks_write(a, &no_alloc) == EINVAL);
	extent_hooks_t *p_no_alloc = &no_alloc;
	unsigned b;
	len = sizeof(b);
	CHECK(mallctl("arenas.create", &b, &len, &p_no_alloc, sizeof(p_no_alloc)) == EINVAL);
	CHECK(hooks_read(a) == &wrap);

	counts_reset();
	void *again = mallocx(5 * MiB, flags);
	CHECK(again != NULL);
	dallocx(again, flags);
	arena_do(a, "destroy");
	/* The defaults' dalloc never refuses: nothing is left to destroy. */
	CHECK(n_destroy == 0);
}

/* split and merge NULL: liballoc must not cut or join spans. */
static void
test_no_split_merge(void) {
	extent_hooks_t h = wrap;
	h.split = NULL;
	h.merge = NULL;
	unsigned a = arena_create(&h);
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	char *p = mallocx(4 * MiB, flags);
	CHECK(p != NULL);
	if (p == NULL)
		return;
	/* Neither shrinks nor grows in place. */
	CHECK(xallocx(p, 2 * MiB, 0, flags) == 4 * MiB);
	CHECK(xallocx(p, 6 * MiB, 0, flags) == 4 * MiB);
	memset(p, 3, 4 * MiB);
	/* A growing realloc copies, contents kept. */
	char *q = rallocx(p, 8 * MiB, flags);
	CHECK(q != NULL && q[0] == 3 && q[4 * MiB - 1] == 3);
	dallocx(q, flags);
	arena_do(a, "destroy");
}

/* ---- hooks that fail ---- */

static void *
fail_alloc(extent_hooks_t *h, void *addr, size_t size, size_t align, bool *zero, bool *commit,
           unsigned ind) {
	(void)h, (void)addr, (void)size, (void)align, (void)zero, (void)commit, (void)ind;
	n_alloc++;
	return NULL;
}

static bool
keep_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned ind) {
	(void)h, (void)addr, (void)size, (void)committed, (void)ind;
	n_dalloc++;
	return true;
}

static void
test_failing(void) {
	extent_hooks_t h = wrap;
	h.alloc = fail_alloc;
	unsigned a = arena_create(&h);
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	counts_reset();
	errno = 0;
	CHECK(mallocx(64, flags) == NULL);
	CHECK(mallocx(5 * MiB, flags) == NULL);
	CHECK(n_alloc >= 2);

	/* dalloc refuses: the arena keeps its memory, destroy gets it. */
	h = wrap;
	h.dalloc = keep_dalloc;
	a = arena_create(&h);
	flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	counts_reset();
	void *p = mallocx(5 * MiB, flags);
	void *s = mallocx(4096, flags);
	CHECK(p != NULL && s != NULL);
	dallocx(p, flags);
	dallocx(s, flags);
	arena_do(a, "purge");
	CHECK(n_dalloc >= 1);
	CHECK(n_destroy == 0);
	/* Retained, so reused: no new alloc call. */
	unsigned allocs = n_alloc;
	p = mallocx(5 * MiB, flags);
	CHECK(p != NULL);
	CHECK(n_alloc == allocs);
	dallocx(p, flags);
	arena_do(a, "destroy");
	CHECK(n_destroy >= 1);

	/* dalloc NULL: the same, jemalloc 5's way of opting out. */
	h = wrap;
	h.dalloc = NULL;
	a = arena_create(&h);
	flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	counts_reset();
	p = mallocx(5 * MiB, flags);
	CHECK(p != NULL);
	dallocx(p, flags);
	arena_do(a, "destroy");
	CHECK(n_destroy >= 1);
}

/* ---- an arena fed from a region the test mapped itself ---- */

#define REGION_SIZE (64 * MiB)
static char *region;
static size_t region_used;
static unsigned region_destroyed;

static void *
region_alloc(extent_hooks_t *h, void *addr, size_t size, size_t align, bool *zero, bool *commit,
             unsigned ind) {
	(void)h, (void)ind;
	if (addr != NULL)
		return NULL;
	uintptr_t start = ((uintptr_t)region + region_used + align - 1) & ~(uintptr_t)(align - 1);
	if (start + size > (uintptr_t)region + REGION_SIZE)
		return NULL;
	region_used = start + size - (uintptr_t)region;
	/* Fresh anonymous memory: zeroed. */
	*zero = true;
	*commit = true;
	return (void *)start;
}

static bool
region_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned ind) {
	(void)h, (void)addr, (void)size, (void)committed, (void)ind;
	/* The region is ours to unmap: keep every span with the arena. */
	return true;
}

static void
region_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned ind) {
	(void)h, (void)committed, (void)ind;
	CHECK((char *)addr >= region && (char *)addr + size <= region + REGION_SIZE);
	region_destroyed++;
}

static bool
region_purge(extent_hooks_t *h, void *addr, size_t size, size_t off, size_t len, unsigned ind) {
	(void)h, (void)size, (void)ind;
	return madvise((char *)addr + off, len, MADV_DONTNEED) != 0;
}

static bool
region_yes(extent_hooks_t *h, void *addr, size_t size, size_t a, size_t b, bool committed,
           unsigned ind) {
	(void)h, (void)addr, (void)size, (void)a, (void)b, (void)committed, (void)ind;
	return false;
}

static bool
region_merge(extent_hooks_t *h, void *a, size_t sa, void *b, size_t sb, bool committed,
             unsigned ind) {
	(void)h, (void)a, (void)sa, (void)b, (void)sb, (void)committed, (void)ind;
	return false;
}

static extent_hooks_t region_hooks = {region_alloc, region_dalloc, region_destroy, NULL, NULL, NULL,
                                      region_purge, region_yes,    region_merge};

static bool
in_region(const void *p, size_t size) {
	return (const char *)p >= region && (const char *)p + size <= region + REGION_SIZE;
}

static void
test_region(void) {
	region =
	    mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(region != MAP_FAILED);
	if (region == MAP_FAILED)
		return;
	unsigned a = arena_create(&region_hooks);
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	static void *ptrs[3000];
	size_t sizes[3] = {48, 20000, 3 * MiB};
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3000; i++) {
			size_t size = sizes[i % 1000 == 999 ? 2 : i % 2];
			if (i % 1000 == 999 && i > 999)
				size = 64;
			ptrs[i] = mallocx(size, flags);
			CHECK(ptrs[i] != NULL && in_region(ptrs[i], size));
			if (ptrs[i] != NULL)
				memset(ptrs[i], i, size < 4096 ? size : 4096);
		}
		for (int i = 0; i < 3000; i++)
			dallocx(ptrs[i], flags);
		arena_do(a, "purge");
	}
	/* Everything came from the region; destroy hands all of it back. */
	CHECK(region_used > 0);
	arena_do(a, "destroy");
	CHECK(region_destroyed >= 1);
	/* Still usable after destroy, from the same region. */
	void *p = mallocx(100, flags);
	CHECK(p != NULL && in_region(p, 100));
	dallocx(p, flags);
}

/* ---- dalloc under opt.retain, in children ---- */

static int
child_retain(void) {
	def = hooks_read(0);
	unsigned a = arena_create(&wrap);
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	counts_reset();
	void *huge = mallocx(6 * MiB, flags);
	void *large = mallocx(200000, flags);
	if (huge == NULL || large == NULL)
		return 2;
	memset(huge, 1, 6 * MiB);
	dallocx(large, flags);
	dallocx(huge, flags);
	arena_do(a, "purge");
	printf("dalloc %u\n", n_dalloc);
	return failures != 0;
}

static void
test_retain(void) {
	static const char *confs[] = {"retain:true", "retain:false", NULL};
	if (test_child_under_valgrind()) {
		printf("# under valgrind: the retain children are skipped\n");
		return;
	}
	for (int i = 0; i < 3; i++) {
		test_child_t c;
		CHECK(test_child_run(confs[i], "retain", &c));
		CHECK(test_child_ok(&c));
		unsigned n = 0;
		CHECK(sscanf(c.out, "dalloc %u", &n) == 1);
		printf("# MALLOC_CONF=%s: %u dalloc hook calls after purge\n",
		       confs[i] != NULL ? confs[i] : "(unset)", n);
		CHECK(n >= 1);
	}
}

int
main(int argc, char **argv) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		if (strcmp(argv[2], "retain") == 0)
			return child_retain();
		return 2;
	}
	test_defaults();
	if (def == NULL)
		return 1;
	test_wrap();
	test_no_split_merge();
	test_failing();
	test_region();
	test_retain();
	if (failures != 0) {
		printf("%d checks failed\n", failures);
		return 1;
	}
	printf("extent hooks: all checks passed\n");
	return 0;
}

#endif
