/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Radix tree from chunk addresses to pointers: the write side (setting and
 * clearing keys, creating leaves) and the fork handlers. Readers are inline
 * in rtree.h. Owns the tree's lock and its leaves, which are allocated
 * through the caller's allocator and never freed.
 */
#include "alloc/internal/rtree.h"

#include "alloc/internal/assert.h"

void
rtree_init(rtree_t *rt, void *(*alloc)(size_t size)) {
	pthread_mutex_init(&rt->lock, NULL);
	rt->alloc = alloc;
	/* Only entries that are set are written: the root of a static tree
	 * is 64 KiB of zeros in .bss, and writing them all would make those
	 * 16 pages resident in every process (reading maps the shared zero
	 * page, which costs no memory). */
	for (size_t i = 0; i < RTREE_ROOT_NENTRIES; i++) {
		if (rt->root[i] != NULL) {
			rt->root[i] = NULL;
		}
	}
}

/* The leaf for key, created if create is set; NULL if absent or no memory. */
static void **
rtree_leaf_get(rtree_t *rt, uintptr_t key, bool create) {
	void ***slot = &rt->root[rtree_root_index(key)];
	/* Relaxed: the lock orders this against the store that made it. */
	void **leaf = __atomic_load_n(slot, __ATOMIC_RELAXED);
	if (leaf != NULL || !create) {
		return leaf;
	}
	leaf = rt->alloc(RTREE_LEAF_SIZE);
	if (unlikely(leaf == NULL)) {
		return NULL;
	}
	assert_internal(((uintptr_t)leaf & PAGE_MASK) == 0);
	/* Zeroed by the allocator; publish it whole. */
	__atomic_store_n(slot, leaf, __ATOMIC_RELEASE);
	return leaf;
}

bool
rtree_set(rtree_t *rt, uintptr_t key, void *val) {
	if (unlikely(!rtree_key_in_range(key) || (key & CHUNK_MASK) != 0)) {
		return true;
	}
	pthread_mutex_lock(&rt->lock);
	void **leaf = rtree_leaf_get(rt, key, val != NULL);
	if (leaf != NULL) {
		__atomic_store_n(&leaf[rtree_leaf_index(key)], val, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&rt->lock);
	/* Clearing a key under a missing leaf is a success: it is already NULL. */
	return leaf == NULL && val != NULL;
}

void
rtree_clear(rtree_t *rt, uintptr_t key) {
	if (unlikely(!rtree_key_in_range(key))) {
		return;
	}
	bool failed = rtree_set(rt, key & ~(uintptr_t)CHUNK_MASK, NULL);
	assert_internal(!failed);
	(void)failed;
}

void
rtree_prefork(rtree_t *rt) {
	pthread_mutex_lock(&rt->lock);
}

void
rtree_postfork_parent(rtree_t *rt) {
	pthread_mutex_unlock(&rt->lock);
}

void
rtree_postfork_child(rtree_t *rt) {
	/* The lock may be held by a thread that does not exist in the child. */
	pthread_mutex_init(&rt->lock, NULL);
}
