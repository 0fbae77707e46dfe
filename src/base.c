/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The base allocator (see base.h): a bump pointer into chunks mapped for
 * metadata only.
 */
#include "alloc/internal/base.h"

#include <stdint.h>
#include <sys/mman.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/config.h"
#include "alloc/internal/mutex.h"
#include "alloc/internal/pages.h"

/* Protects every base_* variable below. Lock order: last (see mutex.h). */
static mutex_t base_lock = MUTEX_INITIALIZER;
/* Unused tail of the current metadata block: [base_next, base_end). */
static char *base_next;
static char *base_end;
static size_t base_mapped;
static size_t base_allocated;
static size_t base_thp_nblocks;

int opt_metadata_thp = METADATA_THP_DISABLED;

/* Metadata blocks are mapped in units of this size, which keeps the number
 * of mappings low without holding much unused memory (untouched pages cost
 * no RSS). */
#define BASE_BLOCK ((size_t)256 << 10)

/* Maps a block for a request of size bytes (under base_lock), following
 * opt.metadata_thp; *block gets its length. */
static char *
base_map_block(size_t size, size_t *block) {
	bool thp = opt_metadata_thp == METADATA_THP_ALWAYS ||
	           (opt_metadata_thp == METADATA_THP_AUTO && base_mapped >= BASE_THP_AUTO_BYTES);
	if (thp) {
		*block = ALIGN_UP(size, BASE_THP_BLOCK);
		char *fresh = pages_map_aligned(*block, BASE_THP_BLOCK);
		if (fresh != NULL) {
			madvise(fresh, *block, MADV_HUGEPAGE);
			base_thp_nblocks += *block / BASE_THP_BLOCK;
			return fresh;
		}
		/* Out of (aligned) address space or over opt.max_bytes: a
		 * plain block may still fit. */
	}
	*block = size > BASE_BLOCK ? ALIGN_UP(size, PAGE) : BASE_BLOCK;
	return pages_map(*block);
}

void *
base_alloc(size_t size) {
	size_t align = (size & PAGE_MASK) == 0 ? PAGE : CACHELINE;
	size = ALIGN_UP(size, CACHELINE);
	mutex_lock(&base_lock);
	char *p = (char *)ALIGN_UP((uintptr_t)base_next, align);
	if (base_next == NULL || p + size > base_end) {
		size_t block;
		char *fresh = base_map_block(size, &block);
		if (fresh == NULL) {
			mutex_unlock(&base_lock);
			return NULL;
		}
		base_mapped += block;
		/* Keep the larger remaining tail: a big one-off request should
		 * not throw away the current block. */
		if (base_next == NULL || (size_t)(base_end - base_next) < block - size) {
			base_next = fresh + size;
			base_end = fresh + block;
		}
		p = fresh;
	} else {
		base_next = p + size;
	}
	base_allocated += size;
	mutex_unlock(&base_lock);
	return p;
}

size_t
base_mapped_bytes(void) {
	mutex_lock(&base_lock);
	size_t ret = base_mapped;
	mutex_unlock(&base_lock);
	return ret;
}

size_t
base_allocated_bytes(void) {
	mutex_lock(&base_lock);
	size_t ret = base_allocated;
	mutex_unlock(&base_lock);
	return ret;
}

size_t
base_thp_blocks(void) {
	mutex_lock(&base_lock);
	size_t ret = base_thp_nblocks;
	mutex_unlock(&base_lock);
	return ret;
}

void
base_prefork(void) {
	mutex_prefork(&base_lock);
}

void
base_postfork_parent(void) {
	mutex_postfork_parent(&base_lock);
}

void
base_postfork_child(void) {
	mutex_postfork_child(&base_lock);
}
