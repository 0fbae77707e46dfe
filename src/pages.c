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

int opt_thp = THP_DEFAULT;
int opt_purge_madvise = PURGE_MADVISE_DONTNEED;

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

void *
pages_map(size_t size) {
	assert_internal(size != 0 && (size & PAGE_MASK) == 0);
	int saved_errno = errno;
	void *ret = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved_errno;
	return ret == MAP_FAILED ? NULL : ret;
}

void
pages_unmap(void *addr, size_t size) {
	int saved_errno = errno;
	if (munmap(addr, size) != 0) {
		msg_warn("munmap(%p, %zu) failed", addr, size);
	}
	errno = saved_errno;
}

void *
pages_map_aligned(size_t size, size_t alignment) {
	assert_internal(is_pow2(alignment) && alignment >= PAGE);
	/* Optimistic: most mappings land next to the previous one, and the
	 * kernel hands out addresses top-down, so a size that is a multiple of
	 * the alignment is often aligned already. */
	void *ret = pages_map(size);
	if (ret == NULL || ((uintptr_t)ret & (alignment - 1)) == 0) {
		return ret;
	}
	pages_unmap(ret, size);

	/* Map enough to contain an aligned range, then trim both ends. */
	size_t alloc_size = size + alignment - PAGE;
	if (alloc_size < size) {
		return NULL;
	}
	char *raw = pages_map(alloc_size);
	if (raw == NULL) {
		return NULL;
	}
	char *aligned = (char *)ALIGN_UP((uintptr_t)raw, alignment);
	size_t lead = (size_t)(aligned - raw);
	size_t trail = alloc_size - lead - size;
	if (lead != 0) {
		pages_unmap(raw, lead);
	}
	if (trail != 0) {
		pages_unmap(aligned + size, trail);
	}
	return aligned;
}

bool
pages_purge(void *addr, size_t size) {
	int saved_errno = errno;
	bool zeroed;
	if (opt_purge_madvise == PURGE_MADVISE_FREE && madvise(addr, size, MADV_FREE) == 0) {
		zeroed = false;
	} else {
		/* The default, and the fallback for kernels without MADV_FREE. */
		zeroed = madvise(addr, size, MADV_DONTNEED) == 0;
	}
	errno = saved_errno;
	return zeroed;
}
