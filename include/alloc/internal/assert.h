/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Graded internal assertions.
 *
 * assert_internal(e): checked in --enable-debug builds, compiled out (but
 * still type-checked) otherwise. assert_expensive(e): like assert_internal,
 * for checks that walk whole structures; also debug-only. unreachable():
 * tells the compiler a path cannot happen, and traps in debug builds.
 * A failed assertion prints one line naming file, line and expression, then
 * aborts. These never allocate.
 */
#ifndef ALLOC_INTERNAL_ASSERT_H
#define ALLOC_INTERNAL_ASSERT_H

#include "alloc/internal/config.h"
#include "alloc/internal/util.h"

/* Prints "<file>:<line>: failed assertion: <expr>" and aborts. */
COLD __attribute__((noreturn)) void assert_fail(const char *file, int line, const char *expr);

#define assert_internal(e)                                   \
	do {                                                 \
		if (config_debug && unlikely(!(e))) {        \
			assert_fail(__FILE__, __LINE__, #e); \
		}                                            \
	} while (0)

#define assert_expensive(e) assert_internal(e)

#define unreachable()                                                   \
	do {                                                            \
		if (config_debug) {                                     \
			assert_fail(__FILE__, __LINE__, "unreachable"); \
		}                                                       \
		__builtin_unreachable();                                \
	} while (0)

#endif
