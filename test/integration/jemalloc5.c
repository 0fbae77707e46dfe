/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jemalloc 5.3's names, options and semantics on liballoc: this file is
 * compiled against Debian's <jemalloc/jemalloc.h> (libjemalloc-dev) and
 * linked with -lalloc only (never -ljemalloc), so every call lands in
 * liballoc (checked with dladdr).
 *
 *   names        every jemalloc 5 mallctl name liballoc provides resolves,
 *                reads with jemalloc 5.3's type (the size is checked: one
 *                byte more is EINVAL) and refuses writes where read-only
 *   spellings    names jemalloc 5 renamed give the 4.x node's MIB
 *   sizes        arenas.nlextents / lextent.<i>.size against lrun/hchunk,
 *                bin.<i>.nshards, arenas.lookup, arena.<i>.initialized
 *   decay_views  arena.<i>/arenas.{dirty,muzzy}_decay_ms against the 4.x
 *                decay_time in seconds
 *   conf_lines   the common jemalloc 5 MALLOC_CONF lines (children) give no
 *                warning and read back through opt.*, and take effect:
 *                background threads run, metadata blocks get THP advice,
 *                a block above oversize_threshold is purged when freed
 *   muzzy        the two-stage decay (children): dirty pages become muzzy
 *                (still mapped, counted in pmuzzy and dirty_purged), muzzy
 *                ones are purged for good on their own curve (muzzy_purged,
 *                pages no longer resident by mincore), -1 never, 0 at once,
 *                arena.<i>.purge does both; npurge is the sum of the stages
 *   xallocx      xallocx(p, size, extra) grows a block that already fits
 *                when room follows: 16 KiB + 8 KiB -> 24 KiB (large), 4 MiB
 *                + 4 MiB -> 8 MiB (huge) in a fresh arena
 *   dss          opt.dss, arena.<i>.dss, stats.arenas.<i>.dss: "disabled";
 *                other values refused
 *   misc         thread.idle, max_background_threads, zero_realloc
 *
 * Skipped (exit 77) when the header is not installed or the process
 * allocator has no mallctl.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "test_jemalloc.h"
#ifdef HAVE_JEMALLOC_H

#include <cmocka.h>

#include "test_check.h"
#include "test_child.h"
#include "test_skip.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static bool have_stats;
static bool have_tcache;

/* ---------------------------------------------------------------------- */
/* Helpers. */

static void
ctl_read(const char *name, void *v, size_t len) {
	size_t sz = len;
	int err = mallctl(name, v, &sz, NULL, 0);
	CHECK(err == 0 && sz == len, "mallctl(\"%s\") read: %s", name, strerror(err));
}

static void
ctl_write(const char *name, const void *v, size_t len) {
	int err = mallctl(name, NULL, NULL, (void *)v, len);
	CHECK(err == 0, "mallctl(\"%s\") write: %s", name, strerror(err));
}

static size_t
ctl_size(const char *fmt, unsigned i) {
	char name[128];
	snprintf(name, sizeof(name), fmt, i);
	size_t v;
	ctl_read(name, &v, sizeof(v));
	return v;
}

static uint64_t
ctl_u64(const char *fmt, unsigned i) {
	char name[128];
	snprintf(name, sizeof(name), fmt, i);
	uint64_t v;
	ctl_read(name, &v, sizeof(v));
	return v;
}

static void
refresh(void) {
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	CHECK(mallctl("epoch", &epoch, &sz, &epoch, sizeof(epoch)) == 0, "epoch");
}

static unsigned
arena_create(void) {
	unsigned a;
	ctl_read("arenas.create", &a, sizeof(a));
	return a;
}

/* ---------------------------------------------------------------------- */
/* names */

enum { RO, RW, ACTION };
enum { ANY, STATS, TCACHE };

static const struct {
	const char *name;
	size_t size;
	int mode;
	int needs;
} names[] = {
    {"max_background_threads", sizeof(size_t), RW, ANY},
    {"background_thread", sizeof(bool), RW, ANY},
    {"opt.confirm_conf", sizeof(bool), RO, ANY},
    {"opt.metadata_thp", sizeof(const char *), RO, ANY},
    {"opt.dss", sizeof(const char *), RO, ANY},
    {"opt.oversize_threshold", sizeof(size_t), RO, ANY},
    {"opt.background_thread", sizeof(bool), RO, ANY},
    {"opt.max_background_threads", sizeof(size_t), RO, ANY},
    {"opt.dirty_decay_ms", sizeof(ssize_t), RO, ANY},
    {"opt.muzzy_decay_ms", sizeof(ssize_t), RO, ANY},
    {"opt.percpu_arena", sizeof(const char *), RO, ANY},
    {"opt.retain", sizeof(bool), RO, ANY},
    {"opt.narenas", sizeof(unsigned), RO, ANY},
    {"opt.thp", sizeof(const char *), RO, ANY},
    {"opt.zero_realloc", sizeof(const char *), RO, ANY},
    {"opt.stats_print_opts", sizeof(const char *), RO, ANY},
    {"opt.tcache_max", sizeof(size_t), RO, TCACHE},
    {"thread.idle", 0, ACTION, ANY},
    {"arena.%u.initialized", sizeof(bool), RO, ANY},
    {"arena.%u.decay", 0, ACTION, ANY},
    {"arena.%u.purge", 0, ACTION, ANY},
    {"arena.%u.dss", sizeof(const char *), RW, ANY},
    {"arena.%u.dirty_decay_ms", sizeof(ssize_t), RW, ANY},
    {"arena.%u.muzzy_decay_ms", sizeof(ssize_t), RW, ANY},
    {"arena.%u.extent_hooks", sizeof(extent_hooks_t *), RW, ANY},
    {"arenas.dirty_decay_ms", sizeof(ssize_t), RW, ANY},
    {"arenas.muzzy_decay_ms", sizeof(ssize_t), RW, ANY},
    {"arenas.nlextents", sizeof(unsigned), RO, ANY},
    {"arenas.lextent.0.size", sizeof(size_t), RO, ANY},
    {"arenas.bin.0.slab_size", sizeof(size_t), RO, ANY},
    {"arenas.bin.0.nshards", sizeof(uint32_t), RO, ANY},
    {"stats.metadata_thp", sizeof(size_t), RO, STATS},
    {"stats.zero_reallocs", sizeof(size_t), RO, STATS},
    {"stats.background_thread.num_threads", sizeof(size_t), RO, STATS},
    {"stats.background_thread.num_runs", sizeof(uint64_t), RO, STATS},
    {"stats.background_thread.run_interval", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.dss", sizeof(const char *), RO, STATS},
    {"stats.arenas.%u.dirty_decay_ms", sizeof(ssize_t), RO, STATS},
    {"stats.arenas.%u.muzzy_decay_ms", sizeof(ssize_t), RO, STATS},
    {"stats.arenas.%u.uptime", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.pdirty", sizeof(size_t), RO, STATS},
    {"stats.arenas.%u.pmuzzy", sizeof(size_t), RO, STATS},
    {"stats.arenas.%u.resident", sizeof(size_t), RO, STATS},
    {"stats.arenas.%u.base", sizeof(size_t), RO, STATS},
    {"stats.arenas.%u.dirty_npurge", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.dirty_nmadvise", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.dirty_purged", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.muzzy_npurge", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.muzzy_nmadvise", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.muzzy_purged", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.small.nfills", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.small.nflushes", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.large.nfills", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.large.nflushes", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.bins.0.nslabs", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.bins.0.nreslabs", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.bins.0.curslabs", sizeof(size_t), RO, STATS},
    {"stats.arenas.%u.bins.0.nonfull_slabs", sizeof(size_t), RO, STATS},
    {"stats.arenas.%u.lextents.0.nmalloc", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.lextents.0.ndalloc", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.lextents.0.nrequests", sizeof(uint64_t), RO, STATS},
    {"stats.arenas.%u.lextents.0.curlextents", sizeof(size_t), RO, STATS},
};

static void
test_names(void **state) {
	(void)state;
	unsigned a = arena_create();
	void *p = mallocx(100, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
	CHECK(p != NULL, "mallocx");
	refresh();
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		char name[128];
		snprintf(name, sizeof(name), names[k].name, a);
		bool there = (names[k].needs != STATS || have_stats) &&
		             (names[k].needs != TCACHE || have_tcache);
		size_t mib[8];
		size_t miblen = 8;
		int err = mallctlnametomib(name, mib, &miblen);
		if (!there) {
			char buf[64];
			size_t sz = sizeof(buf);
			err = mallctl(name, buf, &sz, NULL, 0);
			CHECK(err == ENOENT, "%s without its feature: %s", name, strerror(err));
			continue;
		}
		CHECK(err == 0, "%s: %s", name, strerror(err));
		if (names[k].mode == ACTION) {
			CHECK(mallctlbymib(mib, miblen, NULL, NULL, NULL, 0) == 0, "%s", name);
			int one = 1;
			CHECK(mallctl(name, NULL, NULL, &one, sizeof(one)) == EPERM, "%s write",
			      name);
			continue;
		}
		char buf[16];
		size_t sz = names[k].size;
		err = mallctlbymib(mib, miblen, buf, &sz, NULL, 0);
		CHECK(err == 0 && sz == names[k].size, "%s: %s", name, strerror(err));
		sz = names[k].size + 1;
		err = mallctl(name, buf, &sz, NULL, 0);
		CHECK(err == EINVAL, "%s read with %zu bytes: %s", name, names[k].size + 1,
		      strerror(err));
		if (names[k].mode == RO) {
			memset(buf, 0, sizeof(buf));
			err = mallctl(name, NULL, NULL, buf, names[k].size);
			CHECK(err == EPERM, "%s write: %s", name, strerror(err));
		}
	}
	dallocx(p, MALLOCX_TCACHE_NONE);
}

/* jemalloc 5 spellings of 4.x nodes: the same MIB. */
static void
test_spellings(void **state) {
	(void)state;
	static const char *const pairs[][2] = {
	    {"arenas.bin.3.slab_size", "arenas.bin.3.run_size"},
	    {"stats.arenas.0.bins.2.nslabs", "stats.arenas.0.bins.2.nruns"},
	    {"stats.arenas.0.bins.2.nreslabs", "stats.arenas.0.bins.2.nreruns"},
	    {"stats.arenas.0.bins.2.curslabs", "stats.arenas.0.bins.2.curruns"},
	};
	/* stats.arenas.0 exists once arena 0 does. */
	free(malloc(1));
	refresh();
	for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
		if (!have_stats && strncmp(pairs[k][0], "stats.", 6) == 0) {
			continue;
		}
		size_t m5[8], m4[8];
		size_t l5 = 8, l4 = 8;
		CHECK(mallctlnametomib(pairs[k][0], m5, &l5) == 0, "%s", pairs[k][0]);
		CHECK(mallctlnametomib(pairs[k][1], m4, &l4) == 0, "%s", pairs[k][1]);
		CHECK(l5 == l4 && memcmp(m5, m4, l5 * sizeof(size_t)) == 0,
		      "%s and %s: different MIBs", pairs[k][0], pairs[k][1]);
	}
}

static void
test_sizes(void **state) {
	(void)state;
	unsigned nlruns, nhchunks, nlextents;
	ctl_read("arenas.nlruns", &nlruns, sizeof(nlruns));
	ctl_read("arenas.nhchunks", &nhchunks, sizeof(nhchunks));
	ctl_read("arenas.nlextents", &nlextents, sizeof(nlextents));
	CHECK(nlextents == nlruns + nhchunks, "nlextents %u, nlruns %u, nhchunks %u", nlextents,
	      nlruns, nhchunks);
	for (unsigned i = 0; i < nlextents; i++) {
		size_t want = i < nlruns ? ctl_size("arenas.lrun.%u.size", i)
		                         : ctl_size("arenas.hchunk.%u.size", i - nlruns);
		CHECK(ctl_size("arenas.lextent.%u.size", i) == want, "lextent %u", i);
	}
	char name[64];
	snprintf(name, sizeof(name), "arenas.lextent.%u.size", nlextents);
	size_t mib[8], miblen = 8;
	CHECK(mallctlnametomib(name, mib, &miblen) == ENOENT, "%s", name);
	uint32_t nshards;
	ctl_read("arenas.bin.0.nshards", &nshards, sizeof(nshards));
	CHECK(nshards == 1, "nshards %u", nshards);

	/* arenas.lookup: small, large and huge blocks of a new arena. */
	unsigned a = arena_create();
	size_t sizes[] = {24, 40 * KiB, 3 * MiB};
	for (size_t k = 0; k < 3; k++) {
		void *p = mallocx(sizes[k], MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
		unsigned got = ~0u;
		size_t sz = sizeof(got);
		int err = mallctl("arenas.lookup", &got, &sz, &p, sizeof(p));
		CHECK(err == 0 && got == a, "lookup of a %zu-byte block: %s, arena %u, not %u",
		      sizes[k], strerror(err), got, a);
		dallocx(p, MALLOCX_TCACHE_NONE);
	}
	int local;
	void *q = &local;
	unsigned got;
	size_t sz = sizeof(got);
	CHECK(mallctl("arenas.lookup", &got, &sz, &q, sizeof(q)) == EINVAL, "stack address");

	bool init = false;
	snprintf(name, sizeof(name), "arena.%u.initialized", a);
	ctl_read(name, &init, sizeof(init));
	CHECK(init, "%s", name);

	/* MALLCTL_ARENAS_ALL is the 4.x "all arenas" index narenas. */
	snprintf(name, sizeof(name), "arena.%u.initialized", (unsigned)MALLCTL_ARENAS_ALL);
	init = false;
	ctl_read(name, &init, sizeof(init));
	CHECK(init, "%s", name);
	snprintf(name, sizeof(name), "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
	CHECK(mallctl(name, NULL, NULL, NULL, 0) == 0, "%s", name);
	if (have_stats) {
		unsigned n;
		ctl_read("arenas.narenas", &n, sizeof(n));
		refresh();
		CHECK(ctl_size("stats.arenas.%u.pactive", MALLCTL_ARENAS_ALL) ==
		          ctl_size("stats.arenas.%u.pactive", n),
		      "merged views differ");
	}
}

/* ---------------------------------------------------------------------- */
/* decay_views */

static void
test_decay_views(void **state) {
	(void)state;
	unsigned a = arena_create();
	char dirty[64], muzzy[64], secs[64];
	snprintf(dirty, sizeof(dirty), "arena.%u.dirty_decay_ms", a);
	snprintf(muzzy, sizeof(muzzy), "arena.%u.muzzy_decay_ms", a);
	snprintf(secs, sizeof(secs), "arena.%u.decay_time", a);
	ssize_t v = 2500;
	ctl_write(dirty, &v, sizeof(v));
	ctl_read(secs, &v, sizeof(v));
	CHECK(v == 3, "2500 ms read as decay_time %zd s, not 3 (rounded up)", v);
	v = 4;
	ctl_write(secs, &v, sizeof(v));
	ctl_read(dirty, &v, sizeof(v));
	CHECK(v == 4000, "decay_time 4 s read as %zd ms", v);
	v = 700;
	ctl_write(muzzy, &v, sizeof(v));
	ctl_read(muzzy, &v, sizeof(v));
	CHECK(v == 700, "muzzy_decay_ms %zd", v);
	v = -2;
	CHECK(mallctl(muzzy, NULL, NULL, &v, sizeof(v)) == EFAULT, "muzzy -2");
	CHECK(mallctl(dirty, NULL, NULL, &v, sizeof(v)) == EFAULT, "dirty -2");
	if (have_stats) {
		refresh();
		char name[64];
		snprintf(name, sizeof(name), "stats.arenas.%u.muzzy_decay_ms", a);
		ctl_read(name, &v, sizeof(v));
		CHECK(v == 700, "%s %zd", name, v);
	}

	/* arenas.*: the defaults for arenas made later. */
	ssize_t old_dirty, old_muzzy;
	ctl_read("arenas.dirty_decay_ms", &old_dirty, sizeof(old_dirty));
	ctl_read("arenas.muzzy_decay_ms", &old_muzzy, sizeof(old_muzzy));
	v = 1500;
	ctl_write("arenas.dirty_decay_ms", &v, sizeof(v));
	v = 250;
	ctl_write("arenas.muzzy_decay_ms", &v, sizeof(v));
	ctl_read("arenas.decay_time", &v, sizeof(v));
	CHECK(v == 2, "arenas.decay_time %zd", v);
	unsigned b = arena_create();
	snprintf(dirty, sizeof(dirty), "arena.%u.dirty_decay_ms", b);
	snprintf(muzzy, sizeof(muzzy), "arena.%u.muzzy_decay_ms", b);
	ctl_read(dirty, &v, sizeof(v));
	CHECK(v == 1500, "new arena dirty %zd", v);
	ctl_read(muzzy, &v, sizeof(v));
	CHECK(v == 250, "new arena muzzy %zd", v);
	ctl_write("arenas.dirty_decay_ms", &old_dirty, sizeof(old_dirty));
	ctl_write("arenas.muzzy_decay_ms", &old_muzzy, sizeof(old_muzzy));
}

/* ---------------------------------------------------------------------- */
/* conf_lines (children) */

static test_child_t child;

static void
run_child(const char *conf, const char *mode) {
	if (test_child_under_valgrind()) {
		print_message("# under valgrind (no children): skipped\n");
		skip();
	}
	if (!test_child_run(conf, mode, &child) || !test_child_ok(&child)) {
		fail_msg("MALLOC_CONF=%s %s: status 0x%x\nstdout:\n%s\nstderr:\n%s", conf, mode,
		         child.status, child.out, child.err);
	}
	if (child.err[0] != '\0') {
		fail_msg("MALLOC_CONF=%s %s: unexpected stderr:\n%s", conf, mode, child.err);
	}
}

static void
expect_out(const char *conf, const char *want) {
	if (strstr(child.out, want) == NULL) {
		fail_msg("MALLOC_CONF=%s: output\n%s\nlacks \"%s\"", conf, child.out, want);
	}
}

/* Child: prints the options the lines set, one "name=value" each. */
static int
child_opts(void) {
	static const char *const strs[] = {"opt.metadata_thp", "opt.dss", "opt.zero_realloc",
	                                   "opt.stats_print_opts"};
	static const char *const sizes[] = {"opt.max_background_threads", "opt.oversize_threshold",
	                                    "max_background_threads"};
	static const char *const ssizes[] = {"opt.dirty_decay_ms", "opt.muzzy_decay_ms",
	                                     "opt.decay_time", "arenas.dirty_decay_ms",
	                                     "arenas.muzzy_decay_ms"};
	for (size_t k = 0; k < 4; k++) {
		const char *v;
		size_t sz = sizeof(v);
		if (mallctl(strs[k], &v, &sz, NULL, 0) != 0) {
			return 1;
		}
		printf("%s=%s\n", strs[k], v);
	}
	for (size_t k = 0; k < 3; k++) {
		size_t v;
		size_t sz = sizeof(v);
		if (mallctl(sizes[k], &v, &sz, NULL, 0) != 0) {
			return 1;
		}
		printf("%s=%zu\n", sizes[k], v);
	}
	for (size_t k = 0; k < 5; k++) {
		ssize_t v;
		size_t sz = sizeof(v);
		if (mallctl(ssizes[k], &v, &sz, NULL, 0) != 0) {
			return 1;
		}
		printf("%s=%zd\n", ssizes[k], v);
	}
	bool bt;
	size_t sz = sizeof(bt);
	if (mallctl("opt.background_thread", &bt, &sz, NULL, 0) != 0) {
		return 1;
	}
	printf("opt.background_thread=%d\n", bt);
	/* Background threads start at an allocation slow path. */
	void *big = malloc(3 * MiB);
	free(big);
	size_t n = 0;
	sz = sizeof(n);
	for (int i = 0;
	     i < 100 && mallctl("stats.background_thread.num_threads", &n, &sz, NULL, 0) == 0 &&
	     n == 0;
	     i++) {
		free(malloc(3 * MiB));
		usleep(10000);
	}
	printf("threads=%zu\n", n);
	if (mallctl("stats.metadata_thp", &n, &sz, NULL, 0) == 0) {
		printf("metadata_thp_blocks=%zu\n", n);
	}
	return 0;
}

static void
test_conf_lines(void **state) {
	(void)state;
	const char *conf =
	    "background_thread:true,metadata_thp:auto,dirty_decay_ms:30000,muzzy_decay_ms:30000";
	run_child(conf, "opts");
	expect_out(conf, "opt.metadata_thp=auto\n");
	expect_out(conf, "opt.dirty_decay_ms=30000\n");
	expect_out(conf, "opt.muzzy_decay_ms=30000\n");
	expect_out(conf, "opt.decay_time=30\n");
	expect_out(conf, "arenas.dirty_decay_ms=30000\n");
	expect_out(conf, "arenas.muzzy_decay_ms=30000\n");
	expect_out(conf, "opt.background_thread=1\n");
	if (have_stats) {
		CHECK(strstr(child.out, "threads=0\n") == NULL, "no background thread:\n%s",
		      child.out);
	}

	conf = "max_background_threads:2,oversize_threshold:8388608,decay_ms:30000,dss:disabled,"
	       "zero_realloc:free,stats_print_opts:gJ";
	run_child(conf, "opts");
	expect_out(conf, "opt.max_background_threads=2\n");
	expect_out(conf, "max_background_threads=2\n");
	expect_out(conf, "opt.oversize_threshold=8388608\n");
	expect_out(conf, "opt.dirty_decay_ms=30000\n");
	expect_out(conf, "opt.dss=disabled\n");
	expect_out(conf, "opt.zero_realloc=free\n");
	expect_out(conf, "opt.stats_print_opts=gJ\n");

	conf = "metadata_thp:always,dirty_decay_ms:500,muzzy_decay_ms:0,decay_time:-1";
	run_child(conf, "opts");
	expect_out(conf, "opt.metadata_thp=always\n");
	/* Later pairs win: decay_time:-1 is dirty_decay_ms:-1. */
	expect_out(conf, "opt.dirty_decay_ms=-1\n");
	expect_out(conf, "opt.muzzy_decay_ms=0\n");
	expect_out(conf, "opt.decay_time=-1\n");
	if (have_stats) {
		/* Every metadata block is a 2 MiB one with THP advice. */
		CHECK(strstr(child.out, "metadata_thp_blocks=0\n") == NULL,
		      "no metadata block advised:\n%s", child.out);
	}

	/* The values liballoc cannot take are refused with a warning. */
	if (!test_child_run("dss:primary", "opts", &child)) {
		fail_msg("dss:primary: no child");
	}
	CHECK(strstr(child.err, "invalid value \"primary\" for option dss") != NULL, "stderr: %s",
	      child.err);
}

/* ---------------------------------------------------------------------- */
/* muzzy (children) */

/* Pages of [p, p+len) resident, by mincore. */
static size_t
resident_pages(void *p, size_t len) {
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t n = len / page;
	unsigned char vec[1024];
	if (n > sizeof(vec) || mincore(p, len, vec) != 0) {
		return SIZE_MAX;
	}
	size_t r = 0;
	for (size_t i = 0; i < n; i++) {
		r += vec[i] & 1;
	}
	return r;
}

typedef struct {
	size_t pdirty, pmuzzy;
	uint64_t dirty_purged, muzzy_purged, dirty_nmadvise, muzzy_nmadvise, npurge, nmadvise,
	    purged, dirty_npurge, muzzy_npurge;
} decay_stats_t;

static void
decay_stats(unsigned a, decay_stats_t *s) {
	refresh();
	s->pdirty = ctl_size("stats.arenas.%u.pdirty", a);
	s->pmuzzy = ctl_size("stats.arenas.%u.pmuzzy", a);
	s->dirty_purged = ctl_u64("stats.arenas.%u.dirty_purged", a);
	s->muzzy_purged = ctl_u64("stats.arenas.%u.muzzy_purged", a);
	s->dirty_nmadvise = ctl_u64("stats.arenas.%u.dirty_nmadvise", a);
	s->muzzy_nmadvise = ctl_u64("stats.arenas.%u.muzzy_nmadvise", a);
	s->dirty_npurge = ctl_u64("stats.arenas.%u.dirty_npurge", a);
	s->muzzy_npurge = ctl_u64("stats.arenas.%u.muzzy_npurge", a);
	s->npurge = ctl_u64("stats.arenas.%u.npurge", a);
	s->nmadvise = ctl_u64("stats.arenas.%u.nmadvise", a);
	s->purged = ctl_u64("stats.arenas.%u.purged", a);
}

#define NBLOCKS 16
#define BLOCK   (64 * KiB)

/* Allocates and frees NBLOCKS large blocks in arena a (their pages
 * written), leaving them free; returns the lowest block. */
static char *
churn(unsigned a, char **blocks) {
	char *low = NULL;
	for (int i = 0; i < NBLOCKS; i++) {
		blocks[i] = mallocx(BLOCK, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
		if (blocks[i] == NULL) {
			return NULL;
		}
		memset(blocks[i], 0x5a, BLOCK);
		low = low == NULL || blocks[i] < low ? blocks[i] : low;
	}
	for (int i = 0; i < NBLOCKS; i++) {
		dallocx(blocks[i], MALLOCX_TCACHE_NONE);
	}
	return low;
}

#define EXPECT(cond)                                                                   \
	do {                                                                           \
		if (!(cond)) {                                                         \
			printf("%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);      \
			printf("pdirty %zu pmuzzy %zu dirty_purged %llu muzzy_purged " \
			       "%llu\n",                                               \
			       s.pdirty, s.pmuzzy, (unsigned long long)s.dirty_purged, \
			       (unsigned long long)s.muzzy_purged);                    \
			return 1;                                                      \
		}                                                                      \
	} while (0)

/* Child, with dirty_decay_ms:0,muzzy_decay_ms:-1: freed pages go muzzy at
 * once and stay so; then the muzzy stage is driven through the arena's
 * muzzy_decay_ms. */
static int
child_muzzy(void) {
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = NBLOCKS * BLOCK / page;
	unsigned a = arena_create();
	char *blocks[NBLOCKS];
	decay_stats_t s = {0};
	char *low = churn(a, blocks);
	EXPECT(low != NULL);
	decay_stats(a, &s);
	/* Stage one only: dirty -> muzzy (MADV_FREE), never forced. */
	EXPECT(s.pdirty == 0);
	EXPECT(s.pmuzzy >= pages);
	EXPECT(s.dirty_purged >= pages && s.dirty_nmadvise >= 1);
	EXPECT(s.muzzy_purged == 0 && s.muzzy_npurge == 0);
	EXPECT(s.npurge == s.dirty_npurge + s.muzzy_npurge);
	EXPECT(s.purged == s.dirty_purged + s.muzzy_purged);

	/* muzzy_decay_ms 0: the muzzy pages are purged for good at once. */
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.muzzy_decay_ms", a);
	ssize_t ms = 0;
	ctl_write(name, &ms, sizeof(ms));
	size_t before = s.pmuzzy;
	decay_stats(a, &s);
	EXPECT(s.pmuzzy == 0);
	EXPECT(s.muzzy_purged >= before && s.muzzy_nmadvise >= 1 && s.muzzy_npurge >= 1);
	EXPECT(s.purged == s.dirty_purged + s.muzzy_purged);
	EXPECT(s.nmadvise == s.dirty_nmadvise + s.muzzy_nmadvise);
	/* MADV_DONTNEED: none of the blocks' pages is resident. */
	for (int i = 0; i < NBLOCKS; i++) {
		EXPECT(resident_pages(blocks[i], BLOCK) == 0);
	}

	/* A curve of 1 s: most pages are still muzzy just after (at most
	 * half could go within half the time, on a loaded machine), and all
	 * are gone once it has run (arena.<i>.decay lets the curve advance). */
	ms = 1000;
	ctl_write(name, &ms, sizeof(ms));
	uint64_t purged0 = s.muzzy_purged;
	EXPECT(churn(a, blocks) != NULL);
	decay_stats(a, &s);
	EXPECT(s.pmuzzy >= pages / 2);
	struct timespec ts = {1, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	snprintf(name, sizeof(name), "arena.%u.decay", a);
	ctl_write(name, NULL, 0);
	decay_stats(a, &s);
	EXPECT(s.pmuzzy == 0);
	EXPECT(s.muzzy_purged >= purged0 + pages);

	/* arena.<i>.purge purges everything for good, whatever the curves
	 * say (muzzy back to never first). */
	snprintf(name, sizeof(name), "arena.%u.muzzy_decay_ms", a);
	ms = -1;
	ctl_write(name, &ms, sizeof(ms));
	EXPECT(churn(a, blocks) != NULL);
	decay_stats(a, &s);
	EXPECT(s.pmuzzy >= pages);
	snprintf(name, sizeof(name), "arena.%u.purge", a);
	ctl_write(name, NULL, 0);
	decay_stats(a, &s);
	EXPECT(s.pmuzzy == 0 && s.pdirty == 0);
	printf("ok\n");
	return 0;
}

/* Child, with dirty_decay_ms:60000,oversize_threshold:4194304: small frees
 * stay dirty for now, a freed 8 MiB block is purged at once. */
static int
child_oversize(void) {
	unsigned a = arena_create();
	decay_stats_t s = {0};
	void *small = mallocx(BLOCK, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
	void *big = mallocx(8 * MiB, MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE);
	EXPECT(small != NULL && big != NULL);
	memset(small, 1, BLOCK);
	memset(big, 1, 8 * MiB);
	dallocx(small, MALLOCX_TCACHE_NONE);
	decay_stats(a, &s);
	size_t dirty0 = s.pdirty;
	EXPECT(dirty0 >= BLOCK / 4096);
	uint64_t purged0 = s.purged;
	dallocx(big, MALLOCX_TCACHE_NONE);
	decay_stats(a, &s);
	EXPECT(s.pdirty == dirty0);
	EXPECT(s.purged >= purged0 + 8 * MiB / (size_t)sysconf(_SC_PAGESIZE));
	printf("ok\n");
	return 0;
}

static void
test_muzzy(void **state) {
	(void)state;
	test_skip_unless(have_stats, "statistics");
	const char *conf = "dirty_decay_ms:0,muzzy_decay_ms:-1,purge_madvise:dontneed,purge:decay";
	run_child(conf, "muzzy");
	expect_out(conf, "ok\n");
	conf = "dirty_decay_ms:60000,oversize_threshold:4194304";
	run_child(conf, "oversize");
	expect_out(conf, "ok\n");
}

/* ---------------------------------------------------------------------- */
/* xallocx */

static void
test_xallocx_extra(void **state) {
	(void)state;
	test_skip_if_redzone_or_quarantine();
	/* Large: the pages after a 16 KiB block of a fresh arena are free. */
	unsigned a = arena_create();
	int flags = MALLOCX_ARENA(a) | MALLOCX_TCACHE_NONE;
	void *p = mallocx(16 * KiB, flags);
	CHECK(p != NULL, "mallocx");
	size_t usize = xallocx(p, 16 * KiB, 8 * KiB, flags);
	CHECK(usize == 24 * KiB, "xallocx(16 KiB, extra 8 KiB) -> %zu", usize);
	CHECK(sallocx(p, 0) == 24 * KiB, "sallocx %zu", sallocx(p, 0));
	/* Without extra it stays; a smaller size with extra keeps the
	 * larger block it already has room for. */
	CHECK(xallocx(p, 24 * KiB, 0, flags) == 24 * KiB, "no extra");
	CHECK(xallocx(p, 20 * KiB, 4 * KiB, flags) == 24 * KiB, "within");
	/* Extra beyond what follows: the block keeps its size. */
	void *q = mallocx(16 * KiB, flags);
	CHECK(q != NULL, "mallocx");
	CHECK(xallocx(p, 24 * KiB, 1 * MiB, flags) == 24 * KiB || q < p,
	      "grew over the next block");
	dallocx(q, flags);
	dallocx(p, flags);

	/* Huge: an 8 MiB span freed, then 4 MiB taken from its start: the
	 * other 4 MiB follow, cached. */
	unsigned b = arena_create();
	flags = MALLOCX_ARENA(b) | MALLOCX_TCACHE_NONE;
	void *h = mallocx(8 * MiB, flags);
	CHECK(h != NULL, "mallocx 8 MiB");
	dallocx(h, flags);
	h = mallocx(4 * MiB, flags);
	CHECK(h != NULL, "mallocx 4 MiB");
	memset(h, 0x11, 4 * MiB);
	usize = xallocx(h, 4 * MiB, 4 * MiB, flags);
	CHECK(usize == 8 * MiB, "xallocx(4 MiB, extra 4 MiB) -> %zu", usize);
	CHECK(((unsigned char *)h)[4 * MiB - 1] == 0x11, "contents");
	/* All of it is the block's now (opaque: the compiler only knows of
	 * the 4 MiB asked for). */
	memset((void *)test_opaque((size_t)h), 0x22, 8 * MiB);
	/* Asking for less with no extra shrinks it back. */
	CHECK(xallocx(h, 4 * MiB, 0, flags) == 4 * MiB, "shrink");
	dallocx(h, flags);
}

/* ---------------------------------------------------------------------- */
/* dss */

static void
test_dss(void **state) {
	(void)state;
	const char *v = NULL;
	ctl_read("opt.dss", &v, sizeof(v));
	CHECK(v != NULL && strcmp(v, "disabled") == 0, "opt.dss %s", v);
	free(malloc(1));
	v = NULL;
	ctl_read("arena.0.dss", &v, sizeof(v));
	CHECK(v != NULL && strcmp(v, "disabled") == 0, "arena.0.dss %s", v);
	const char *w = "disabled";
	ctl_write("arena.0.dss", &w, sizeof(w));
	w = "primary";
	CHECK(mallctl("arena.0.dss", NULL, NULL, &w, sizeof(w)) == EFAULT, "primary");
	w = "secondary";
	CHECK(mallctl("arena.0.dss", NULL, NULL, &w, sizeof(w)) == EFAULT, "secondary");
	w = "sbrk";
	CHECK(mallctl("arena.0.dss", NULL, NULL, &w, sizeof(w)) == EINVAL, "sbrk");
	if (have_stats) {
		refresh();
		v = NULL;
		ctl_read("stats.arenas.0.dss", &v, sizeof(v));
		CHECK(v != NULL && strcmp(v, "disabled") == 0, "stats.arenas.0.dss %s", v);
	}
}

/* ---------------------------------------------------------------------- */
/* misc */

static void
test_misc(void **state) {
	(void)state;
	/* thread.idle flushes the cache: a freed block is back in the arena
	 * (its bin's flush count grows). */
	void *p = malloc(48);
	free(p);
	CHECK(mallctl("thread.idle", NULL, NULL, NULL, 0) == 0, "thread.idle");

	size_t max, opt_max, v;
	ctl_read("max_background_threads", &max, sizeof(max));
	ctl_read("opt.max_background_threads", &opt_max, sizeof(opt_max));
	CHECK(max >= 1 && max <= opt_max, "max %zu, opt %zu", max, opt_max);
	v = 1;
	ctl_write("max_background_threads", &v, sizeof(v));
	ctl_read("max_background_threads", &v, sizeof(v));
	CHECK(v == 1, "max_background_threads %zu", v);
	v = 0;
	CHECK(mallctl("max_background_threads", NULL, NULL, &v, sizeof(v)) == EINVAL, "0");
	v = opt_max + 1;
	CHECK(mallctl("max_background_threads", NULL, NULL, &v, sizeof(v)) == EINVAL, "opt + 1");
	ctl_write("max_background_threads", &max, sizeof(max));

	const char *zr = NULL;
	ctl_read("opt.zero_realloc", &zr, sizeof(zr));
	CHECK(zr != NULL && strcmp(zr, "free") == 0, "opt.zero_realloc %s", zr);
	if (have_stats) {
		size_t n0, n1;
		ctl_read("stats.zero_reallocs", &n0, sizeof(n0));
		CHECK(realloc(malloc(10), 0) == NULL, "realloc(p, 0) under zero_realloc:free");
		ctl_read("stats.zero_reallocs", &n1, sizeof(n1));
		CHECK(n1 == n0 + 1, "zero_reallocs %zu -> %zu", n0, n1);
	}
}

static int
child_main(const char *mode) {
	static const test_child_mode_t modes[] = {
	    {"opts", child_opts},
	    {"muzzy", child_muzzy},
	    {"oversize", child_oversize},
	};
	return test_child_dispatch(mode, modes, sizeof(modes) / sizeof(modes[0]));
}

int
main(int argc, char **argv) {
	if (dlsym(RTLD_DEFAULT, "mallctl") == NULL) {
		printf("the process allocator has no mallctl\n");
		return 77;
	}
	/* Calls must reach liballoc, not a jemalloc that got linked in. */
	Dl_info info;
	if (dladdr((void *)mallctl, &info) == 0 || strstr(info.dli_fname, "liballoc") == NULL) {
		printf("mallctl does not come from liballoc\n");
		return 1;
	}
	size_t sz = sizeof(bool);
	if (mallctl("config.stats", &have_stats, &sz, NULL, 0) != 0 ||
	    mallctl("config.tcache", &have_tcache, &sz, NULL, 0) != 0) {
		printf("mallctl config.* failed\n");
		return 1;
	}
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		return child_main(argv[2]);
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),         cmocka_unit_test(test_spellings),
	    cmocka_unit_test(test_sizes),         cmocka_unit_test(test_decay_views),
	    cmocka_unit_test(test_conf_lines),    cmocka_unit_test(test_muzzy),
	    cmocka_unit_test(test_xallocx_extra), cmocka_unit_test(test_dss),
	    cmocka_unit_test(test_misc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
