/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Private heaps (alloc_heap_*): blocks stay in the region, free() and
 * friends find a block's heap, reset and destroy, ENOMEM and recovery,
 * bad input, MALLOCX_ARENA, 1,024 heaps at once, the overhead bound, and
 * ALLOC_HEAP_SHARED between two unrelated processes (the test re-executes
 * itself: `heap child-share NAME ADDR` and `heap child-spin NAME ADDR`),
 * including one killed with SIGKILL while it allocates.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "alloc.h"

#define MiB ((size_t)1 << 20)

#define H_CREATE  ALLOC_API(alloc_heap_create)
#define H_ATTACH  ALLOC_API(alloc_heap_attach)
#define H_MALLOC  ALLOC_API(alloc_heap_malloc)
#define H_CALLOC  ALLOC_API(alloc_heap_calloc)
#define H_REALLOC ALLOC_API(alloc_heap_realloc)
#define H_ALIGNED ALLOC_API(alloc_heap_aligned_alloc)
#define H_FREE    ALLOC_API(alloc_heap_free)
#define H_ARENA   ALLOC_API(alloc_heap_arena)
#define H_RESET   ALLOC_API(alloc_heap_reset)
#define H_DESTROY ALLOC_API(alloc_heap_destroy)
#define H_STATS   ALLOC_API(alloc_heap_stats)
#define P_MALLOC  ALLOC_API(malloc)
#define P_FREE    ALLOC_API(free)
#define P_REALLOC ALLOC_API(realloc)
#define P_USIZE   ALLOC_API(malloc_usable_size)

size_t P_USIZE(const void *ptr);

/* Under valgrind (its preload library is in LD_PRELOAD) times stretch and
 * /proc/self/exe is valgrind's launcher: the reset time is only printed and
 * the two-process test is skipped. */
static bool
under_valgrind(void) {
	const char *p = getenv("LD_PRELOAD");
	return p != NULL && strstr(p, "vgpreload") != NULL;
}

/* arenas.page: the regions' starts and the page counts below are in it. */
static size_t
page_size(void) {
	size_t page = 0, len = sizeof(page);
	assert_int_equal(ALLOC_API(mallctl)("arenas.page", &page, &len, NULL, 0), 0);
	return page;
}

static char *
region_map(size_t size) {
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static bool
in_region(const void *p, const char *r, size_t size) {
	return (const char *)p >= r && (const char *)p < r + size;
}

static void
test_basic(void **state) {
	(void)state;
	size_t size = 16 * MiB;
	char *r = region_map(size);
	alloc_heap_t *h = H_CREATE(r, size, 0);
	assert_non_null(h);
	void *blocks[64];
	for (int i = 0; i < 64; i++) {
		size_t n = (size_t)1 << (i % 20);
		blocks[i] = H_MALLOC(h, n);
		assert_non_null(blocks[i]);
		assert_true(in_region(blocks[i], r, size));
		memset(blocks[i], i, n);
		assert_true(P_USIZE(blocks[i]) >= n);
	}
	char *z = H_CALLOC(h, 100, 10);
	assert_true(in_region(z, r, size));
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(z[i], 0);
	}
	void *a = H_ALIGNED(h, 4096, 100);
	assert_true(in_region(a, r, size) && ((uintptr_t)a & 4095) == 0);
	/* realloc, through the heap API and through realloc(), stays. */
	char *g = H_REALLOC(h, blocks[3], 300000);
	assert_true(in_region(g, r, size));
	assert_int_equal(g[7], 3);
	g = P_REALLOC(g, 5);
	assert_true(in_region(g, r, size));
	assert_int_equal(g[4], 3);
	/* Contents of the others intact. */
	for (int i = 0; i < 64; i++) {
		if (i != 3) {
			assert_int_equal(((unsigned char *)blocks[i])[0], i);
		}
	}
	/* free(), dallocx(), sdallocx() and alloc_heap_free all work. */
	ALLOC_API(dallocx)(blocks[0], 0);
	ALLOC_API(sdallocx)(blocks[1], 2, 0);
	P_FREE(g);
	for (int i = 4; i < 64; i++) {
		H_FREE(h, blocks[i]);
	}
	H_FREE(h, blocks[2]);
	H_FREE(h, z);
	H_FREE(h, a);
	H_FREE(h, NULL);
	alloc_heap_stats_t st;
	assert_int_equal(H_STATS(h, &st), 0);
	assert_int_equal(st.allocated, 0);
	assert_int_equal(st.nblocks, 0);
	assert_true(st.high_water >= 300000);
	assert_int_equal(H_DESTROY(h), 0);
	munmap(r, size);
}

/* The 64 MiB figures of doc/heap.md: overhead under 5% wherever the
 * region starts relative to chunk boundaries (with 4 KiB pages; each
 * chunk's header takes at least a page, so with larger pages the bound
 * grows by a page less 4 KiB per chunk: 64 KiB pages, about 6.2%). */
static void
test_overhead(void **state) {
	(void)state;
	size_t size = 64 * MiB;
	size_t page = page_size();
	char *big = region_map(size + 4 * MiB);
	char *aligned = (char *)(((uintptr_t)big + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
	char *bases[] = {aligned, aligned + page, aligned + MiB, aligned + 2 * MiB - 65536,
	                 aligned + 2 * MiB - page};
	for (int i = 0; i < 5; i++) {
		alloc_heap_t *h = H_CREATE(bases[i], size, 0);
		assert_non_null(h);
		alloc_heap_stats_t st;
		assert_int_equal(H_STATS(h, &st), 0);
		print_message(
		    "64 MiB region at chunk offset %zu KiB: overhead %zu bytes (%.2f%%)\n",
		    (size_t)(bases[i] - aligned) >> 10, st.overhead,
		    100.0 * (double)st.overhead / (double)size);
		assert_true(st.overhead < size / 20 + (size / (2 * MiB)) * (page - 4096));
		assert_int_equal(H_DESTROY(h), 0);
	}
	munmap(big, size + 4 * MiB);
}

static void
test_bad_input(void **state) {
	(void)state;
	char *r = region_map(8 * MiB);
	errno = 0;
	assert_null(H_CREATE(r, 4 * MiB - 4096, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(H_CREATE(r + 100, 6 * MiB, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(H_CREATE(NULL, 6 * MiB, 0));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(H_CREATE(r, 6 * MiB, 0x80));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(H_ATTACH(r));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(H_ATTACH(r + 4096));
	assert_int_equal(errno, EINVAL);
	alloc_heap_t *h = H_CREATE(r, 8 * MiB, 0);
	assert_non_null(h);
	errno = 0;
	assert_null(H_CREATE(r, 8 * MiB, 0));
	assert_int_equal(errno, EBUSY);
	/* Nor over part of it, at another base. */
	errno = 0;
	assert_null(H_CREATE(r + 4 * MiB, 4 * MiB, 0));
	assert_int_equal(errno, EBUSY);
	/* Attach in the same process gives the same heap. */
	assert_ptr_equal(H_ATTACH(r), h);
	errno = 0;
	assert_null(H_ALIGNED(h, 24, 100));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	/* volatile: the compiler would warn about the overflow it sees. */
	volatile size_t huge_n = SIZE_MAX / 2;
	assert_null(H_CALLOC(h, huge_n, 3));
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(H_DESTROY(h), 0);
	/* After destroy the handle is no heap. */
	assert_int_equal(H_RESET(h), EINVAL);
	assert_int_equal(H_DESTROY(h), EINVAL);
	errno = 0;
	assert_null(H_ATTACH(r));
	assert_int_equal(errno, EINVAL);
	munmap(r, 8 * MiB);
}

/* A block of another heap (or of the process heap) given to
 * alloc_heap_free is reported like any invalid free. */
static void
test_foreign_free(void **state) {
	(void)state;
	for (int which = 0; which < 2; which++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int devnull = open("/dev/null", O_WRONLY);
			dup2(devnull, 2);
			char *r1 = region_map(8 * MiB);
			char *r2 = region_map(8 * MiB);
			alloc_heap_t *h1 = H_CREATE(r1, 8 * MiB, 0);
			alloc_heap_t *h2 = H_CREATE(r2, 8 * MiB, 0);
			void *p = which == 0 ? H_MALLOC(h2, 64) : P_MALLOC(64);
			H_FREE(h1, p);
			_exit(0);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	}
}

static void
test_full_then_recover(void **state) {
	(void)state;
	size_t size = 8 * MiB;
	char *r = region_map(size);
	alloc_heap_t *h = H_CREATE(r, size, 0);
	assert_non_null(h);
	static void *p[4096];
	size_t n = 0;
	errno = 0;
	while (n < 4096 && (p[n] = H_MALLOC(h, 8192)) != NULL) {
		assert_true(in_region(p[n], r, size));
		n++;
	}
	assert_true(n > 100 && n < 4096);
	assert_int_equal(errno, ENOMEM);
	/* Never the process heap: mallocx into the arena fails too. */
	assert_null(ALLOC_API(mallocx)(8192, MALLOCX_ARENA(H_ARENA(h))));
	assert_null(H_MALLOC(h, 3 * MiB));
	for (size_t i = 0; i < n; i += 2) {
		H_FREE(h, p[i]);
	}
	void *q = H_MALLOC(h, 8192);
	assert_true(in_region(q, r, size));
	assert_int_equal(H_RESET(h), 0);
	/* Small blocks freed into the heap's cache do not stand in the way
	 * of other sizes once the heap is full. */
	static void *small[100000];
	size_t m = 0;
	while (m < 100000 && (small[m] = H_MALLOC(h, 64)) != NULL) {
		m++;
	}
	assert_true(m > 1000 && m < 100000);
	for (size_t i = 0; i < m; i++) {
		H_FREE(h, small[i]);
	}
	size_t n2 = 0;
	while (n2 < 4096 && (p[n2] = H_MALLOC(h, 8192)) != NULL) {
		n2++;
	}
	assert_int_equal(n2, n);
	assert_int_equal(H_RESET(h), 0);
	/* After a reset a block as large as a whole chunk fits. */
	void *big = H_MALLOC(h, 2 * MiB + 4096);
	assert_true(big != NULL && in_region(big, r, size));
	P_FREE(big);
	assert_int_equal(H_DESTROY(h), 0);
	munmap(r, size);
}

static void
test_mallocx_arena(void **state) {
	(void)state;
	size_t size = 8 * MiB;
	char *r = region_map(size);
	alloc_heap_t *h = H_CREATE(r, size, 0);
	unsigned ind = H_ARENA(h);
	void *p = ALLOC_API(mallocx)(1000, MALLOCX_ARENA(ind));
	assert_true(in_region(p, r, size));
	void *q = ALLOC_API(mallocx)(100000, MALLOCX_ARENA(ind) | MALLOCX_ZERO);
	assert_true(in_region(q, r, size));
	assert_int_equal(((char *)q)[99999], 0);
	q = ALLOC_API(rallocx)(q, 200000, 0);
	assert_true(in_region(q, r, size));
	/* The arena is an arena for mallctl: its statistics, and purge gives
	 * its free pages back (its decay never does: the heap's memory is the
	 * caller's). */
	bool stats = false;
	size_t len = sizeof(stats);
	assert_int_equal(ALLOC_API(mallctl)("config.stats", &stats, &len, NULL, 0), 0);
	char name[64];
	uint64_t epoch = 1;
	size_t pactive = 0, pdirty = 0;
	uint64_t npurge0 = 0, npurge1 = 0;
	if (stats) {
		len = sizeof(epoch);
		assert_int_equal(ALLOC_API(mallctl)("epoch", &epoch, &len, &epoch, sizeof(epoch)),
		                 0);
		snprintf(name, sizeof(name), "stats.arenas.%u.pactive", ind);
		len = sizeof(pactive);
		assert_int_equal(ALLOC_API(mallctl)(name, &pactive, &len, NULL, 0), 0);
		/* The two blocks: 1000 bytes (a small run) and 200000. */
		assert_true(pactive * page_size() >= 200000 + 1000);
		snprintf(name, sizeof(name), "stats.arenas.%u.npurge", ind);
		len = sizeof(npurge0);
		assert_int_equal(ALLOC_API(mallctl)(name, &npurge0, &len, NULL, 0), 0);
	}
	ALLOC_API(dallocx)(p, 0);
	ALLOC_API(dallocx)(q, 0);
	if (stats) {
		len = sizeof(epoch);
		assert_int_equal(ALLOC_API(mallctl)("epoch", &epoch, &len, &epoch, sizeof(epoch)),
		                 0);
		snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", ind);
		len = sizeof(pdirty);
		assert_int_equal(ALLOC_API(mallctl)(name, &pdirty, &len, NULL, 0), 0);
		assert_true(pdirty * page_size() >= 200000);
	}
	snprintf(name, sizeof(name), "arena.%u.purge", ind);
	assert_int_equal(ALLOC_API(mallctl)(name, NULL, NULL, NULL, 0), 0);
	if (stats) {
		len = sizeof(epoch);
		assert_int_equal(ALLOC_API(mallctl)("epoch", &epoch, &len, &epoch, sizeof(epoch)),
		                 0);
		snprintf(name, sizeof(name), "stats.arenas.%u.npurge", ind);
		len = sizeof(npurge1);
		assert_int_equal(ALLOC_API(mallctl)(name, &npurge1, &len, NULL, 0), 0);
		assert_true(npurge1 > npurge0);
		snprintf(name, sizeof(name), "stats.arenas.%u.pdirty", ind);
		len = sizeof(pdirty);
		assert_int_equal(ALLOC_API(mallctl)(name, &pdirty, &len, NULL, 0), 0);
		assert_int_equal(pdirty, 0);
	}
	/* A thread may not be bound to it (its cache would take blocks). */
	assert_int_equal(ALLOC_API(mallctl)("thread.arena", NULL, NULL, &ind, sizeof(ind)), EINVAL);
	p = H_MALLOC(h, 50);
	snprintf(name, sizeof(name), "arena.%u.reset", ind);
	assert_int_equal(ALLOC_API(mallctl)(name, NULL, NULL, NULL, 0), 0);
	alloc_heap_stats_t st;
	H_STATS(h, &st);
	assert_int_equal(st.nblocks, 0);
	assert_int_equal(H_DESTROY(h), 0);
	munmap(r, size);
}

/* One million small blocks; reset takes well under a millisecond, and
 * 1,000 rounds of reset and refill keep the metadata where it was. */
static void
test_reset(void **state) {
	(void)state;
	size_t size = 64 * MiB;
	char *r = region_map(size);
	alloc_heap_t *h = H_CREATE(r, size, 0);
	for (int i = 0; i < 1000000; i++) {
		int *p = H_MALLOC(h, 16);
		assert_true(p != NULL);
		*p = i;
	}
	double best = 1e9;
	for (int round = 0; round < 3; round++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(H_RESET(h), 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ms =
		    (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		best = ms < best ? ms : best;
		for (int i = 0; round < 2 && i < 1000000; i++) {
			assert_non_null(H_MALLOC(h, 16));
		}
	}
	print_message("reset of a heap of 1,000,000 blocks: %.3f ms\n", best);
	if (!under_valgrind()) {
		assert_true(best < 1.0);
	}
	alloc_heap_stats_t st0, st;
	H_STATS(h, &st0);
	for (int round = 0; round < 1000; round++) {
		for (int i = 0; i < 200; i++) {
			char *p = H_MALLOC(h, (size_t)(i * 97 % 20000) + 1);
			assert_true(in_region(p, r, size));
			p[0] = (char)i;
		}
		assert_int_equal(H_RESET(h), 0);
	}
	H_STATS(h, &st);
	assert_int_equal(st.overhead, st0.overhead);
	assert_int_equal(st.allocated, 0);
	assert_int_equal(st.active, 0);
	assert_int_equal(H_DESTROY(h), 0);
	munmap(r, size);
}

/* 1,024 heaps at once, each filled and checked. */
static void
test_many(void **state) {
	(void)state;
	enum { N = 1024 };
	size_t size = 4 * MiB;
	char *all = region_map((size_t)N * size);
	static alloc_heap_t *h[N];
	static unsigned *p[N][8];
	for (int i = 0; i < N; i++) {
		h[i] = H_CREATE(all + (size_t)i * size, size, 0);
		assert_non_null(h[i]);
		for (int j = 0; j < 8; j++) {
			p[i][j] = H_MALLOC(h[i], 64 << j);
			assert_true(in_region(p[i][j], all + (size_t)i * size, size));
			p[i][j][0] = (unsigned)(i * 8 + j);
		}
	}
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < 8; j++) {
			assert_int_equal(p[i][j][0], (unsigned)(i * 8 + j));
			P_FREE(p[i][j]);
		}
		assert_int_equal(H_DESTROY(h[i]), 0);
	}
	/* The slots are reused. */
	for (int i = 0; i < 3 * N; i++) {
		alloc_heap_t *x = H_CREATE(all, size, 0);
		assert_non_null(x);
		assert_int_equal(H_DESTROY(x), 0);
	}
	munmap(all, (size_t)N * size);
}

/* After destroy nothing refers to the region. */
static void
test_destroy_protect(void **state) {
	(void)state;
	/* 8 MiB with 4 KiB pages; with larger ones the small classes' runs
	 * take more pages each (a run is a multiple of the page). */
	size_t size = 8 * MiB + 256 * (page_size() - 4096);
	char *r = region_map(size);
	alloc_heap_t *h = H_CREATE(r, size, 0);
	for (int i = 0; i < 1000; i++) {
		assert_non_null(H_MALLOC(h, (size_t)i * 7 + 1));
	}
	assert_non_null(H_MALLOC(h, MiB));
	assert_int_equal(H_DESTROY(h), 0);
	assert_int_equal(mprotect(r, size, PROT_NONE), 0);
	for (int i = 0; i < 200000; i++) {
		void *p = P_MALLOC((size_t)(i % 9000) + 1);
		assert_non_null(p);
		P_FREE(p);
	}
	void *big = P_MALLOC(5 * MiB);
	P_FREE(big);
	assert_int_equal(ALLOC_API(mallctl)("arena.0.purge", NULL, NULL, NULL, 0), 0);
	munmap(r, size);
}

typedef struct {
	void **blocks;
	size_t n;
} span_t;

static void *
free_thread(void *arg) {
	span_t *s = arg;
	for (size_t i = 0; i < s->n; i++) {
		P_FREE(s->blocks[i]);
	}
	return NULL;
}

static void
test_threads_free(void **state) {
	(void)state;
	size_t size = 16 * MiB;
	char *r = region_map(size);
	alloc_heap_t *h = H_CREATE(r, size, 0);
	static void *blocks[4][5000];
	pthread_t t[4];
	span_t s[4];
	for (int k = 0; k < 4; k++) {
		for (int i = 0; i < 5000; i++) {
			blocks[k][i] = H_MALLOC(h, (size_t)(i % 300) + 1);
			assert_non_null(blocks[k][i]);
		}
		s[k] = (span_t){blocks[k], 5000};
		pthread_create(&t[k], NULL, free_thread, &s[k]);
	}
	for (int k = 0; k < 4; k++) {
		pthread_join(t[k], NULL);
	}
	alloc_heap_stats_t st;
	H_STATS(h, &st);
	assert_int_equal(st.nblocks, 0);
	assert_int_equal(H_DESTROY(h), 0);
	munmap(r, size);
}

/* ---------------------------------------------------------------------- */
/* Two processes. */

#define SHARED_SIZE (16 * MiB)
#define ROUNDS      20000

static char *
shared_map(const char *name, void *addr, bool create) {
	int fd = shm_open(name, O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600);
	if (fd < 0) {
		return NULL;
	}
	if (create && ftruncate(fd, SHARED_SIZE) != 0) {
		close(fd);
		return NULL;
	}
	void *p = mmap(addr, SHARED_SIZE, PROT_READ | PROT_WRITE,
	               MAP_SHARED | (addr != NULL ? MAP_FIXED_NOREPLACE : 0), fd, 0);
	close(fd);
	return p == MAP_FAILED || (addr != NULL && p != addr) ? NULL : p;
}

/* Allocates, fills with a pattern of its own, checks and frees, ROUNDS
 * times; returns the number of corrupted blocks seen. */
static int
shared_work(alloc_heap_t *h, unsigned char tag, long rounds) {
	void *live[64] = {0};
	size_t len[64] = {0};
	int bad = 0;
	for (long i = 0; i < rounds; i++) {
		int k = (int)(i % 64);
		if (live[k] != NULL) {
			unsigned char *b = live[k];
			size_t n = len[k];
			bad += P_USIZE(b) < n;
			for (size_t j = 0; j < n; j++) {
				bad += b[j] != tag;
			}
			H_FREE(h, b);
		}
		size_t n = (size_t)(i * 37 % 3000) + 1;
		live[k] = H_MALLOC(h, n);
		if (live[k] == NULL) {
			return -1;
		}
		len[k] = n < 512 ? n : 512;
		memset(live[k], tag, len[k]);
	}
	for (int k = 0; k < 64; k++) {
		H_FREE(h, live[k]);
	}
	return bad;
}

static int
child_main(const char *mode, const char *name, const char *addr_text) {
	void *addr = (void *)(uintptr_t)strtoull(addr_text, NULL, 16);
	char *r = shared_map(name, addr, false);
	if (r == NULL) {
		return 10;
	}
	alloc_heap_t *h = H_ATTACH(r);
	if (h == NULL) {
		return 11;
	}
	if (strcmp(mode, "child-spin") == 0) {
		for (;;) {
			shared_work(h, 0xc3, 1000);
		}
	}
	int bad = shared_work(h, 0x5a, ROUNDS);
	return bad == 0 ? 0 : 12;
}

static pid_t
spawn(const char *mode, const char *name, const void *addr) {
	char addr_text[32];
	snprintf(addr_text, sizeof(addr_text), "%llx", (unsigned long long)(uintptr_t)addr);
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = {(char *)"heap", (char *)mode, (char *)name, addr_text, NULL};
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	return pid;
}

static int recovered;
static int damaged;

static void
count_messages(void *opaque, const char *s) {
	(void)opaque;
	if (strstr(s, "died holding its lock; the heap checked out intact") != NULL) {
		recovered++;
	}
	if (strstr(s, "died holding its lock and left it damaged") != NULL) {
		damaged++;
	}
	fputs(s, stderr);
}

static void
test_shared(void **state) {
	(void)state;
	if (under_valgrind()) {
		print_message("# under valgrind (/proc/self/exe is its launcher): skipped\n");
		skip();
	}
	char name[64];
	snprintf(name, sizeof(name), "/liballoc-heap-test-%d", (int)getpid());
	char *r = shared_map(name, NULL, true);
	assert_non_null(r);
	alloc_heap_t *h = H_CREATE(r, SHARED_SIZE, ALLOC_HEAP_SHARED);
	assert_non_null(h);
	/* Two unrelated processes at the same time, and this one. */
	pid_t a = spawn("child-share", name, r);
	pid_t b = spawn("child-share", name, r);
	assert_int_equal(shared_work(h, 0xa5, ROUNDS), 0);
	int status;
	assert_int_equal(waitpid(a, &status, 0), a);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(waitpid(b, &status, 0), b);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* Processes killed with SIGKILL while they allocate, most often
	 * holding the heap lock: the others are never wedged (an alarm
	 * catches that) and never see corrupted blocks. A process killed in
	 * the middle of an arena operation may leave the heap inconsistent:
	 * then the heap is reported damaged (one line naming the broken
	 * check) and refused with ENOTRECOVERABLE, and the test makes a new
	 * one in the region. */
	ALLOC_API(malloc_message) = count_messages;
	alarm(60);
	int refused = 0;
	for (int i = 0; i < 10; i++) {
		pid_t c = spawn("child-spin", name, r);
		usleep(20000 + 5000 * i);
		kill(c, SIGKILL);
		assert_int_equal(waitpid(c, &status, 0), c);
		errno = 0;
		int bad = shared_work(h, 0x3c, 2000);
		if (bad == -1 && errno == ENOTRECOVERABLE) {
			refused++;
			assert_int_equal(refused, damaged);
			assert_int_equal(H_DESTROY(h), 0);
			h = H_CREATE(r, SHARED_SIZE, ALLOC_HEAP_SHARED);
			assert_non_null(h);
			continue;
		}
		assert_int_equal(bad, 0);
	}
	alarm(0);
	ALLOC_API(malloc_message) = NULL;
	print_message("10 processes killed: %d held the heap lock and left it intact (recovered), "
	              "%d left it damaged (reported, refused)\n",
	              recovered, damaged);
	assert_int_equal(refused, damaged);
	/* Whatever the dead processes left allocated goes with a reset. */
	assert_int_equal(H_RESET(h), 0);
	assert_int_equal(shared_work(h, 0x11, 1000), 0);
	assert_int_equal(H_DESTROY(h), 0);
	munmap(r, SHARED_SIZE);
	shm_unlink(name);
}

int
main(int argc, char **argv) {
	if (argc == 4 && strncmp(argv[1], "child-", 6) == 0) {
		return child_main(argv[1], argv[2], argv[3]);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),
	    cmocka_unit_test(test_overhead),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_foreign_free),
	    cmocka_unit_test(test_full_then_recover),
	    cmocka_unit_test(test_mallocx_arena),
	    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_many),
	    cmocka_unit_test(test_destroy_protect),
	    cmocka_unit_test(test_threads_free),
	    cmocka_unit_test(test_shared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
