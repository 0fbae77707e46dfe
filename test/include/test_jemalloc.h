/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper for the integration tests that compile against jemalloc's own
 * header, Debian's <jemalloc/jemalloc.h> (libjemalloc-dev), and link with
 * liballoc only: includes it and defines HAVE_JEMALLOC_H when it is
 * installed; otherwise defines a main() that skips the test (exit 77).
 * A test puts its whole body under #ifdef HAVE_JEMALLOC_H.
 */
#ifndef TEST_JEMALLOC_H
#define TEST_JEMALLOC_H

#if defined(__has_include)
#if __has_include(<jemalloc/jemalloc.h>)
#include <jemalloc/jemalloc.h>
#define HAVE_JEMALLOC_H 1
#endif
#endif

#ifndef HAVE_JEMALLOC_H
#include <stdio.h>

int
main(void) {
	printf("<jemalloc/jemalloc.h> is not installed (libjemalloc-dev)\n");
	return 77;
}
#endif

#endif
