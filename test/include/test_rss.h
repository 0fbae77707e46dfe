/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper: how much memory the process holds, as the kernel counts it,
 * for the tests that check that purging gives memory back.
 *
 * test_rss_held()   resident bytes less the pages marked MADV_FREE and not
 *                   yet taken back (/proc/self/smaps_rollup: Rss minus
 *                   LazyFree); 0 when neither smaps_rollup nor statm can
 *                   be read
 *
 * With purge_madvise:free every purge is an MADV_FREE: the pages stay in
 * the resident set until the kernel needs them (doc/options.md), but they
 * are the kernel's to take without a write-back and are counted in
 * LazyFree, so Rss - LazyFree falls when liballoc purges under either
 * setting. Kernels before 4.14 have no smaps_rollup: then it is statm's
 * resident set. Reads with open/read into a stack buffer, so it makes no
 * allocator call (the tests call it in loops that must leave the
 * allocator idle). Header-only.
 */
#ifndef TEST_RSS_H
#define TEST_RSS_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The whole of a small /proc file into buf (NUL-terminated); false when
 * it cannot be opened or read. */
static inline bool
test_rss_read(const char *path, char *buf, size_t size) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return false;
	}
	size_t len = 0;
	ssize_t n;
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0) {
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return len > 0;
}

/* The value in kB of the smaps_rollup line starting with `key`, in bytes;
 * 0 when there is no such line. */
static inline size_t
test_rss_field(const char *buf, const char *key) {
	size_t klen = strlen(key);
	for (const char *line = buf; line != NULL && *line != '\0';) {
		if (strncmp(line, key, klen) == 0) {
			return (size_t)strtoul(line + klen, NULL, 10) * 1024;
		}
		line = strchr(line, '\n');
		line = line != NULL ? line + 1 : NULL;
	}
	return 0;
}

static inline size_t
test_rss_held(void) {
	char buf[4096];
	if (test_rss_read("/proc/self/smaps_rollup", buf, sizeof(buf))) {
		size_t rss = test_rss_field(buf, "Rss:");
		size_t lazy = test_rss_field(buf, "LazyFree:");
		if (rss > 0) {
			return rss > lazy ? rss - lazy : 0;
		}
	}
	if (!test_rss_read("/proc/self/statm", buf, sizeof(buf))) {
		return 0;
	}
	char *end;
	strtoul(buf, &end, 10);
	return (size_t)strtoul(end, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

#endif /* TEST_RSS_H */
