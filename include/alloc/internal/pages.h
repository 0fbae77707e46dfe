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

/* Maps size bytes of zeroed read-write memory, aligned to PAGE (also when
 * --with-lg-page made PAGE larger than the kernel's page); NULL on
 * failure. */
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

/* The two stages of jemalloc 5's decay, whatever opt.purge_madvise says:
 * pages_purge_lazy makes [addr, addr+size) muzzy with MADV_FREE and returns
 * true, or returns false having done nothing (a kernel without MADV_FREE);
 * pages_purge_forced drops the pages with MADV_DONTNEED and returns true
 * when the range now reads as zeros. */
bool pages_purge_lazy(void *addr, size_t size);
bool pages_purge_forced(void *addr, size_t size);

/*
 * Growing a mapping without copying it, for huge reallocations (huge.c).
 * Only for memory liballoc mapped itself (the default chunk hooks): the
 * kernel's page tables are moved, so the bytes keep their physical pages
 * and the grown part is new zeroed memory.
 */
typedef enum {
	/* [addr, addr+new_size) is mapped now, the new part zeroed and
	 * charged to opt.max_bytes. */
	PAGES_GREW,
	/* Not grown: the range is one mapping (pages_move can move it) but
	 * the address space after it is taken. */
	PAGES_MOVABLE,
	/* Not grown: the range is several mappings (a huge allocation made
	 * of moved pieces, or one the program changed the protection of in
	 * part), the address space after it is taken, and the kernel moves
	 * such ranges (pages_can_move_parts): pages_move with new_size ==
	 * old_size moves it, the rest of the destination is the caller's. */
	PAGES_MOVABLE_PARTS,
	/* Not grown: the range is not one mapping (the program changed the
	 * protection or locking of part of it, or it was made of mappings
	 * that the kernel did not merge), or the charge failed. Copy it. */
	PAGES_UNMOVABLE,
} pages_grow_t;

/* Tries to extend the mapping of [addr, addr+old_size) to new_size bytes
 * (> old_size) where it is: mremap, or for a range of several mappings a
 * new mapping right after it. */
pages_grow_t pages_grow(void *addr, size_t old_size, size_t new_size);

/* Whether the kernel moves a range made of several mappings in one
 * same-size mremap (Linux 6.17 on; before, EFAULT). Probed once, on first
 * use, with a few system calls on two pages of its own. */
bool pages_can_move_parts(void);

typedef enum {
	/* The pages of [addr, addr+old_size) now sit at [dest, ...), the
	 * rest of new_size is zeroed; the old range is unmapped and no longer
	 * charged. */
	PAGES_MOVED,
	/* Failed; the old range is intact and dest is mapped (zeroed). */
	PAGES_DEST_ZEROED,
	/* Failed; the old range is intact, but dest could not be told apart
	 * from another mapping made in its place: it is no longer liballoc's
	 * (and no longer charged). */
	PAGES_DEST_LOST,
} pages_move_t;

/* Moves the mapping [addr, addr+old_size) (one mapping: pages_grow said
 * PAGES_MOVABLE) onto [dest, dest+new_size), a mapped range of ours that
 * does not overlap it, growing it to new_size (>= old_size). With new_size
 * == old_size it moves the pages only, and the range may be several
 * mappings where pages_can_move_parts() (PAGES_MOVABLE_PARTS, and the
 * pieces of a huge allocation made of dirty cached spans). */
pages_move_t pages_move(void *addr, size_t old_size, void *dest, size_t new_size);

#endif
