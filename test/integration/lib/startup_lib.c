/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helper library of test/integration/startup.c, built twice: as
 * libstartup_linked.so (linked into the test, so its constructor runs
 * before main, possibly before the allocator's own start-up code) and as
 * libstartup_dlopen.so (loaded with dlopen). The constructor allocates a
 * small, a large and a huge block and fills them; the test checks them
 * through startup_lib_blocks_<name>(). With STARTUP_QUIET=1 in the
 * environment it allocates nothing.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef STARTUP_LIB_NAME
#error "build with -DSTARTUP_LIB_NAME=linked or dlopen"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b)  CAT_(a, b)

/* Sizes the constructor asks for: small, large, huge. */
static const size_t startup_sizes[3] = {40, 100000, 5u << 20};
static void *startup_blocks[3];

__attribute__((constructor)) static void
startup_lib_init(void) {
	/* The test's children that must make no allocator call before main
	 * set this. */
	const char *quiet = getenv("STARTUP_QUIET");
	if (quiet != NULL && quiet[0] == '1') {
		return;
	}
	for (int i = 0; i < 3; i++) {
		startup_blocks[i] = malloc(startup_sizes[i]);
		if (startup_blocks[i] != NULL) {
			memset(startup_blocks[i], 'a' + i, startup_sizes[i]);
		}
	}
}

/* The blocks and their requested sizes. */
__attribute__((visibility("default"))) void *const *
CAT(startup_lib_blocks_, STARTUP_LIB_NAME)(const size_t **sizes) {
	*sizes = startup_sizes;
	return startup_blocks;
}
