/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper: which of liballoc's debugging fill options (MALLOC_CONF
 * junk, zero, redzone, quarantine) the process runs with, read through
 * mallctl when the process allocator exports it (false otherwise, e.g. on
 * glibc). Tests that assert how thread caches, size classes or per-class
 * counters behave skip those assertions when these options change them:
 * with any of them on there are no thread caches, redzones take bytes off
 * small classes, and the quarantine delays frees. Header-only.
 */
#ifndef TEST_FILL_H
#define TEST_FILL_H

#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef int (*test_fill_mallctl_t)(const char *, void *, size_t *, void *, size_t);

static inline bool
test_fill_read(const char *name, void *v, size_t len) {
	test_fill_mallctl_t ctl = (test_fill_mallctl_t)dlsym(RTLD_DEFAULT, "mallctl");
	size_t l = len;
	return ctl != NULL && ctl(name, v, &l, NULL, 0) == 0 && l == len;
}

/* opt.redzone: small objects carry guards, their usable sizes differ. */
static inline bool
test_fill_redzone(void) {
	bool on = false;
	return test_fill_read("opt.redzone", &on, sizeof(on)) && on;
}

/* opt.quarantine: bytes each thread holds back after free (0: none). */
static inline size_t
test_fill_quarantine_bytes(void) {
	size_t q = 0;
	return test_fill_read("opt.quarantine", &q, sizeof(q)) ? q : 0;
}

/* opt.quarantine: frees are delayed. */
static inline bool
test_fill_quarantine(void) {
	return test_fill_quarantine_bytes() != 0;
}

/* Any fill option on: thread caches are off. */
static inline bool
test_fill_active(void) {
	const char *junk = NULL;
	bool zero = false;
	return (test_fill_read("opt.junk", &junk, sizeof(junk)) && strcmp(junk, "false") != 0) ||
	       (test_fill_read("opt.zero", &zero, sizeof(zero)) && zero) || test_fill_redzone() ||
	       test_fill_quarantine();
}

#endif
