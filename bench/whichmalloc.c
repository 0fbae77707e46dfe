/*
 * whichmalloc: prints the file of the shared object that provides the malloc
 * this process calls. scripts/bench runs it under each LD_PRELOAD to make sure
 * the allocator library really interposes (the dynamic loader only warns, and
 * goes on with glibc, when a preload cannot be loaded).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int
main(void) {
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	void *p = malloc(64);

	if (!sym || !p || !dladdr(sym, &info) || !info.dli_fname) {
		fprintf(stderr, "whichmalloc: cannot resolve malloc\n");
		return 1;
	}
	free(p);
	printf("%s\n", info.dli_fname);
	return 0;
}
