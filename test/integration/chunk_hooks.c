/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * arena.<i>.chunk_hooks: a program can read an arena's chunk hooks, wrap
 * them, or replace them with its own memory source, and liballoc then gets,
 * purges and returns that arena's memory only through them.
 *
 * fork() while another thread is inside the purge hook must wait for that
 * purge: the child must be able to purge that arena afterwards.
 *
 * The "private heap" test hands an extended arena memory from a region the
 * test mapped itself and checks that small, large and huge allocations of
 * that arena all lie inside it.
 *
 * The retain test counts dalloc hook calls in children under
 * MALLOC_CONF=retain:true and retain:false: freed and purged chunks of a
 * hooked arena go back through dalloc in both (opt.retain is about
 * liballoc's own mappings), and arena.<i>.reset hands them back at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <alloc.h>

#include "test_child.h"

static unsigned
new_arena(void) {
	unsigned a;
	size_t len = sizeof(a);
	assert_int_equal(mallctl("arenas.extend", &a, &len, NULL, 0), 0);
	return a;
}

static int
hooks_rw(unsigned arena, chunk_hooks_t *old, const chunk_hooks_t *new_hooks) {
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.chunk_hooks", arena);
	size_t len = sizeof(*old);
	return mallctl(name, old, old != NULL ? &len : NULL, (void *)new_hooks,
	               new_hooks != NULL ? sizeof(*new_hooks) : 0);
}

/* ---- wrapping hooks: count calls, forward to the previous ones ---- */

static chunk_hooks_t prev_hooks;
static unsigned n_alloc, n_dalloc, n_purge, n_split, n_merge;

static void *
wrap_alloc(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit, unsigned ind) {
	n_alloc++;
	return prev_hooks.alloc(chunk, size, alignment, zero, commit, ind);
}
static bool
wrap_dalloc(void *chunk, size_t size, bool committed, unsigned ind) {
	n_dalloc++;
	return prev_hooks.dalloc(chunk, size, committed, ind);
}
static bool
wrap_commit(void *chunk, size_t size, size_t off, size_t len, unsigned ind) {
	return prev_hooks.commit(chunk, size, off, len, ind);
}
static bool
wrap_decommit(void *chunk, size_t size, size_t off, size_t len, unsigned ind) {
	return prev_hooks.decommit(chunk, size, off, len, ind);
}
static bool
wrap_purge(void *chunk, size_t size, size_t off, size_t len, unsigned ind) {
	n_purge++;
	return prev_hooks.purge(chunk, size, off, len, ind);
}
static bool
wrap_split(void *chunk, size_t size, size_t a, size_t b, bool committed, unsigned ind) {
	n_split++;
	return prev_hooks.split(chunk, size, a, b, committed, ind);
}
static bool
wrap_merge(void *a, size_t sa, void *b, size_t sb, bool committed, unsigned ind) {
	n_merge++;
	return prev_hooks.merge(a, sa, b, sb, committed, ind);
}

static void
test_read_and_wrap(void **state) {
	(void)state;
	unsigned a = new_arena();
	chunk_hooks_t def;
	assert_int_equal(hooks_rw(a, &def, NULL), 0);
	assert_non_null(def.alloc);
	assert_non_null(def.dalloc);
	assert_non_null(def.purge);
	assert_non_null(def.split);
	assert_non_null(def.merge);

	prev_hooks = def;
	chunk_hooks_t wrap = {wrap_alloc, wrap_dalloc, wrap_commit, wrap_decommit,
	                      wrap_purge, wrap_split,  wrap_merge};
	chunk_hooks_t old;
	assert_int_equal(hooks_rw(a, &old, &wrap), 0);
	assert_memory_equal(&old, &def, sizeof(old));
	chunk_hooks_t now;
	assert_int_equal(hooks_rw(a, &now, NULL), 0);
	assert_memory_equal(&now, &wrap, sizeof(now));

	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	n_alloc = 0;
	void *huge = mallocx(5u << 20, flags);
	void *large = mallocx(100000, flags);
	assert_non_null(huge);
	assert_non_null(large);
	memset(huge, 1, 5u << 20);
	assert_true(n_alloc >= 2);
	/* Freed and purged memory goes through the purge hook: at the frees
	 * already under MALLOC_CONF=decay_time:0, else at arena.<i>.purge. */
	n_purge = 0;
	dallocx(huge, flags);
	dallocx(large, flags);
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.purge", a);
	assert_int_equal(mallctl(name, NULL, NULL, NULL, 0), 0);
	assert_true(n_purge >= 1);
	/* A NULL member is refused and the hooks stay. */
	chunk_hooks_t bad = wrap;
	bad.purge = NULL;
	assert_int_equal(hooks_rw(a, NULL, &bad), EINVAL);
	assert_int_equal(hooks_rw(a, &now, NULL), 0);
	assert_memory_equal(&now, &wrap, sizeof(now));
	assert_int_equal(hooks_rw(a, NULL, &def), 0);
}

/* ---- fork while a purge is inside its hook ---- */

static int slow_purge_armed;
static int in_slow_purge;
static unsigned purge_arena;

static bool
slow_purge(void *chunk, size_t size, size_t off, size_t len, unsigned ind) {
	if (__atomic_exchange_n(&slow_purge_armed, 0, __ATOMIC_ACQ_REL)) {
		__atomic_store_n(&in_slow_purge, 1, __ATOMIC_RELEASE);
		usleep(200 * 1000);
	}
	return prev_hooks.purge(chunk, size, off, len, ind);
}

static void
arena_ctl(unsigned a, const char *leaf, void *newp, size_t newlen) {
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.%s", a, leaf);
	assert_int_equal(mallctl(name, NULL, NULL, newp, newlen), 0);
}

static void *
purger(void *arg) {
	(void)arg;
	arena_ctl(purge_arena, "purge", NULL, 0);
	return NULL;
}

/* Dirty pages of arena a; SIZE_MAX when they cannot be read. */
static size_t
arena_pdirty(unsigned a) {
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);
	if (mallctl("epoch", &epoch, &len, &epoch, len) != 0) {
		return SIZE_MAX;
	}
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", a);
	size_t pdirty;
	len = sizeof(pdirty);
	return mallctl(name, &pdirty, &len, NULL, 0) == 0 ? pdirty : SIZE_MAX;
}

static void
test_fork_during_purge(void **state) {
	(void)state;
	bool stats = false;
	size_t len = sizeof(stats);
	if (mallctl("config.stats", &stats, &len, NULL, 0) != 0 || !stats) {
		skip();
	}
	unsigned a = new_arena();
	purge_arena = a;
	/* Freed pages stay dirty until arena.<a>.purge. */
	ssize_t never = -1;
	arena_ctl(a, "decay_time", &never, sizeof(never));
	chunk_hooks_t def;
	assert_int_equal(hooks_rw(a, &def, NULL), 0);
	prev_hooks = def;
	chunk_hooks_t slow = def;
	slow.purge = slow_purge;
	assert_int_equal(hooks_rw(a, NULL, &slow), 0);

	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	size_t size = (size_t)1 << 20;
	void *p = mallocx(size, flags);
	assert_non_null(p);
	memset(p, 1, size);
	dallocx(p, flags);
	size_t page;
	size_t len2 = sizeof(page);
	assert_int_equal(mallctl("arenas.page", &page, &len2, NULL, 0), 0);
	assert_true(arena_pdirty(a) >= size / page);

	/* A thread purges; its first purge call sleeps in the hook, with the
	 * arena's lock dropped and the runs out of the lists. Fork then. */
	__atomic_store_n(&slow_purge_armed, 1, __ATOMIC_RELEASE);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, purger, NULL), 0);
	while (!__atomic_load_n(&in_slow_purge, __ATOMIC_ACQUIRE)) {
		usleep(1000);
	}
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child's arena must still purge, and the pages of the
		 * interrupted purge must not be lost. */
		void *q = mallocx(size, flags);
		if (q == NULL) {
			_exit(2);
		}
		memset(q, 2, size);
		dallocx(q, flags);
		char name[64];
		snprintf(name, sizeof(name), "arena.%u.purge", a);
		if (mallctl(name, NULL, NULL, NULL, 0) != 0) {
			_exit(3);
		}
		_exit(arena_pdirty(a) == 0 ? 0 : 1);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(arena_pdirty(a), 0);
	assert_int_equal(hooks_rw(a, NULL, &def), 0);
}

/* ---- a private heap: every chunk comes from one caller-mapped region ---- */

#define REGION_SIZE ((size_t)256 << 20)
static char *region;
static size_t region_used;

static void *
region_alloc(void *chunk, size_t size, size_t alignment, bool *zero, bool *commit, unsigned ind) {
	(void)ind;
	if (chunk != NULL) {
		return NULL;
	}
	uintptr_t base = (uintptr_t)region + region_used;
	uintptr_t p = (base + alignment - 1) & ~(uintptr_t)(alignment - 1);
	if (p + size > (uintptr_t)region + REGION_SIZE) {
		return NULL;
	}
	region_used = p + size - (uintptr_t)region;
	*zero = true;
	*commit = true;
	return (void *)p;
}
static bool
region_dalloc(void *chunk, size_t size, bool committed, unsigned ind) {
	(void)chunk, (void)size, (void)committed, (void)ind;
	return true; /* keep it: the region is the program's */
}
static bool
region_commit(void *chunk, size_t size, size_t off, size_t len, unsigned ind) {
	(void)chunk, (void)size, (void)off, (void)len, (void)ind;
	return false;
}
static bool
region_decommit(void *chunk, size_t size, size_t off, size_t len, unsigned ind) {
	(void)chunk, (void)size, (void)off, (void)len, (void)ind;
	return true;
}
static bool
region_purge(void *chunk, size_t size, size_t off, size_t len, unsigned ind) {
	(void)size, (void)ind;
	return madvise((char *)chunk + off, len, MADV_DONTNEED) != 0;
}
static bool
region_split(void *chunk, size_t size, size_t a, size_t b, bool committed, unsigned ind) {
	(void)chunk, (void)size, (void)a, (void)b, (void)committed, (void)ind;
	return false;
}
static bool
region_merge(void *a, size_t sa, void *b, size_t sb, bool committed, unsigned ind) {
	(void)a, (void)sa, (void)b, (void)sb, (void)committed, (void)ind;
	return false;
}

static bool
in_region(const void *p, size_t size) {
	return (const char *)p >= region && (const char *)p + size <= region + REGION_SIZE;
}

static void
test_private_heap(void **state) {
	(void)state;
	region =
	    mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(region != MAP_FAILED);
	unsigned a = new_arena();
	chunk_hooks_t mine = {region_alloc, region_dalloc, region_commit, region_decommit,
	                      region_purge, region_split,  region_merge};
	assert_int_equal(hooks_rw(a, NULL, &mine), 0);
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	static const size_t sizes[] = {8, 100, 3000, 20000, 300000, 3u << 20, 9u << 20};
	void *ps[sizeof(sizes) / sizeof(sizes[0])];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ps[i] = mallocx(sizes[i], flags);
		assert_non_null(ps[i]);
		assert_true(in_region(ps[i], sizes[i]));
		memset(ps[i], (int)i, sizes[i]);
	}
	/* Reuse stays inside the region too. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		dallocx(ps[i], flags);
		void *q = mallocx(sizes[i], flags);
		assert_true(in_region(q, sizes[i]));
		dallocx(q, flags);
	}
	assert_true(region_used > 0);
}

/* ---- dalloc under opt.retain (children) ---- */

/* Prints the dalloc calls after free + purge, and after reset. */
static int
child_retain(void) {
	unsigned a = new_arena();
	chunk_hooks_t def;
	if (hooks_rw(a, &def, NULL) != 0) {
		return 2;
	}
	prev_hooks = def;
	chunk_hooks_t wrap = {wrap_alloc, wrap_dalloc, wrap_commit, wrap_decommit,
	                      wrap_purge, wrap_split,  wrap_merge};
	if (hooks_rw(a, NULL, &wrap) != 0) {
		return 2;
	}
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	void *huge = mallocx(6u << 20, flags);
	void *large = mallocx(200000, flags);
	if (huge == NULL || large == NULL) {
		return 2;
	}
	memset(huge, 1, 6u << 20);
	n_dalloc = 0;
	dallocx(huge, flags);
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.purge", a);
	if (mallctl(name, NULL, NULL, NULL, 0) != 0) {
		return 2;
	}
	unsigned at_purge = n_dalloc;
	n_dalloc = 0;
	snprintf(name, sizeof(name), "arena.%u.reset", a);
	if (mallctl(name, NULL, NULL, NULL, 0) != 0) {
		return 2;
	}
	printf("purge %u reset %u\n", at_purge, n_dalloc);
	return 0;
}

static void
test_dalloc_under_retain(void **state) {
	(void)state;
	if (test_child_under_valgrind()) {
		skip();
	}
	static const char *confs[] = {"retain:true", "retain:false", NULL};
	for (int i = 0; i < 3; i++) {
		test_child_t c;
		assert_true(test_child_run(confs[i], "retain", &c));
		if (!test_child_ok(&c)) {
			fail_msg("MALLOC_CONF=%s: status 0x%x\n%s%s",
			         confs[i] ? confs[i] : "(unset)", c.status, c.out, c.err);
		}
		unsigned at_purge = 0, at_reset = 0;
		assert_int_equal(sscanf(c.out, "purge %u reset %u", &at_purge, &at_reset), 2);
		print_message("# MALLOC_CONF=%s: dalloc calls: %u at purge, %u at reset\n",
		              confs[i] ? confs[i] : "(unset)", at_purge, at_reset);
		/* The huge span at purge; the large block's chunk at reset. */
		assert_true(at_purge >= 1);
		assert_true(at_reset >= 1);
	}
}

int
main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return strcmp(argv[2], "retain") == 0 ? child_retain() : 2;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_and_wrap),
	    cmocka_unit_test(test_private_heap),
	    cmocka_unit_test(test_fork_during_purge),
	    cmocka_unit_test(test_dalloc_under_retain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
