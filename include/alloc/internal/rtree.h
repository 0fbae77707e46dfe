/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Radix tree from chunk addresses to pointers (huge allocations' extent
 * nodes, and whatever else needs "which object owns this chunk").
 *
 * Contract. Keys are addresses; a key's chunk, key >> LG_CHUNK, selects the
 * slot, so rtree_get() of any address inside a chunk finds the value set
 * for that chunk. rtree_set() only takes chunk-aligned keys. Keys at or
 * above 2^LG_VADDR are out of range: rtree_get() returns NULL for them and
 * rtree_set() fails. An rtree_t is zero-initialisable storage for a static
 * global; rtree_init() (or RTREE_INITIALIZER) supplies the lock and the
 * allocator of leaves.
 *
 * Layout. The RTREE_BITS = LG_VADDR - LG_CHUNK significant key bits split
 * into a root level of 2^ceil(RTREE_BITS / 2) leaf pointers, held in the
 * struct, and leaves of 2^floor(RTREE_BITS / 2) values (27 bits: 16384 root
 * slots, 128 KiB of static storage, and 64 KiB leaves covering 16 GiB of
 * address space each). Leaves come zeroed from the caller's allocator on
 * first use and are never freed, so a reader that has loaded a leaf
 * pointer may use it forever.
 *
 * Concurrency. Readers take no lock: rtree_get() is two acquire loads. Writers
 * (rtree_set, rtree_clear) are serialised by rt->lock; a new leaf is fully
 * zeroed before its pointer is published with a release store, and values
 * are published with release stores, so a reader that sees a value also
 * sees what the writer wrote before setting it. A value read concurrently
 * with a write for the same key is either the old or the new one.
 *
 * Lock order: rt->lock comes after every arena, chunk and huge lock and
 * before base_lock (the leaf allocator, called with it held). Fork
 * handlers: rtree_prefork takes it, the parent releases it, the child
 * re-creates it.
 *
 * rtree_set returns true on failure, the convention for the whole file.
 */
#ifndef ALLOC_INTERNAL_RTREE_H
#define ALLOC_INTERNAL_RTREE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc/internal/config.h"
#include "alloc/internal/util.h"

#define RTREE_BITS          (LG_VADDR - LG_CHUNK)
#define RTREE_LEAF_BITS     (RTREE_BITS / 2)
#define RTREE_ROOT_BITS     (RTREE_BITS - RTREE_LEAF_BITS)
#define RTREE_ROOT_NENTRIES ((size_t)1 << RTREE_ROOT_BITS)
#define RTREE_LEAF_NENTRIES ((size_t)1 << RTREE_LEAF_BITS)
#define RTREE_LEAF_SIZE     (RTREE_LEAF_NENTRIES * sizeof(void *))

_Static_assert(LG_VADDR <= 64, "virtual addresses wider than uintptr_t");
_Static_assert(RTREE_BITS >= 2, "LG_VADDR must exceed LG_CHUNK by 2 or more");

typedef struct rtree_s rtree_t;
struct rtree_s {
	/*
	 * Serialises writers and leaf creation; readers never take it.
	 * Lock order: after arena/chunk/huge locks, before base_lock.
	 */
	pthread_mutex_t lock;
	/*
	 * Returns size bytes of zeroed, page-aligned memory, or NULL; the
	 * memory is never given back. Called with lock held.
	 */
	void *(*alloc)(size_t size);
	/*
	 * root[key >> (LG_CHUNK + RTREE_LEAF_BITS)]: a leaf of
	 * RTREE_LEAF_NENTRIES values, or NULL until a key under it is set.
	 * Written once (NULL -> leaf) under lock with a release store; read
	 * with acquire loads.
	 */
	void **root[RTREE_ROOT_NENTRIES];
};

/* Static initialiser: `static rtree_t t = RTREE_INITIALIZER(base_alloc);` */
#define RTREE_INITIALIZER(alloc_fn)                      \
	{                                                \
		PTHREAD_MUTEX_INITIALIZER, (alloc_fn), { \
			NULL                             \
		}                                        \
	}

/* Makes rt an empty tree whose leaves come from alloc. Not thread-safe. */
void rtree_init(rtree_t *rt, void *(*alloc)(size_t size));

/*
 * Maps the chunk-aligned key to val (NULL clears). True on failure: key out
 * of range or not chunk-aligned, or no memory for a leaf.
 */
bool rtree_set(rtree_t *rt, uintptr_t key, void *val);

/* rtree_set(rt, key, NULL) that never allocates. */
void rtree_clear(rtree_t *rt, uintptr_t key);

void rtree_prefork(rtree_t *rt);
void rtree_postfork_parent(rtree_t *rt);
void rtree_postfork_child(rtree_t *rt);

ALWAYS_INLINE size_t
rtree_root_index(uintptr_t key) {
	return (size_t)(key >> (LG_CHUNK + RTREE_LEAF_BITS));
}

ALWAYS_INLINE size_t
rtree_leaf_index(uintptr_t key) {
	return (size_t)(key >> LG_CHUNK) & (RTREE_LEAF_NENTRIES - 1);
}

ALWAYS_INLINE bool
rtree_key_in_range(uintptr_t key) {
	/* Written as a root-index bound so that LG_VADDR == 64 needs no special case. */
	return rtree_root_index(key) < RTREE_ROOT_NENTRIES;
}

/*
 * The value set for the chunk containing key, or NULL if none or the key is
 * out of range. Lock-free; safe for any key, from any thread, at any time.
 */
ALWAYS_INLINE void *
rtree_get(const rtree_t *rt, uintptr_t key) {
	if (unlikely(!rtree_key_in_range(key))) {
		return NULL;
	}
	void **leaf = __atomic_load_n(&rt->root[rtree_root_index(key)], __ATOMIC_ACQUIRE);
	if (unlikely(leaf == NULL)) {
		return NULL;
	}
	return __atomic_load_n(&leaf[rtree_leaf_index(key)], __ATOMIC_ACQUIRE);
}

#endif
