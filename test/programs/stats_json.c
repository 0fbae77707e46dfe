/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Helper of stats_json.sh: allocates a mix of small, large and huge blocks,
 * then writes malloc_stats_print's output with the options given as argv[1]
 * to stdout. Built on the C library; run with LD_PRELOAD=$LIBALLOC, it
 * finds malloc_stats_print with dlsym (exit 77 when there is none).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void stats_print_fn(void (*)(void *, const char *), void *, const char *);

static void
write_cb(void *opaque, const char *s) {
	fputs(s, (FILE *)opaque);
}

int
main(int argc, char **argv) {
	stats_print_fn *print = (stats_print_fn *)dlsym(RTLD_DEFAULT, "malloc_stats_print");
	if (print == NULL) {
		fprintf(stderr, "malloc_stats_print not found\n");
		return 77;
	}
	static void *blocks[1000];
	for (int i = 0; i < 1000; i++) {
		size_t size = i % 100 == 1  ? (size_t)3 << 20
		              : i % 10 == 5 ? 40000
		                            : (size_t)i * 8 + 1;
		blocks[i] = malloc(size);
		memset(blocks[i], 1, size);
	}
	for (int i = 0; i < 1000; i += 2) {
		free(blocks[i]);
	}
	print(write_cb, stdout, argc > 1 ? argv[1] : "");
	for (int i = 1; i < 1000; i += 2) {
		free(blocks[i]);
	}
	return 0;
}
