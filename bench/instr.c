/*
 * instr: the malloc+free pair loop whose instructions scripts/bench
 * --instructions counts with callgrind.
 *
 *   instr SIZE N
 *
 * Warms up with 1000 pairs (thread cache created, bins populated, lazy
 * symbol binding done), then calls run_loop(SIZE, N), which does N pairs of
 * p = malloc(SIZE); sink = p; free(p). Built with -fno-builtin so the compiler
 * keeps every call, and the pointer goes through a volatile sink. callgrind
 * collects only inside run_loop (--toggle-collect=run_loop), and the runner
 * takes the difference of two runs (N and 2N pairs) so any one-off cost inside
 * the loop cancels: instructions per pair = (I(2N) - I(N)) / N. The figure
 * includes the loop's own few instructions (counter, compare, store, calls).
 *
 *   instr --which
 *
 * prints the file of the shared object whose malloc the program calls, so the
 * runner can check that the link really put the allocator under test first.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile sink;

__attribute__((noinline)) void
run_loop(size_t size, long n) {
	for (long i = 0; i < n; i++) {
		void *p = malloc(size);
		sink = p;
		free(p);
	}
}

int
main(int argc, char **argv) {
	if (argc == 2 && !strcmp(argv[1], "--which")) {
		Dl_info info;
		void *sym = dlsym(RTLD_DEFAULT, "malloc");
		if (!sym || !dladdr(sym, &info) || !info.dli_fname)
			return 1;
		printf("%s\n", info.dli_fname);
		return 0;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: instr SIZE N\n");
		return 2;
	}
	size_t size = (size_t)strtoul(argv[1], NULL, 10);
	long n = strtol(argv[2], NULL, 10);
	for (int i = 0; i < 1000; i++) {
		void *p = malloc(size);
		if (!p)
			return 1;
		sink = p;
		free(p);
	}
	run_loop(size, n);
	return 0;
}
