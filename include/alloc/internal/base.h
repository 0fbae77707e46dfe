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

/*
 * opt.metadata_thp (jemalloc 5): whether metadata blocks ask for
 * transparent huge pages. DISABLED: never. ALWAYS: every block is mapped
 * 2 MiB-aligned, a multiple of 2 MiB, and advised MADV_HUGEPAGE. AUTO: the
 * same once BASE_THP_AUTO_BYTES of metadata are mapped (a small program's
 * few KiB of metadata would not fill a huge page; a big one's run
 * descriptors and extent nodes then take fewer TLB entries).
 */
typedef enum {
	METADATA_THP_DISABLED = 0,
	METADATA_THP_AUTO = 1,
	METADATA_THP_ALWAYS = 2,
} metadata_thp_mode_t;
extern int opt_metadata_thp;
#define BASE_THP_BLOCK      ((size_t)2 << 20)
#define BASE_THP_AUTO_BYTES ((size_t)1 << 20)

/* Returns size bytes of zeroed memory aligned to a cache line (64 bytes),
 * or page-aligned when size is a multiple of the page size; NULL when the
 * kernel refuses memory. Thread-safe. */
void *base_alloc(size_t size);

/* Bytes mapped for metadata and bytes handed out of them. */
size_t base_mapped_bytes(void);
size_t base_allocated_bytes(void);
/* Metadata blocks advised MADV_HUGEPAGE, in units of BASE_THP_BLOCK
 * (stats.metadata_thp). */
size_t base_thp_blocks(void);

void base_prefork(void);
void base_postfork_parent(void);
void base_postfork_child(void);

#endif
