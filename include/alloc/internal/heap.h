/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Private heaps (alloc_heap_*, see alloc.h and doc/heap.md): an arena that
 * lives in a region of memory the caller gives.
 *
 * A heap is not a second allocator. Its arena is an ordinary arena_t whose
 * `region` says where its memory and metadata are: the arena struct, its
 * chunk cache's extent nodes and its small runs' descriptors are in the
 * region's head (and tail), its chunks are the region's chunk-aligned middle
 * (arena.h, arena_region_t; chunk.h, region caches). Outside the region a
 * heap has only its slot in arenas[] (arena_slot_region marks it) and the
 * chunk registry bytes of its chunks, both per process.
 *
 * Blocks of a heap never go through a thread cache: free() tells them by
 * their registry value (ARENA_REGISTRY_HEAP), so reset and destroy never
 * leave a heap block cached anywhere.
 *
 * Locking: a heap made with ALLOC_HEAP_SHARED has, on top of its arena's
 * locks (made process-shared), one robust process-shared lock, the heap
 * lock, held around every arena call made for the heap (heap_enter /
 * heap_leave), so a process that dies inside the arena dies holding it and
 * the next process to take it recovers the heap (heap.c, heap_recover).
 * Lock order: the heap lock comes before the arena's bin locks (4.5 in
 * mutex.h's list). Heaps without the flag have no heap lock: their arena's
 * own locks are enough.
 */
#ifndef ALLOC_INTERNAL_HEAP_H
#define ALLOC_INTERNAL_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#include "alloc/internal/arena.h"
#include "alloc/internal/export.h"
#include "alloc.h"

/* Smallest region a heap takes. */
#define HEAP_MIN_SIZE ((size_t)4 << 20)

/* For a region arena (arena->region != NULL): takes the heap lock of a
 * shared heap (recovering it if its owner died). Returns false when the
 * heap is damaged and must not be used (errno is then ENOTRECOVERABLE). */
bool heap_enter(arena_t *arena);
void heap_leave(arena_t *arena);

/* alloc_heap_reset of the heap whose arena is `arena` (also for
 * arena.<i>.reset): 0, or ENOTRECOVERABLE for a damaged shared heap. */
int heap_reset(arena_t *arena);

/* Fork: takes / releases the cache locks of this process's heaps (both
 * sides release them after fork). Before arena_prefork: a cache lock comes
 * before the arena's bin locks. */
void heap_prefork(void);
void heap_postfork(void);

/* --enable-private-heap: the arena of the heap PFXconfig_private_heap
 * set, or NULL before. */
arena_t *heap_private_arena(void);

/* Accounting of a heap's live bytes (alloc_heap_stats' allocated and
 * high_water), called by alloc.c for every block of a region arena. */
void heap_count_alloc(arena_t *arena, size_t usize);
void heap_count_dalloc(arena_t *arena, size_t usize);

/* For a pointer that lies in no registered chunk of this process: if it is
 * in a live chunk of a heap this process knows (created or attached), but
 * one another process made, registers the chunk here and returns true. */
bool heap_register_chunk(const void *ptr);

/* The same for a chunk-aligned pointer: if it starts a live huge block of
 * a heap this process knows, enters it in the huge radix tree and returns
 * its extent; NULL otherwise. */
extent_t *heap_adopt_huge(const void *ptr);

/*
 * Provided by alloc.c for heap.c: alloc_ready sets the allocator and the
 * calling thread up (false when that fails); allocation from / resizing within a
 * given arena with no thread cache, with errno set as malloc does (NULL +
 * ENOMEM). alloc_arena_free frees a block of any arena as free() does.
 */
bool alloc_ready(void);
void *alloc_arena_malloc(arena_t *arena, size_t size, size_t alignment, bool zero);
void *alloc_arena_realloc(arena_t *arena, void *ptr, size_t size);
void alloc_arena_free(void *ptr);

#endif
