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

/* opt.thp: what liballoc asks of transparent huge pages for the memory it
 * maps. THP_DEFAULT: nothing, unless the system setting is "always", where
 * 2 MiB-aligned chunks would be backed by huge pages as soon as one byte
 * is touched (a chunk with one small object would cost 2 MiB of RSS): then
 * liballoc opts its memory out (MADV_NOHUGEPAGE). THP_ALWAYS: opts in
 * (MADV_HUGEPAGE). THP_NEVER: opts out. */
typedef enum {
	THP_DEFAULT = 0,
	THP_ALWAYS = 1,
	THP_NEVER = 2,
} thp_mode_t;
extern int opt_thp;

/* opt.purge_madvise: how purged pages are given back. MADV_DONTNEED (the
 * default) drops them at once, so RSS falls at once and the pages read as
 * zeros afterwards; MADV_FREE lets the kernel take them only under memory
 * pressure, which is cheaper when they are reused soon but leaves RSS high
 * until then. */
typedef enum {
	PURGE_MADVISE_DONTNEED = 0,
	PURGE_MADVISE_FREE = 1,
} purge_madvise_t;
extern int opt_purge_madvise;

/* opt.max_bytes: a hard cap on the bytes liballoc maps from the kernel
 * (arena chunks, huge spans and metadata, including retained spans whose
 * pages were purged but are still mapped); 0: no cap. pages_map and
 * pages_map_aligned charge a mapping against it atomically before calling
 * mmap and fail (NULL) when it would go over; pages_unmap gives the bytes
 * back. Memory that chunk hooks supply (arena.<i>.chunk_hooks) is the
 * hooks' own and is not charged. */
extern size_t opt_max_bytes;

/* Reads the system's THP setting; call once at start-up (no allocation). */
void pages_boot(void);

/* Applies opt.thp to a fresh mapping. */
void pages_set_thp(void *addr, size_t size);

/* Maps size bytes of zeroed read-write memory; NULL on failure. */
void *pages_map(size_t size);

/* Maps size bytes aligned to `alignment` (a power of two >= PAGE);
 * NULL on failure. */
void *pages_map_aligned(size_t size, size_t alignment);

void pages_unmap(void *addr, size_t size);

/* Releases the physical pages behind [addr, addr+size) while keeping the
 * mapping, per opt.purge_madvise. Returns true when the range now reads as
 * zeros (MADV_DONTNEED on private anonymous memory), false when contents
 * are undefined (MADV_FREE) or the purge failed. */
bool pages_purge(void *addr, size_t size);

#endif
