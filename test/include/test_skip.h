/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper for cmocka tests: skip the current test, with a "# ...:
 * skipped" line, when what it checks does not hold in this build or under
 * this MALLOC_CONF.
 *
 * test_skip_unless(have, what)     a feature the build may leave out
 *                                  ("# built without WHAT: skipped");
 *                                  `have` is the test's reading of its
 *                                  config.* node
 * test_skip_if_fill()              any fill option on: no thread caches
 * test_skip_if_redzone_or_quarantine()
 *                                  redzones change the small classes and
 *                                  the quarantine delays frees, so exact
 *                                  per-class counts do not hold
 *
 * The fill options are read as test_fill.h does (through dlsym, false when
 * the allocator has no mallctl). Header-only.
 */
#ifndef TEST_SKIP_H
#define TEST_SKIP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_fill.h"

static inline void
test_skip_unless(bool have, const char *what) {
	if (!have) {
		print_message("# built without %s: skipped\n", what);
		skip();
	}
}

/* prof:true: sampled blocks are allocated whole (prof.c), not as regions
 * or runs of their class, so a class's counts no longer match the
 * program's blocks (all of them with lg_prof_sample:0). */
static inline bool
test_prof_on(void) {
	bool on = false;
	return test_fill_read("opt.prof", &on, sizeof(on)) && on;
}

static inline void
test_skip_if_fill(void) {
	if (test_fill_active()) {
		print_message("# fill options on (MALLOC_CONF), no thread caches: skipped\n");
		skip();
	}
}

static inline void
test_skip_if_redzone_or_quarantine(void) {
	if (test_fill_redzone() || test_fill_quarantine()) {
		print_message("# redzone or quarantine on (MALLOC_CONF): skipped\n");
		skip();
	}
}

#endif /* TEST_SKIP_H */
