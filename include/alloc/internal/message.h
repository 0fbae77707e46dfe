/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Messages to the user without allocating.
 *
 * liballoc cannot use stdio: printf may call malloc, and the allocator may be
 * in the middle of initialising. This module formats text into caller
 * buffers with a small printf subset (%s %d %u %zu %zd %ld %lu %llu %lld %x %lx
 * %zx %p %c %%, with optional '-' flag, field width and '0' padding) and
 * writes it through malloc_message, which the program may replace (the
 * jemalloc contract); the default writes to stderr with write(2).
 */
#ifndef ALLOC_INTERNAL_MESSAGE_H
#define ALLOC_INTERNAL_MESSAGE_H

#include <stdarg.h>
#include <stddef.h>

#include "alloc/internal/util.h"

/* Formats into buf (always NUL-terminated when size > 0); returns the length
 * the whole output would have had, like vsnprintf. */
size_t msg_vformat(char *buf, size_t size, const char *fmt, va_list ap);
size_t msg_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The JSON spelling of byte c inside a string (quote and backslash
 * escaped, control characters as \u00XX, anything else as is) into out,
 * NUL-terminated; returns its length. For the JSON writers
 * (stats_print.c, timeline.c). */
size_t msg_json_char(unsigned char c, char out[7]);

/* Formats and writes one message through malloc_message (or write(2) on
 * stderr when the program has not replaced it). Long output is truncated
 * at 4 KiB per call. */
void msg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes the string through malloc_message as is. */
void msg_write(const char *s);

/* "<liballoc>: " + message + newline, then abort(). For errors in the
 * program's use of the allocator (invalid free and the like). */
COLD __attribute__((noreturn)) void msg_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* "<liballoc>: " + message + newline; aborts instead when opt_abort is set. */
COLD void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
