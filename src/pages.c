/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Kernel memory: mmap, munmap and madvise wrappers (see pages.h).
 */
#include "alloc/internal/pages.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc/internal/assert.h"
#include "alloc/internal/config.h"
#include "alloc/internal/message.h"

/* Linux 4.17; older kernels take the address as a hint (pages_move checks
 * what it gets). */
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

int opt_thp = THP_DEFAULT;
int opt_purge_madvise = PURGE_MADVISE_DONTNEED;
size_t opt_max_bytes = 0;

/* Bytes currently mapped through pages_map/pages_map_aligned and not yet
 * given back with pages_unmap: what opt.max_bytes caps. Updated atomically,
 * before mmap, so concurrent threads cannot overshoot the cap together. */
static size_t pages_mapped;

/* The advice applied to fresh mappings (0: none), from opt.thp and the
 * system setting. */
static int pages_thp_advice;

void
pages_boot(void) {
	if (opt_thp == THP_ALWAYS) {
		pages_thp_advice = MADV_HUGEPAGE;
		return;
	}
	if (opt_thp == THP_NEVER) {
		pages_thp_advice = MADV_NOHUGEPAGE;
		return;
	}
	pages_thp_advice = 0;
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return;
	}
	char buf[128];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		if (strstr(buf, "[always]") != NULL) {
			pages_thp_advice = MADV_NOHUGEPAGE;
		}
	}
}

void
pages_set_thp(void *addr, size_t size) {
	if (pages_thp_advice != 0) {
		int saved_errno = errno;
		madvise(addr, size, pages_thp_advice);
		errno = saved_errno;
	}
}

/* Reserves size bytes of the opt.max_bytes budget; false when that would
 * exceed the cap. */
static bool
pages_charge(size_t size) {
	size_t cur = __atomic_load_n(&pages_mapped, __ATOMIC_RELAXED);
	do {
		if (opt_max_bytes != 0 && (size > opt_max_bytes || cur > opt_max_bytes - size)) {
			return false;
		}
	} while (!__atomic_compare_exchange_n(&pages_mapped, &cur, cur + size, true,
	                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

static void
pages_uncharge(size_t size) {
	__atomic_fetch_sub(&pages_mapped, size, __ATOMIC_RELAXED);
}

/*
 * The alignment mmap is sure to give: the kernel's page, which is PAGE
 * or smaller (--with-lg-page may be larger than the build machine's page,
 * as jemalloc allows: 64 KiB liballoc pages on a 4 KiB kernel). No Linux
 * port has pages below 4 KiB, so this needs no system call.
 */
#define PAGES_MMAP_ALIGN ((size_t)4096 < PAGE ? (size_t)4096 : PAGE)

/* mmap and munmap without accounting: pages_map_aligned over-maps for a
 * moment and trims, and only what it keeps is charged. */
static void *
pages_mmap(size_t size) {
	int saved_errno = errno;
	void *ret = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved_errno;
	return ret == MAP_FAILED ? NULL : ret;
}

static void
pages_munmap(void *addr, size_t size) {
	int saved_errno = errno;
	if (munmap(addr, size) != 0) {
		msg_warn("munmap(%p, %zu) failed", addr, size);
	}
	errno = saved_errno;
}

/* pages_map without the alignment to PAGE that a kernel with smaller
 * pages does not give. */
static void *
pages_map_any(size_t size) {
	assert_internal(size != 0 && (size & PAGE_MASK) == 0);
	if (!pages_charge(size)) {
		return NULL;
	}
	void *ret = pages_mmap(size);
	if (ret == NULL) {
		pages_uncharge(size);
	}
	return ret;
}

void *
pages_map(size_t size) {
	/* Every address liballoc hands out or carves up is a multiple of
	 * PAGE (pages.h). */
	if (PAGES_MMAP_ALIGN < PAGE) {
		return pages_map_aligned(size, PAGE);
	}
	return pages_map_any(size);
}

void
pages_unmap(void *addr, size_t size) {
	pages_munmap(addr, size);
	pages_uncharge(size);
}

void *
pages_map_aligned(size_t size, size_t alignment) {
	assert_internal(is_pow2(alignment) && alignment >= PAGE);
	/* Under opt.thp:always a mapping of at least one huge page starts on
	 * a huge-page boundary (--with-lg-hugepage), so the kernel can back
	 * all of it with huge pages, not only the part past the first
	 * boundary. With the defaults (2 MiB chunks and huge pages) chunks
	 * are aligned that way already. */
	if (pages_thp_advice == MADV_HUGEPAGE && size >= HUGEPAGE && alignment < HUGEPAGE) {
		alignment = HUGEPAGE;
	}
	/* Optimistic: most mappings land next to the previous one, and the
	 * kernel hands out addresses top-down, so a size that is a multiple of
	 * the alignment is often aligned already. */
	void *ret = pages_map_any(size);
	if (ret == NULL || ((uintptr_t)ret & (alignment - 1)) == 0) {
		return ret;
	}
	/* Unmapped, but still charged: the aligned mapping takes its place. */
	pages_munmap(ret, size);

	/* Map enough to contain an aligned range, then trim both ends: the
	 * mapping starts on a kernel page, so the aligned start is at most
	 * alignment - PAGES_MMAP_ALIGN bytes into it. */
	size_t alloc_size = size + alignment - PAGES_MMAP_ALIGN;
	char *raw = alloc_size < size ? NULL : pages_mmap(alloc_size);
	if (raw == NULL) {
		pages_uncharge(size);
		return NULL;
	}
	char *aligned = (char *)ALIGN_UP((uintptr_t)raw, alignment);
	size_t lead = (size_t)(aligned - raw);
	size_t trail = alloc_size - lead - size;
	if (lead != 0) {
		pages_munmap(raw, lead);
	}
	if (trail != 0) {
		pages_munmap(aligned + size, trail);
	}
	return aligned;
}

bool
pages_purge(void *addr, size_t size) {
	if (opt_purge_madvise == PURGE_MADVISE_FREE && pages_purge_lazy(addr, size)) {
		return false;
	}
	/* The default, and the fallback for kernels without MADV_FREE. */
	return pages_purge_forced(addr, size);
}

bool
pages_purge_lazy(void *addr, size_t size) {
	int saved_errno = errno;
	bool done = madvise(addr, size, MADV_FREE) == 0;
	errno = saved_errno;
	return done;
}

bool
pages_purge_forced(void *addr, size_t size) {
	int saved_errno = errno;
	bool zeroed = madvise(addr, size, MADV_DONTNEED) == 0;
	errno = saved_errno;
	return zeroed;
}

/* ---------------------------------------------------------------------- */
/* Moving pages (mremap). */

pages_grow_t
pages_grow(void *addr, size_t old_size, size_t new_size) {
	assert_internal(new_size > old_size && (new_size & PAGE_MASK) == 0);
	if (!pages_charge(new_size - old_size)) {
		return PAGES_UNMOVABLE;
	}
	int saved_errno = errno;
	/* No MREMAP_MAYMOVE: the kernel either extends the mapping over free
	 * address space after it, or fails. It checks that the old range is
	 * one mapping (EFAULT) before it looks for room (ENOMEM). */
	void *ret = mremap(addr, old_size, new_size, 0);
	int err = errno;
	errno = saved_errno;
	if (ret == addr) {
		return PAGES_GREW;
	}
	if (ret == MAP_FAILED && err == EFAULT) {
		/* Not one mapping (a huge allocation made of moved pieces,
		 * huge_alloc_from_dirty): a mapping of its own right after it
		 * grows it in place just as well, when that space is free. */
		char *tail = (char *)addr + old_size;
		void *more = mmap(tail, new_size - old_size, PROT_READ | PROT_WRITE,
		                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		errno = saved_errno;
		if (more == tail) {
			pages_set_thp(tail, new_size - old_size);
			return PAGES_GREW;
		}
		if (more != MAP_FAILED) {
			/* A kernel without MAP_FIXED_NOREPLACE took it as a hint. */
			pages_munmap(more, new_size - old_size);
		}
	}
	pages_uncharge(new_size - old_size);
	if (ret != MAP_FAILED) {
		/* Cannot happen without MREMAP_MAYMOVE; never keep a mapping
		 * somewhere else. */
		pages_munmap(ret, new_size);
		return PAGES_UNMOVABLE;
	}
	if (err == EFAULT) {
		return pages_can_move_parts() ? PAGES_MOVABLE_PARTS : PAGES_UNMOVABLE;
	}
	return err == ENOMEM ? PAGES_MOVABLE : PAGES_UNMOVABLE;
}

/* 0: not probed yet, 1: yes, 2: no. Racing probes agree; relaxed is
 * enough. */
static int pages_parts_state;

bool
pages_can_move_parts(void) {
	int state = __atomic_load_n(&pages_parts_state, __ATOMIC_RELAXED);
	if (state != 0) {
		return state == 1;
	}
	/* Two pages that are two mappings (different protections), moved in
	 * one call onto two pages of another mapping. */
	int saved_errno = errno;
	bool yes = false;
	char *src =
	    mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *dest =
	    mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (src != MAP_FAILED && dest != MAP_FAILED && mprotect(src + PAGE, PAGE, PROT_READ) == 0) {
		yes = mremap(src, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dest) == dest;
	}
	if (yes) {
		munmap(dest, 2 * PAGE);
	} else {
		if (src != MAP_FAILED) {
			munmap(src, 2 * PAGE);
		}
		/* dest stays: a failed move may have unmapped it first, and
		 * another thread may have mapped something there since. Two
		 * pages of address space, never touched, once per process. */
	}
	errno = saved_errno;
	__atomic_store_n(&pages_parts_state, yes ? 1 : 2, __ATOMIC_RELAXED);
	return yes;
}

pages_move_t
pages_move(void *addr, size_t old_size, void *dest, size_t new_size) {
	assert_internal(new_size >= old_size && (new_size & PAGE_MASK) == 0);
	int saved_errno = errno;
	void *ret = mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
	if (ret == dest) {
		errno = saved_errno;
		/* [addr, addr+old_size) is unmapped now; dest was charged when
		 * it was mapped. */
		pages_uncharge(old_size);
		return PAGES_MOVED;
	}
	/* The kernel unmaps dest before its last checks, so dest may now be a
	 * hole, or still the mapping it was. Mapping it again, only if all of
	 * it is free, tells which; when some of it is taken (ours still, or a
	 * mapping another thread made in the hole) the range is given up. */
	void *again = mmap(dest, new_size, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	errno = saved_errno;
	if (again == dest) {
		pages_set_thp(dest, new_size);
		return PAGES_DEST_ZEROED;
	}
	if (again != MAP_FAILED) {
		/* A kernel without MAP_FIXED_NOREPLACE took it as a hint. */
		pages_munmap(again, new_size);
	}
	pages_uncharge(new_size);
	return PAGES_DEST_LOST;
}
