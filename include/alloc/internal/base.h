/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The base allocator: memory for liballoc's own metadata (arenas, run
 * descriptors, extent nodes, radix tree leaves, thread-cache stacks).
 *
 * It carves bump allocations out of chunks it maps itself; nothing is ever
 * returned, so callers recycle their objects on free lists of their own.
 * Keeping metadata out of the program's heap means a heap overflow in the
 * program cannot overwrite allocator state next to its blocks.
 * The bytes mapped here are reported as stats.metadata.
 */
#ifndef ALLOC_INTERNAL_BASE_H
#define ALLOC_INTERNAL_BASE_H

#include <stdbool.h>
#include <stddef.h>

/* Returns size bytes of zeroed memory aligned to a cache line (64 bytes),
 * or page-aligned when size is a multiple of the page size; NULL when the
 * kernel refuses memory. Thread-safe. */
void *base_alloc(size_t size);

/* Bytes mapped for metadata and bytes handed out of them. */
size_t base_mapped_bytes(void);
size_t base_allocated_bytes(void);

void base_prefork(void);
void base_postfork_parent(void);
void base_postfork_child(void);

#endif
