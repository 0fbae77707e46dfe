/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The dynamic loader allocates through the process allocator (link maps,
 * search paths, dlerror strings, dynamic TLS blocks) and frees it again on
 * dlclose. These tests load and unload shared libraries over and over while
 * the program keeps allocating, from one thread and from several at once,
 * and check that blocks held across dlopen/dlclose keep their contents.
 * libm.so.6 is required (part of glibc); zlib (whose compressor allocates
 * its state with malloc) and a library exporting a TLS variable (dlsym of
 * it makes the loader malloc a dynamic TLS block per thread) are used when
 * present and skipped otherwise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_check.h"

#include "test_rng.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static void
fill(unsigned char *p, size_t n, unsigned seed) {
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7 + (i >> 10));
}

static int
intact(const unsigned char *p, size_t n, unsigned seed) {
	for (size_t i = 0; i < n; i++) {
		if (p[i] != (unsigned char)(seed + i * 7 + (i >> 10)))
			return 0;
	}
	return 1;
}

/* A ring of live blocks of mixed sizes, checked when replaced. Returns 0 on corruption. */
struct ring {
	unsigned char *p[64];
	size_t n[64];
	unsigned seed[64];
	uint64_t rng;
	unsigned next;
};

static int
ring_churn(struct ring *r, int steps) {
	for (int s = 0; s < steps; s++) {
		unsigned i = r->next++ % 64;
		if (r->p[i] != NULL) {
			if (!intact(r->p[i], r->n[i], r->seed[i]))
				return 0;
			free(r->p[i]);
		}
		uint64_t x = test_rng_next(&r->rng) % 1000;
		size_t n = x < 900 ? 1 + x : x < 998 ? 16 * KiB + x * 100 : 2 * MiB + x;
		r->p[i] = malloc(n);
		if (r->p[i] == NULL)
			return 0;
		r->n[i] = n;
		r->seed[i] = (unsigned)test_rng_next(&r->rng);
		fill(r->p[i], n, r->seed[i]);
	}
	return 1;
}

static int
ring_drain(struct ring *r) {
	int ok = 1;
	for (int i = 0; i < 64; i++) {
		if (r->p[i] != NULL) {
			ok &= intact(r->p[i], r->n[i], r->seed[i]);
			free(r->p[i]);
			r->p[i] = NULL;
		}
	}
	return ok;
}

/* Opens libm, calls cos() through dlsym, closes it. Returns 0 on failure. */
static int
libm_round_trip(void) {
	void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		return 0;
	double (*cos_fn)(double) = (double (*)(double))(uintptr_t)dlsym(h, "cos");
	int ok = cos_fn != NULL && cos_fn(0.0) == 1.0;
	return dlclose(h) == 0 && ok;
}

static void
test_libm_loop(void **state) {
	(void)state;
	static struct ring r = {.rng = 1};
	for (int i = 0; i < 500; i++) {
		CHECK(libm_round_trip(), "dlopen/dlsym/dlclose of libm.so.6 failed: %s",
		      dlerror() ? dlerror() : "?");
		CHECK(ring_churn(&r, 20), "a block held across dlopen/dlclose was corrupted");
	}
	CHECK(ring_drain(&r), "a block held across dlopen/dlclose was corrupted");
}

static void
test_several_libraries(void **state) {
	(void)state;
	static const char *const libs[] = {"libm.so.6",     "libresolv.so.2", "libz.so.1",
	                                   "libbz2.so.1.0", "liblzma.so.5",   "libexpat.so.1"};
	enum { NLIBS = sizeof(libs) / sizeof(libs[0]) };
	static struct ring r = {.rng = 2};
	void *handles[NLIBS];
	for (int round = 0; round < 100; round++) {
		/* Open all (RTLD_GLOBAL on odd rounds), close in a rotating order. */
		for (int i = 0; i < NLIBS; i++) {
			handles[i] = dlopen(libs[i], RTLD_NOW | (round & 1 ? RTLD_GLOBAL : 0));
			CHECK(i != 0 || handles[i] != NULL, "dlopen(libm.so.6): %s", dlerror());
			CHECK(ring_churn(&r, 5), "block corrupted");
		}
		for (int k = 0; k < NLIBS; k++) {
			int i = (k + round) % NLIBS;
			if (handles[i] != NULL)
				CHECK(dlclose(handles[i]) == 0, "dlclose(%s): %s", libs[i],
				      dlerror());
			CHECK(ring_churn(&r, 5), "block corrupted");
		}
	}
	CHECK(ring_drain(&r), "block corrupted");
}

static void
test_dlerror_strings(void **state) {
	(void)state;
	for (int i = 0; i < 2000; i++) {
		void *h =
		    dlopen(i & 1 ? "libdoes-not-exist-liballoc.so" : "/nonexistent/x.so", RTLD_NOW);
		CHECK(h == NULL, "dlopen of a missing library succeeded");
		const char *e = dlerror();
		CHECK(e != NULL && strlen(e) > 0, "no dlerror() message");
		void *m = malloc(strlen(e) + 1);
		CHECK(m != NULL, "malloc");
		strcpy(m, e);
		free(m);
		void *sym = dlsym(RTLD_DEFAULT, "no_such_symbol_liballoc_test");
		CHECK(sym == NULL, "dlsym of a missing symbol succeeded");
		CHECK(dlerror() != NULL, "no dlerror() after failed dlsym");
	}
}

typedef int (*compress2_fn)(unsigned char *, unsigned long *, const unsigned char *, unsigned long,
                            int);
typedef int (*uncompress_fn)(unsigned char *, unsigned long *, const unsigned char *,
                             unsigned long);
typedef unsigned long (*compress_bound_fn)(unsigned long);

/* zlib allocates its deflate state (~270 KiB) and window with malloc and frees it. */
static void
test_zlib_through_dlopen(void **state) {
	(void)state;
	void *probe = dlopen("libz.so.1", RTLD_NOW);
	if (probe == NULL) {
		print_message("# libz.so.1 not available: skipped\n");
		skip();
	}
	dlclose(probe);
	size_t n = 1 * MiB;
	unsigned char *src = malloc(n), *out = malloc(n);
	CHECK(src && out, "malloc");
	for (size_t i = 0; i < n; i++)
		src[i] = (unsigned char)((i * i) >> 7);
	for (int round = 0; round < 20; round++) {
		void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
		CHECK(h != NULL, "dlopen(libz.so.1): %s", dlerror());
		compress2_fn compress2 = (compress2_fn)(uintptr_t)dlsym(h, "compress2");
		uncompress_fn uncompress = (uncompress_fn)(uintptr_t)dlsym(h, "uncompress");
		compress_bound_fn bound = (compress_bound_fn)(uintptr_t)dlsym(h, "compressBound");
		CHECK(compress2 && uncompress && bound, "zlib symbols missing");
		unsigned long clen = bound(n);
		unsigned char *c = malloc(clen);
		CHECK(c != NULL, "malloc");
		CHECK(compress2(c, &clen, src, n, 1 + round % 9) == 0, "compress2 failed");
		unsigned long olen = n;
		CHECK(uncompress(out, &olen, c, clen) == 0 && olen == n, "uncompress failed");
		CHECK(memcmp(src, out, n) == 0, "zlib round trip differs");
		free(c);
		CHECK(dlclose(h) == 0, "dlclose(libz)");
	}
	free(src);
	free(out);
}

/* Libraries with an exported TLS variable: dlsym makes the loader malloc a TLS block. */
static const char *const tls_libs[][2] = {
    {"libGLdispatch.so.0", "_glapi_tls_Current"},
    {"libglapi.so.0", "_glapi_tls_Dispatch"},
    {"libbabeltrace-ctf.so.1", "bt_ctf_last_field_error"},
};

static int tls_lib_index = -1;

static void *
tls_thread(void *arg) {
	void *h = arg;
	uintptr_t bad = 0;
	for (int i = 0; i < 50; i++) {
		void **var = dlsym(h, tls_libs[tls_lib_index][1]);
		if (var == NULL)
			return (void *)1;
		*var = &bad; /* touch this thread's instance */
		void *m = malloc(100 + (size_t)i);
		if (m == NULL)
			return (void *)1;
		memset(m, 1, 100);
		free(m);
		if (*var != &bad)
			return (void *)1;
	}
	return NULL;
}

static void
test_dynamic_tls(void **state) {
	(void)state;
	void *h = NULL;
	for (size_t i = 0; i < sizeof(tls_libs) / sizeof(tls_libs[0]) && h == NULL; i++) {
		h = dlopen(tls_libs[i][0], RTLD_NOW | RTLD_LOCAL);
		if (h != NULL) {
			tls_lib_index = (int)i;
			dlclose(h);
			h = (void *)1;
		}
	}
	if (h == NULL) {
		print_message("# no library with a TLS variable found: skipped\n");
		skip();
	}
	for (int round = 0; round < 20; round++) {
		h = dlopen(tls_libs[tls_lib_index][0], RTLD_NOW | RTLD_LOCAL);
		CHECK(h != NULL, "dlopen(%s): %s", tls_libs[tls_lib_index][0], dlerror());
		pthread_t t[4];
		for (int i = 0; i < 4; i++)
			CHECK(pthread_create(&t[i], NULL, tls_thread, h) == 0, "pthread_create");
		for (int i = 0; i < 4; i++) {
			void *ret;
			pthread_join(t[i], &ret);
			CHECK(ret == NULL, "thread using dynamic TLS failed");
		}
		CHECK(tls_thread(h) == NULL, "main thread using dynamic TLS failed");
		CHECK(dlclose(h) == 0, "dlclose");
	}
}

/* Two threads load and unload libraries while two others allocate and free. */
static void *
loader_thread(void *arg) {
	(void)arg;
	for (int i = 0; i < 200; i++) {
		if (!libm_round_trip())
			return (void *)1;
		void *h = dlopen("libresolv.so.2", RTLD_NOW | RTLD_LOCAL);
		if (h != NULL)
			dlclose(h);
		(void)dlopen("libdoes-not-exist-liballoc.so", RTLD_NOW);
		(void)dlerror();
	}
	return NULL;
}

static void *
churn_thread(void *arg) {
	struct ring *r = arg;
	for (int i = 0; i < 300; i++) {
		if (!ring_churn(r, 50))
			return (void *)1;
	}
	return ring_drain(r) ? NULL : (void *)1;
}

static void
test_concurrent_dlopen(void **state) {
	(void)state;
	static struct ring rings[2] = {{.rng = 3}, {.rng = 4}};
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		int err = pthread_create(&t[i], NULL, i < 2 ? loader_thread : churn_thread,
		                         i < 2 ? NULL : &rings[i - 2]);
		CHECK(err == 0, "pthread_create: %d", err);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		CHECK(ret == NULL, "thread %d failed (%s)", i, i < 2 ? "dlopen" : "corruption");
	}
}

int
main(void) {
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_libm_loop),       cmocka_unit_test(test_several_libraries),
	    cmocka_unit_test(test_dlerror_strings), cmocka_unit_test(test_zlib_through_dlopen),
	    cmocka_unit_test(test_dynamic_tls),     cmocka_unit_test(test_concurrent_dlopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
