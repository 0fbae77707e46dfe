/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A program written against jemalloc's own header runs on liballoc: this
 * file includes Debian's <jemalloc/jemalloc.h> (package libjemalloc-dev)
 * instead of alloc.h, uses its MALLOCX_* macros and prototypes, and is
 * linked with -lalloc only (never -ljemalloc), so every call lands in
 * liballoc: mallocx, rallocx, xallocx, sallocx, sdallocx, dallocx, nallocx
 * and mallctl with jemalloc 4 and 5 names. Skipped (exit 77) when the header
 * is not installed or the process allocator has no mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_jemalloc.h"
#ifdef HAVE_JEMALLOC_H

static int failures;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                     \
		}                                                                       \
	} while (0)

int
main(void) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	/* Calls must reach liballoc, not a jemalloc that got linked in. */
	Dl_info info;
	CHECK(dladdr((void *)mallocx, &info) != 0 && strstr(info.dli_fname, "liballoc") != NULL);
	const char *version;
	size_t sz = sizeof(version);
	CHECK(mallctl("version", &version, &sz, NULL, 0) == 0);

	/* The flag encodings of jemalloc's header. */
	void *p = mallocx(100, MALLOCX_ALIGN(64) | MALLOCX_ZERO);
	CHECK(p != NULL && ((uintptr_t)p & 63) == 0);
	for (int i = 0; i < 100; i++) {
		CHECK(((unsigned char *)p)[i] == 0);
	}
	CHECK(sallocx(p, 0) == nallocx(100, MALLOCX_ALIGN(64)));
	memset(p, 0xa5, 100);
	p = rallocx(p, 5000, MALLOCX_LG_ALIGN(12));
	CHECK(p != NULL && ((uintptr_t)p & 4095) == 0);
	CHECK(((unsigned char *)p)[99] == 0xa5);
	size_t usize = xallocx(p, 5000, 0, 0);
	CHECK(usize == sallocx(p, 0));
	CHECK(xallocx(p, 1, 0, 0) >= 1);
	sdallocx(p, 5000, MALLOCX_LG_ALIGN(12));

	/* Arenas and explicit caches, with jemalloc 5's names. */
	unsigned arena;
	sz = sizeof(arena);
	CHECK(mallctl("arenas.create", &arena, &sz, NULL, 0) == 0);
	/* Explicit caches exist only with thread caches built in; like
	 * jemalloc built with --disable-tcache, the nodes are ENOENT then. */
	bool have_tcache = false;
	sz = sizeof(have_tcache);
	CHECK(mallctl("config.tcache", &have_tcache, &sz, NULL, 0) == 0);
	/* Likewise the statistics (--disable-stats): stats.* and
	 * thread.allocatedp answer ENOENT. */
	bool have_stats = false;
	sz = sizeof(have_stats);
	CHECK(mallctl("config.stats", &have_stats, &sz, NULL, 0) == 0);
	int stats_err = have_stats ? 0 : ENOENT;
	unsigned tc = 0;
	sz = sizeof(tc);
	if (have_tcache) {
		CHECK(mallctl("tcache.create", &tc, &sz, NULL, 0) == 0);
		void *q = mallocx(64, MALLOCX_ARENA(arena) | MALLOCX_TCACHE(tc));
		CHECK(q != NULL);
		dallocx(q, MALLOCX_TCACHE(tc));
	} else {
		printf("built without thread caches: tcache.* checked for ENOENT only\n");
		CHECK(mallctl("tcache.create", &tc, &sz, NULL, 0) == ENOENT);
	}
	void *q = mallocx(3 << 20, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE);
	CHECK(q != NULL);
	uint64_t epoch = 1;
	sz = sizeof(epoch);
	CHECK(mallctl("epoch", &epoch, &sz, &epoch, sizeof(epoch)) == 0);
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%u.huge.allocated", arena);
	size_t huge;
	sz = sizeof(huge);
	CHECK(mallctl(name, &huge, &sz, NULL, 0) == stats_err &&
	      (!have_stats || huge == nallocx(3 << 20, 0)));
	dallocx(q, MALLOCX_TCACHE_NONE);
	CHECK(mallctl("tcache.destroy", NULL, NULL, &tc, sizeof(tc)) == (have_tcache ? 0 : ENOENT));

	size_t mib[8];
	size_t miblen = 8;
	CHECK(mallctlnametomib("stats.allocated", mib, &miblen) == 0 && miblen == 2);
	size_t allocated;
	sz = sizeof(allocated);
	CHECK(mallctlbymib(mib, miblen, &allocated, &sz, NULL, 0) == stats_err &&
	      (!have_stats || allocated > 0));
	uint64_t *ap;
	sz = sizeof(ap);
	CHECK(mallctl("thread.allocatedp", &ap, &sz, NULL, 0) == stats_err &&
	      (!have_stats || *ap > 0));
	CHECK(mallctl("no.such", NULL, NULL, NULL, 0) == ENOENT);
	ssize_t ms;
	sz = sizeof(ms);
	CHECK(mallctl("opt.dirty_decay_ms", &ms, &sz, NULL, 0) == 0);

	printf("%s: %d failure(s)\n", failures == 0 ? "ok" : "FAIL", failures);
	return failures == 0 ? 0 : 1;
}
#endif
