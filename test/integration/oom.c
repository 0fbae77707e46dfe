/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Running out of memory. Each case runs in a child process:
 *   - rlimit: RLIMIT_AS set 64 MiB (or 8 chunks) above the child's VmSize (read from
 *     /proc/self/status, so the test follows whatever the library maps
 *     statically); memory is exhausted through each entry point in turn
 *     (malloc small/large/huge, calloc, realloc, reallocarray,
 *     posix_memalign, aligned_alloc, memalign, mallocx, rallocx, xallocx,
 *     arenas.extend, tcache.create): every failure is NULL (or the
 *     function's error code) with errno ENOMEM, a failed resize leaves the
 *     block intact, then everything is freed and the same call succeeds
 *     again; stats.allocated comes back to where it was.
 *   - thread: a thread whose first allocator call happens while memory is
 *     exhausted (its cache cannot be set up) gets NULL + ENOMEM, and
 *     allocates normally once memory is freed.
 *   - max_bytes: opt.max_bytes (64 MiB, or 16 chunks) caps stats.mapped (two threads racing
 *     for huge blocks cannot overshoot it); NULL + ENOMEM at the cap,
 *     allocation works again after freeing.
 * Needs liballoc (mallctl, mallocx); skipped otherwise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "alloc.h"
#include "test_child.h"

#define MiB ((size_t)1 << 20)

/* The chunk size (opt.lg_chunk), which sizes follow: "huge" below is
 * chunk * 1.5. */
static size_t chunk;
/* Room above the current address-space size: 64 MiB, or 8 chunks with
 * big chunks. */
static size_t headroom;
/* The cap of the max_bytes children: 64 MiB, or 16 chunks. */
static size_t cap;

/* arenas.page / 4096: the sizes below that are large with 4 KiB pages
 * (40,000 and up) are scaled by it, so they stay large, in as many pages,
 * with larger pages (--with-lg-page=16, where small classes reach
 * 224 KiB and a thread cache would hold them). */
static size_t page_scale = 1;
#define LARGE(n) ((size_t)(n)*page_scale)

static void
sizes_boot(void) {
	size_t lg = 0;
	size_t sz = sizeof(lg);
	mallctl("opt.lg_chunk", &lg, &sz, NULL, 0);
	size_t page = 4096;
	sz = sizeof(page);
	mallctl("arenas.page", &page, &sz, NULL, 0);
	page_scale = page / 4096;
	chunk = (size_t)1 << lg;
	headroom = 8 * chunk > 64 * MiB ? 8 * chunk : 64 * MiB;
	cap = 16 * chunk > 64 * MiB ? 16 * chunk : 64 * MiB;
}

/* A call that still succeeds after this many bytes means the limit does
 * not work: the child reports it instead of looping. */
#define GIVE_UP (16 * headroom)

/* ---------------------------------------------------------------------- */
/* Child side: plain checks that print one line and exit 1. */

#define CHECK(cond, ...)                                                           \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                              \
			fprintf(stderr, "\n");                                     \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

/* Blocks held while memory is exhausted, chained through their first
 * word so holding them needs no memory of its own. */
typedef struct held_s {
	struct held_s *next;
} held_t;
static held_t *held;
static size_t held_bytes;

static void
hold(void *p, size_t size) {
	held_t *h = p;
	h->next = held;
	held = h;
	held_bytes += size;
}

static void
release_all(void) {
	while (held != NULL) {
		held_t *h = held;
		held = h->next;
		free(h);
	}
	held_bytes = 0;
}

static size_t
stat_size(const char *name) {
	size_t v = 0;
	size_t sz = sizeof(v);
	int err = mallctl(name, &v, &sz, NULL, 0);
	CHECK(err == 0, "mallctl(%s) = %d", name, err);
	return v;
}

/* config.stats: without statistics (configure --disable-stats) the
 * checks that read stats.* are left out; the rest stand. */
static bool have_stats;

/* stats.allocated with the thread's cache emptied first (cached blocks
 * count as allocated); 0 without statistics. */
static size_t
allocated_now(void) {
	if (!have_stats) {
		return 0;
	}
	mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	CHECK(mallctl("epoch", &epoch, &sz, &epoch, sz) == 0, "epoch");
	return stat_size("stats.allocated");
}

static void
check_stats_sane(void) {
	if (!have_stats) {
		return;
	}
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	CHECK(mallctl("epoch", &epoch, &sz, &epoch, sz) == 0, "epoch");
	size_t allocated = stat_size("stats.allocated");
	size_t active = stat_size("stats.active");
	size_t resident = stat_size("stats.resident");
	size_t mapped = stat_size("stats.mapped");
	CHECK(allocated <= active && active <= resident && resident <= mapped,
	      "allocated %zu active %zu resident %zu mapped %zu", allocated, active, resident,
	      mapped);
}

/* One way of allocating `size` bytes; NULL on failure with errno set. */
typedef void *(*alloc_fn_t)(size_t size);

static void *
via_malloc(size_t size) {
	return malloc(size);
}

static void *
via_calloc(size_t size) {
	unsigned char *p = calloc(1, size);
	if (p != NULL) {
		CHECK(p[0] == 0 && p[size / 2] == 0 && p[size - 1] == 0, "calloc not zeroed");
	}
	return p;
}

static void *
via_realloc(size_t size) {
	return realloc(NULL, size);
}

static void *
via_reallocarray(size_t size) {
	return reallocarray(NULL, size / 8, 8);
}

static void *
via_posix_memalign(size_t size) {
	void *p = (void *)0x1;
	int err = posix_memalign(&p, 4096, size);
	if (err != 0) {
		CHECK(err == ENOMEM, "posix_memalign returned %d", err);
		CHECK(p == (void *)0x1, "posix_memalign wrote *memptr on failure");
		/* The function reports through its result, not errno; make
		 * the caller's errno check uniform. */
		errno = ENOMEM;
		return NULL;
	}
	CHECK(((uintptr_t)p & 4095) == 0, "misaligned");
	return p;
}

static void *
via_aligned_alloc(size_t size) {
	void *p = aligned_alloc(256, size);
	CHECK(((uintptr_t)p & 255) == 0, "misaligned");
	return p;
}

static void *
via_memalign(size_t size) {
	void *p = memalign(64 * 1024, size);
	CHECK(((uintptr_t)p & (64 * 1024 - 1)) == 0, "misaligned");
	return p;
}

static void *
via_mallocx(size_t size) {
	void *p = mallocx(size, MALLOCX_ZERO);
	if (p != NULL) {
		CHECK(((unsigned char *)p)[size - 1] == 0, "MALLOCX_ZERO not zeroed");
	}
	return p;
}

static void *
via_mallocx_no_tcache(size_t size) {
	return mallocx(size, MALLOCX_TCACHE_NONE | MALLOCX_LG_ALIGN(12));
}

/*
 * Allocates size-byte blocks with fn, holding them, until one fails; that
 * failure must be NULL + ENOMEM. Returns the number of blocks obtained.
 */
static size_t
exhaust(alloc_fn_t fn, size_t size, const char *what) {
	size_t n = 0;
	for (;;) {
		errno = 0;
		void *p = fn(size);
		if (p == NULL) {
			CHECK(errno == ENOMEM, "%s(%zu) failed with errno %d, not ENOMEM", what,
			      size, errno);
			return n;
		}
		memset(p, 0xa5, size < 4096 ? size : 4096);
		hold(p, size);
		n++;
		CHECK(held_bytes < GIVE_UP, "%s: %zu bytes and no failure: limit not in force",
		      what, held_bytes);
	}
}

/* Exhausts memory with one entry point, frees everything, checks that the
 * same call works again and that nothing stayed allocated. */
static void
exhaust_and_recover(alloc_fn_t fn, size_t size, const char *what) {
	size_t before = allocated_now();
	size_t n = exhaust(fn, size, what);
	CHECK(n > 0 || size > headroom / 2, "%s(%zu) failed at once", what, size);
	check_stats_sane();
	release_all();
	void *p = fn(size);
	CHECK(p != NULL, "%s(%zu) still fails after everything was freed", what, size);
	free(p);
	size_t after = allocated_now();
	CHECK(after == before, "%s: stats.allocated %zu before, %zu after", what, before, after);
}

/* Fills memory with huge, then large, then small blocks, so that nothing
 * is left for any size. */
static void
exhaust_everything(void) {
	exhaust(via_malloc, 2 * chunk, "malloc");
	exhaust(via_malloc, LARGE(40000), "malloc");
	exhaust(via_malloc, 4000, "malloc");
	exhaust(via_malloc, 64, "malloc");
}

static size_t
vm_size(void) {
	int fd = open("/proc/self/status", O_RDONLY);
	CHECK(fd >= 0, "open /proc/self/status");
	static char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0, "read /proc/self/status");
	buf[n] = '\0';
	char *line = strstr(buf, "VmSize:");
	CHECK(line != NULL, "no VmSize");
	return strtoull(line + 7, NULL, 10) * 1024;
}

static void
limit_address_space(void) {
	/* Start-up first, so that the limit only bites on the heap. */
	free(malloc(1));
	fprintf(stderr, "%s", "");
	struct rlimit lim;
	lim.rlim_cur = lim.rlim_max = vm_size() + headroom;
	CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit: %s", strerror(errno));
}

static void
child_rlimit(void) {
	limit_address_space();
	exhaust_and_recover(via_malloc, 64, "malloc");
	exhaust_and_recover(via_malloc, LARGE(40000), "malloc");
	exhaust_and_recover(via_malloc, chunk + chunk / 2, "malloc");
	exhaust_and_recover(via_malloc, headroom / 2 + chunk / 2, "malloc");
	exhaust_and_recover(via_calloc, 5000, "calloc");
	exhaust_and_recover(via_calloc, 2 * chunk + chunk / 2, "calloc");
	exhaust_and_recover(via_realloc, 200, "realloc");
	exhaust_and_recover(via_reallocarray, LARGE(100000), "reallocarray");
	exhaust_and_recover(via_posix_memalign, LARGE(100000), "posix_memalign");
	exhaust_and_recover(via_aligned_alloc, LARGE(20000), "aligned_alloc");
	exhaust_and_recover(via_memalign, chunk + chunk / 2, "memalign");
	exhaust_and_recover(via_mallocx, LARGE(100000), "mallocx");
	exhaust_and_recover(via_mallocx_no_tcache, 3000, "mallocx");

	/* Resizing with nothing left: the old block stays as it was. */
	size_t before = allocated_now();
	char *small = malloc(100);
	char *large = malloc(LARGE(50000));
	size_t huge_size = chunk + chunk / 2;
	char *huge = malloc(huge_size);
	CHECK(small != NULL && large != NULL && huge != NULL, "setup");
	memset(small, 's', 100);
	memset(large, 'l', LARGE(50000));
	memset(huge, 'h', huge_size);
	exhaust_everything();
	struct {
		char *p;
		size_t size;
		int c;
	} blocks[] = {{small, 100, 's'}, {large, LARGE(50000), 'l'}, {huge, huge_size, 'h'}};
	for (size_t i = 0; i < 3; i++) {
		char *p = blocks[i].p;
		size_t size = blocks[i].size;
		errno = 0;
		CHECK(realloc(p, headroom) == NULL && errno == ENOMEM, "realloc grew");
		errno = 0;
		CHECK(reallocarray(p, headroom / 8, 8) == NULL && errno == ENOMEM,
		      "reallocarray grew");
		errno = 0;
		CHECK(rallocx(p, headroom, 0) == NULL, "rallocx grew");
		size_t usize = malloc_usable_size(p);
		CHECK(xallocx(p, headroom, 0, 0) == usize, "xallocx changed the size");
		CHECK(malloc_usable_size(p) == usize, "usable size changed");
		for (size_t j = 0; j < size; j += 997) {
			CHECK(p[j] == blocks[i].c, "block %zu changed at %zu", i, j);
		}
		CHECK(p[size - 1] == blocks[i].c, "block %zu changed at the end", i);
	}

	/* Metadata-only requests fail cleanly too. */
	unsigned ind;
	size_t sz = sizeof(ind);
	int err = mallctl("arenas.extend", &ind, &sz, NULL, 0);
	CHECK(err == 0 || err == EAGAIN, "arenas.extend = %d", err);
	unsigned tc;
	sz = sizeof(tc);
	err = mallctl("tcache.create", &tc, &sz, NULL, 0);
	CHECK(err == 0 || err == EAGAIN || err == ENOENT, "tcache.create = %d", err);
	if (err == 0) {
		errno = 0;
		CHECK(mallocx(2 * chunk, MALLOCX_TCACHE(tc)) == NULL && errno == ENOMEM,
		      "mallocx through an explicit cache");
		mallctl("tcache.destroy", NULL, NULL, &tc, sizeof(tc));
	}
	check_stats_sane();

	release_all();
	char *p = realloc(small, 2 * chunk);
	CHECK(p != NULL && p[99] == 's', "realloc after freeing");
	p = rallocx(p, 3 * chunk, 0);
	CHECK(p != NULL && p[0] == 's', "rallocx after freeing");
	free(p);
	free(large);
	free(huge);
	size_t after = allocated_now();
	CHECK(after == before, "stats.allocated %zu before, %zu after", before, after);
	printf("ok\n");
}

/* The thread waits at each step for main. */
static pthread_barrier_t step;
static int thread_errors[3];
static bool thread_got[3];
static bool thread_recovered;

static void *
late_thread(void *arg) {
	(void)arg;
	/* 1: main has exhausted memory; this is the thread's first
	 * allocator call. */
	pthread_barrier_wait(&step);
	size_t sizes[] = {64, LARGE(40000), 2 * chunk};
	for (int i = 0; i < 3; i++) {
		errno = 0;
		void *p = malloc(sizes[i]);
		thread_got[i] = p != NULL;
		thread_errors[i] = errno;
		free(p);
	}
	pthread_barrier_wait(&step);
	/* 2: main has freed everything. */
	pthread_barrier_wait(&step);
	void *q[3];
	thread_recovered = true;
	for (int i = 0; i < 3; i++) {
		q[i] = malloc(sizes[i]);
		thread_recovered = thread_recovered && q[i] != NULL;
	}
	for (int i = 0; i < 3; i++) {
		free(q[i]);
	}
	return NULL;
}

static void
child_thread(void) {
	/* The thread runs on a stack of its own making, so that creating it
	 * needs no memory. */
	static char stack[1024 * 1024] __attribute__((aligned(4096)));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	CHECK(pthread_attr_setstack(&attr, stack, sizeof(stack)) == 0, "setstack");
	pthread_barrier_init(&step, NULL, 2);
	pthread_t t;
	CHECK(pthread_create(&t, &attr, late_thread, NULL) == 0, "pthread_create");
	limit_address_space();
	size_t before = allocated_now();
	exhaust_everything();
	pthread_barrier_wait(&step);
	pthread_barrier_wait(&step);
	for (int i = 0; i < 3; i++) {
		CHECK(!thread_got[i] && thread_errors[i] == ENOMEM,
		      "new thread's allocation %d: got %d errno %d", i, thread_got[i],
		      thread_errors[i]);
	}
	release_all();
	pthread_barrier_wait(&step);
	CHECK(pthread_join(t, NULL) == 0, "join");
	CHECK(thread_recovered, "the thread could not allocate after memory was freed");
	check_stats_sane();
	/* At most what it was: the C library freed the thread's own
	 * bookkeeping (its TLS vector) at the join. */
	size_t after = allocated_now();
	CHECK(after <= before, "stats.allocated %zu before, %zu after", before, after);
	printf("ok\n");
}

/* stats.mapped; without statistics, the bytes the test holds (a lower
 * bound of what is mapped, so the cap checks still mean something). */
static size_t
mapped_now(void) {
	if (!have_stats) {
		return held_bytes;
	}
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	CHECK(mallctl("epoch", &epoch, &sz, &epoch, sz) == 0, "epoch");
	return stat_size("stats.mapped");
}

/* Two threads race for huge blocks until the cap stops them. */
static void *
racer(void *arg) {
	held_t **list = arg;
	for (;;) {
		errno = 0;
		held_t *h = malloc(chunk + chunk / 2);
		if (h == NULL) {
			return errno == ENOMEM ? NULL : (void *)1;
		}
		h->next = *list;
		*list = h;
	}
}

static void
child_max_bytes(void) {
	CHECK(stat_size("opt.max_bytes") == cap, "opt.max_bytes");
	exhaust(via_malloc, 64, "malloc");
	CHECK(mapped_now() <= cap, "mapped %zu over the cap", mapped_now());
	CHECK(held_bytes > cap / 2, "only %zu bytes fitted under the cap", held_bytes);
	release_all();
	exhaust(via_malloc, chunk + chunk / 2, "malloc");
	CHECK(mapped_now() <= cap, "mapped %zu over the cap", mapped_now());
	errno = 0;
	CHECK(malloc(cap + chunk) == NULL && errno == ENOMEM, "a block larger than the cap");
	release_all();
	/* Half the cap in one piece: the freed spans, cached in pieces,
	 * are given back to make room. */
	void *p = malloc(cap / 2);
	CHECK(p != NULL, "malloc after freeing");
	free(p);

	for (int round = 0; round < 4; round++) {
		held_t *lists[2] = {NULL, NULL};
		pthread_t t[2];
		for (int i = 0; i < 2; i++) {
			CHECK(pthread_create(&t[i], NULL, racer, &lists[i]) == 0, "pthread_create");
		}
		for (int i = 0; i < 2; i++) {
			void *ret;
			pthread_join(t[i], &ret);
			CHECK(ret == NULL, "a racing thread's failure was not ENOMEM");
		}
		CHECK(mapped_now() <= cap, "mapped %zu over the cap after a race", mapped_now());
		for (int i = 0; i < 2; i++) {
			while (lists[i] != NULL) {
				held_t *h = lists[i];
				lists[i] = h->next;
				free(h);
			}
		}
	}
	p = malloc(cap / 2);
	CHECK(p != NULL, "malloc after the races");
	free(p);
	printf("ok\n");
}

/* ---------------------------------------------------------------------- */
/* Parent side. */

static void
run(const char *conf, const char *mode) {
	test_child_t c;
	assert_true(test_child_run(conf, mode, &c));
	if (!test_child_ok(&c) || strcmp(c.out, "ok\n") != 0) {
		fail_msg("child %s (status 0x%x):\nstdout: %s\nstderr: %s", mode, c.status, c.out,
		         c.err);
	}
}

static void
test_rlimit(void **state) {
	(void)state;
	/* One arena, so that the exhausted one is the one every thread
	 * uses; decay off, so nothing is given back behind the test's back;
	 * no background thread, whose start would show in stats.allocated
	 * (the C library's TLS vector). */
	run("narenas:1,decay_time:-1,background_thread:false", "rlimit");
}

static void
test_thread(void **state) {
	(void)state;
	run("narenas:1,decay_time:-1,background_thread:false", "thread");
}

static void
test_max_bytes(void **state) {
	(void)state;
	char conf[128];
	snprintf(conf, sizeof(conf), "max_bytes:%zu", cap);
	run(conf, "max_bytes");
	/* The cap counts purged-but-retained memory too: the same holds
	 * with eager purging and with unmapping. */
	snprintf(conf, sizeof(conf), "max_bytes:%zu,decay_time:0", cap);
	run(conf, "max_bytes");
	snprintf(conf, sizeof(conf), "max_bytes:%zu,retain:false,decay_time:0", cap);
	run(conf, "max_bytes");
}

int
main(int argc, char **argv) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		return 77;
	}
	sizes_boot();
	size_t len = sizeof(have_stats);
	if (mallctl("config.stats", &have_stats, &len, NULL, 0) != 0) {
		have_stats = false;
	}
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		if (strcmp(argv[2], "rlimit") == 0) {
			child_rlimit();
		} else if (strcmp(argv[2], "thread") == 0) {
			child_thread();
		} else if (strcmp(argv[2], "max_bytes") == 0) {
			child_max_bytes();
		}
		return 0;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rlimit),
	    cmocka_unit_test(test_thread),
	    cmocka_unit_test(test_max_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
