/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Names of exported symbols.
 *
 * Every exported function is defined as `ALLOC_EXPORT ... ALLOC_NAME(malloc)(...)`.
 * ALLOC_NAME pastes the configured prefix (configure --with-prefix=PFX) in
 * front of the name; by default the prefix is empty and liballoc replaces
 * the C library's malloc. Unit-test builds (ALLOC_UNIT_TEST) always use the
 * prefix `unittest_`, so a test program keeps the C library's allocator and
 * can run under AddressSanitizer. ALLOC_PREFIXED is 1 when a prefix is in
 * force; glibc's __libc_* aliases are exported only when it is 0.
 */
#ifndef ALLOC_INTERNAL_EXPORT_H
#define ALLOC_INTERNAL_EXPORT_H

#include "alloc/internal/config.h"

#ifdef ALLOC_UNIT_TEST
#define ALLOC_PREFIX   unittest_
#define ALLOC_PREFIXED 1
#else
#define ALLOC_PREFIX   ALLOC_CONFIG_PREFIX
#define ALLOC_PREFIXED ALLOC_CONFIG_PREFIXED
#endif

#define ALLOC_CONCAT2(a, b) a##b
#define ALLOC_CONCAT(a, b)  ALLOC_CONCAT2(a, b)
#define ALLOC_NAME(n)       ALLOC_CONCAT(ALLOC_PREFIX, n)

#define ALLOC_EXPORT __attribute__((visibility("default")))

#endif
