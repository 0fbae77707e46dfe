/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Virtual memory from the kernel: mapping, unmapping, aligned mapping and
 * purging (telling the kernel it may take the physical pages back).
 * Every address and size here is a multiple of PAGE. Nothing is cached
 * here; chunk.c decides what to keep.
 */
#ifndef ALLOC_INTERNAL_PAGES_H
#define ALLOC_INTERNAL_PAGES_H

#include <stdbool.h>
#include <stddef.h>

/* Maps size bytes of zeroed read-write memory; NULL on failure. */
void *pages_map(size_t size);

/* Maps size bytes aligned to `alignment` (a power of two >= PAGE);
 * NULL on failure. */
void *pages_map_aligned(size_t size, size_t alignment);

void pages_unmap(void *addr, size_t size);

/* Releases the physical pages behind [addr, addr+size) while keeping the
 * mapping. Returns true when the range now reads as zeros (MADV_DONTNEED
 * on private anonymous memory), false when contents are undefined or the
 * purge failed. */
bool pages_purge(void *addr, size_t size);

#endif
