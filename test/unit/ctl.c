/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit test of the mallctl tree (ctl.h, ctl*.c): name -> MIB resolution
 * (full, partial, indexed and run-time named components), MIB walking,
 * and the error rules (ENOENT, EINVAL, EPERM) on the unit-test objects.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/opt.h"
#include "alloc/internal/sz.h"
#include "alloc/internal/tcache.h"

static void
test_full_names(void **state) {
	(void)state;
	size_t mib[CTL_MAX_DEPTH];
	size_t len = CTL_MAX_DEPTH;
	assert_int_equal(ctl_nametomib("version", mib, &len), 0);
	assert_int_equal(len, 1);

	len = CTL_MAX_DEPTH;
	assert_int_equal(ctl_nametomib("arenas.bin.2.size", mib, &len), 0);
	assert_int_equal(len, 4);
	assert_int_equal(mib[2], 2);
	size_t size;
	size_t sz = sizeof(size);
	assert_int_equal(ctl_bymib(mib, len, &size, &sz, NULL, 0), 0);
	assert_int_equal(size, bin_infos[2].reg_size);

	len = CTL_MAX_DEPTH;
	if (!config_stats) {
		/* Without statistics stats.arenas.<i> is no valid index. */
		assert_int_equal(ctl_nametomib("stats.arenas.0.bins.3.curregs", mib, &len), ENOENT);
		return;
	}
	assert_int_equal(ctl_nametomib("stats.arenas.0.bins.3.curregs", mib, &len), 0);
	assert_int_equal(len, 6);
	assert_int_equal(mib[2], 0);
	assert_int_equal(mib[4], 3);
}

static void
test_partial_mib(void **state) {
	(void)state;
	size_t mib[CTL_MAX_DEPTH];
	size_t len = 2;
	/* Two components asked for: the rest of the name is left out. */
	assert_int_equal(ctl_nametomib("arenas.bin.0.size", mib, &len), 0);
	assert_int_equal(len, 2);
	size_t full[CTL_MAX_DEPTH];
	size_t flen = CTL_MAX_DEPTH;
	assert_int_equal(ctl_nametomib("arenas.bin.0.size", full, &flen), 0);
	assert_int_equal(mib[0], full[0]);
	assert_int_equal(mib[1], full[1]);
	/* Complete it by hand for every bin, as the manual's example does. */
	for (size_t j = 0; j < SZ_NSMALL; j++) {
		mib[2] = j;
		mib[3] = full[3];
		size_t size;
		size_t sz = sizeof(size);
		assert_int_equal(ctl_bymib(mib, 4, &size, &sz, NULL, 0), 0);
		assert_int_equal(size, sz_index2size((szind_t)j));
	}
	/* One past the last bin does not exist. */
	mib[2] = SZ_NSMALL;
	size_t size;
	size_t sz = sizeof(size);
	assert_int_equal(ctl_bymib(mib, 4, &size, &sz, NULL, 0), ENOENT);
}

static void
test_bad_names(void **state) {
	(void)state;
	static const char *const bad[] = {
	    "",
	    "nosuch",
	    "arenas.",
	    ".arenas",
	    "arenas..bin",
	    "arenas",
	    "arenas.bin",
	    "arenas.bin.0",
	    "arenas.bin.x.size",
	    "arenas.bin.-1.size",
	    "arenas.bin.99999999.size",
	    "arenas.bin.0.size.more",
	    "version.more",
	    "opt.no_such_option",
	    "stats.arenas.0.bins.0.nosuch",
	    "stats.arenas.0.lruns.100000.nmalloc",
	    "arena.4096000.purge",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t mib[CTL_MAX_DEPTH];
		size_t len = CTL_MAX_DEPTH;
		int err = ctl_nametomib(bad[i], mib, &len);
		if (err != ENOENT) {
			fail_msg("ctl_nametomib(\"%s\") = %d, want ENOENT", bad[i], err);
		}
		size_t v[2];
		size_t vlen = sizeof(size_t);
		assert_int_equal(ctl_byname(bad[i], v, &vlen, NULL, 0), ENOENT);
	}
}

static void
test_bymib_errors(void **state) {
	(void)state;
	size_t mib[CTL_MAX_DEPTH];
	size_t len = CTL_MAX_DEPTH;
	assert_int_equal(ctl_nametomib("arenas.page", mib, &len), 0);
	size_t page;
	size_t sz = sizeof(page);
	assert_int_equal(ctl_bymib(mib, len, &page, &sz, NULL, 0), 0);
	assert_int_equal(page, PAGE);
	/* Interior node, too long, unknown component. */
	assert_int_equal(ctl_bymib(mib, 1, &page, &sz, NULL, 0), ENOENT);
	size_t longer[3] = {mib[0], mib[1], 0};
	assert_int_equal(ctl_bymib(longer, 3, &page, &sz, NULL, 0), ENOENT);
	size_t unknown[2] = {mib[0], 1000};
	assert_int_equal(ctl_bymib(unknown, 2, &page, &sz, NULL, 0), ENOENT);
	size_t top[1] = {1000};
	assert_int_equal(ctl_bymib(top, 1, &page, &sz, NULL, 0), ENOENT);
}

static void
test_opt_nodes(void **state) {
	(void)state;
	for (size_t i = 0; i < opt_table_len; i++) {
		const opt_desc_t *d = &opt_table[i];
		char name[64];
		snprintf(name, sizeof(name), "opt.%s", d->name);
		size_t mib[CTL_MAX_DEPTH];
		size_t len = CTL_MAX_DEPTH;
		assert_int_equal(ctl_nametomib(name, mib, &len), 0);
		assert_int_equal(len, 2);
		assert_int_equal(mib[1], i);
		size_t want = d->type == OPT_TYPE_BOOL       ? sizeof(bool)
		              : d->type == OPT_TYPE_UNSIGNED ? sizeof(unsigned)
		              : d->type == OPT_TYPE_SSIZE    ? sizeof(ssize_t)
		              : d->type == OPT_TYPE_SIZE     ? sizeof(size_t)
		                                             : sizeof(const char *);
		char buf[16];
		size_t blen = want;
		if (!config_tcache && (d->ptr == &opt_tcache || d->ptr == &opt_lg_tcache_max)) {
			/* Thread-cache options do not exist without caches. */
			assert_int_equal(ctl_bymib(mib, len, buf, &blen, NULL, 0), ENOENT);
			continue;
		}
		if (!config_prof && opt_is_prof(d->ptr)) {
			/* Nor profiling options without --enable-prof. */
			assert_int_equal(ctl_bymib(mib, len, buf, &blen, NULL, 0), ENOENT);
			continue;
		}
		assert_int_equal(ctl_bymib(mib, len, buf, &blen, NULL, 0), 0);
		if (d->type == OPT_TYPE_STRING) {
			/* The option's own text, not a copy. */
			const char *text;
			memcpy(&text, buf, sizeof(text));
			assert_ptr_equal(text, d->ptr);
		} else {
			assert_memory_equal(buf, d->type == OPT_TYPE_ENUM ? buf : d->ptr, want);
		}
		/* A wrong length is EINVAL; options are read-only. */
		blen = want + 1;
		assert_int_equal(ctl_bymib(mib, len, buf, &blen, NULL, 0), EINVAL);
		assert_int_equal(ctl_bymib(mib, len, NULL, NULL, buf, want), EPERM);
	}
	ssize_t ms;
	size_t sz = sizeof(ms);
	assert_int_equal(ctl_byname("opt.dirty_decay_ms", &ms, &sz, NULL, 0), 0);
}

static void
test_rw_rules(void **state) {
	(void)state;
	const char *v;
	size_t sz = sizeof(v);
	assert_int_equal(ctl_byname("version", &v, &sz, NULL, 0), 0);
	assert_non_null(v);
	assert_int_equal(ctl_byname("version", NULL, NULL, &v, sizeof(v)), EPERM);
	/* Short buffer: EINVAL, and what fits is copied. */
	uint64_t epoch = 0;
	uint32_t small = 0;
	sz = sizeof(small);
	assert_int_equal(ctl_byname("epoch", &small, &sz, NULL, 0), EINVAL);
	sz = sizeof(epoch);
	assert_int_equal(ctl_byname("epoch", &epoch, &sz, NULL, 0), 0);
	uint64_t before = epoch;
	assert_int_equal(ctl_byname("epoch", &epoch, &sz, &epoch, sizeof(epoch)), 0);
	assert_int_equal(epoch, before + 1);
	assert_int_equal(ctl_byname("epoch", NULL, NULL, &epoch, sizeof(uint32_t)), EINVAL);
	/* Void nodes take neither direction. */
	assert_int_equal(ctl_byname("arena.0.purge", NULL, NULL, NULL, 0), 0);
	assert_int_equal(ctl_byname("arena.0.purge", &epoch, &sz, NULL, 0), EPERM);
	assert_int_equal(ctl_byname("arena.0.purge", NULL, NULL, &epoch, sizeof(epoch)), EPERM);
	if (config_tcache) {
		assert_int_equal(ctl_byname("thread.tcache.flush", NULL, NULL, NULL, 0), 0);
		assert_int_equal(ctl_byname("thread.tcache.flush", &epoch, &sz, NULL, 0), EPERM);
	} else {
		/* Thread-cache nodes do not exist without caches. */
		assert_int_equal(ctl_byname("thread.tcache.flush", NULL, NULL, NULL, 0), ENOENT);
		assert_int_equal(ctl_byname("thread.tcache.flush", &epoch, &sz, NULL, 0), ENOENT);
	}
	/* The merged arena index is narenas. */
	unsigned n;
	sz = sizeof(n);
	assert_int_equal(ctl_byname("arenas.narenas", &n, &sz, NULL, 0), 0);
	char name[64];
	snprintf(name, sizeof(name), "stats.arenas.%u.small.allocated", n);
	size_t allocated;
	sz = sizeof(allocated);
	/* Without statistics (--disable-stats) no stats.* node exists. */
	assert_int_equal(ctl_byname(name, &allocated, &sz, NULL, 0), config_stats ? 0 : ENOENT);
	snprintf(name, sizeof(name), "stats.arenas.%u.small.allocated", n + 1);
	assert_int_equal(ctl_byname(name, &allocated, &sz, NULL, 0), ENOENT);
	snprintf(name, sizeof(name), "arena.%u.purge", n);
	assert_int_equal(ctl_byname(name, NULL, NULL, NULL, 0), 0);
	snprintf(name, sizeof(name), "arena.%u.purge", n + 1);
	assert_int_equal(ctl_byname(name, NULL, NULL, NULL, 0), ENOENT);
}

/* A read that creates something and cannot return it (wrong *oldlenp) is
 * EINVAL and creates nothing: the arena or cache would be lost for good,
 * and 4,096 such reads used to use up every cache id. */
static void
test_create_wrong_length(void **state) {
	(void)state;
	unsigned n, after, id;
	size_t sz = sizeof(n);
	assert_int_equal(ctl_byname("arenas.narenas", &n, &sz, NULL, 0), 0);
	uint8_t small;
	sz = sizeof(small);
	assert_int_equal(ctl_byname("arenas.extend", &small, &sz, NULL, 0), EINVAL);
	assert_int_equal(ctl_byname("arenas.create", &small, &sz, NULL, 0), EINVAL);
	sz = sizeof(after);
	assert_int_equal(ctl_byname("arenas.narenas", &after, &sz, NULL, 0), 0);
	assert_int_equal(after, n);
	if (!config_tcache) {
		return;
	}
	sz = sizeof(id);
	assert_int_equal(ctl_byname("tcache.create", &id, &sz, NULL, 0), 0);
	assert_int_equal(ctl_byname("tcache.destroy", NULL, NULL, &id, sizeof(id)), 0);
	/* Ids are recycled lowest first: a cache made by the bad read would
	 * hold this one. */
	sz = sizeof(small);
	assert_int_equal(ctl_byname("tcache.create", &small, &sz, NULL, 0), EINVAL);
	unsigned again;
	sz = sizeof(again);
	assert_int_equal(ctl_byname("tcache.create", &again, &sz, NULL, 0), 0);
	assert_int_equal(again, id);
	assert_int_equal(ctl_byname("tcache.destroy", NULL, NULL, &again, sizeof(again)), 0);
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_names),          cmocka_unit_test(test_partial_mib),
	    cmocka_unit_test(test_bad_names),           cmocka_unit_test(test_bymib_errors),
	    cmocka_unit_test(test_opt_nodes),           cmocka_unit_test(test_rw_rules),
	    cmocka_unit_test(test_create_wrong_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
