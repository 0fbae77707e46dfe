/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fuzz target "ctl_name": the mallctl name and MIB parsers (ctl.h).
 *
 * Input: a mode byte, a MIB length, an old-value length, then either a
 * name (mode even: the rest of the input, NUL-terminated) or MIB
 * components (mode odd: two bytes each, or 0xff and eight bytes for a
 * large one). Names go to mallctlnametomib with a MIB buffer of exactly
 * the length asked and to mallctl; MIBs to mallctlbymib. Reads only:
 * the new value is always NULL. Every buffer is an exact-size ASan
 * allocation, so a write or read past one is caught.
 *
 * Checked: the result is 0 or one of the documented errors (ENOENT,
 * EINVAL, EPERM, EFAULT, EAGAIN); nametomib never reports more components
 * than the buffer holds; a name nametomib does not know is ENOENT for
 * mallctl too; a name and its MIB give the same answer, and the same bytes
 * for nodes whose value cannot change between two reads (config.*, opt.*,
 * arenas.* but extend/create, stats.* until the next epoch, version); a
 * successful read leaves *oldlenp as the size of the value, never more
 * than the buffer.
 *
 * Nodes whose read creates something are bounded: a cache made by
 * tcache.create is destroyed at once, and arenas.extend (arenas.create)
 * succeeds at most 8 times per process; when it fails (a wrong *oldlenp) it
 * must not have made an arena.
 */
#define FUZZ_TARGET "ctl_name"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/internal/export.h"
#define ALLOC_PREFIXED_BUILD 1
#include "alloc.h"

#include "fuzz_driver.h"

#define A(name) ALLOC_API(name)

#define MAX_MIB 10

static void
fail(const char *what, const char *name, int a, int b) {
	fprintf(stderr, "ctl_name fuzz: %s (name \"%s\", results %d and %d)\n", what,
	        name != NULL ? name : "(by MIB)", a, b);
	abort();
}

static bool
documented(int err) {
	return err == 0 || err == ENOENT || err == EINVAL || err == EPERM || err == EFAULT ||
	       err == EAGAIN;
}

/* MIBs of the nodes with side effects, and of the top-level names whose
 * values are stable between two reads. */
static size_t mib_create[3], mib_extend[2][3];
static size_t len_create, len_extend[2];
static size_t top_stable[5];
static unsigned extends_left = 8;
/* arenas.narenas before a read of arenas.extend. */
static unsigned narenas_before;
static unsigned ntop_stable;

static void
setup_once(void) {
	static bool done;
	if (done) {
		return;
	}
	done = true;
	len_create = 3;
	if (A(mallctlnametomib)("tcache.create", mib_create, &len_create) != 0) {
		len_create = 0;
	}
	static const char *const ext[2] = {"arenas.extend", "arenas.create"};
	for (unsigned i = 0; i < 2; i++) {
		len_extend[i] = 3;
		if (A(mallctlnametomib)(ext[i], mib_extend[i], &len_extend[i]) != 0) {
			abort();
		}
	}
	static const char *const stable[] = {"config", "opt", "arenas", "stats", "version"};
	for (unsigned i = 0; i < 5; i++) {
		/* One component of a longer name: a partial MIB. */
		char name[32];
		snprintf(name, sizeof(name), "%s.x", stable[i]);
		size_t len = 1;
		if (i == 4) {
			snprintf(name, sizeof(name), "version");
		}
		if (A(mallctlnametomib)(name, &top_stable[ntop_stable], &len) == 0) {
			ntop_stable++;
		}
	}
}

static bool
mib_is(const size_t *mib, size_t len, const size_t *want, size_t wlen) {
	return wlen != 0 && len == wlen && memcmp(mib, want, len * sizeof(size_t)) == 0;
}

/*
 * Decides, for a read of mib (the name's resolution, or the MIB given),
 * whether to make it, and handles what it creates. Returns false to skip.
 */
static unsigned
narenas(void) {
	unsigned n;
	size_t len = sizeof(n);
	if (A(mallctl)("arenas.narenas", &n, &len, NULL, 0) != 0) {
		fail("arenas.narenas failed", "arenas.narenas", 0, 0);
	}
	return n;
}

static bool
is_extend(const size_t *mib, size_t len) {
	return mib_is(mib, len, mib_extend[0], len_extend[0]) ||
	       mib_is(mib, len, mib_extend[1], len_extend[1]);
}

static bool
may_read(const size_t *mib, size_t len) {
	if (is_extend(mib, len)) {
		if (extends_left == 0) {
			return false;
		}
		narenas_before = narenas();
	}
	return true;
}

static void
after_read(const size_t *mib, size_t len, int err, const void *oldp, size_t oldlen) {
	/* A failed create made nothing (the caller could not find it). */
	if (is_extend(mib, len)) {
		if (err == 0) {
			extends_left--;
		} else if (narenas() != narenas_before) {
			fail("a failed arenas.extend made an arena", "arenas.extend", err, 0);
		}
	}
	if (err == 0 && oldp != NULL && oldlen == sizeof(unsigned) &&
	    mib_is(mib, len, mib_create, len_create)) {
		unsigned id;
		memcpy(&id, oldp, sizeof(id));
		if (A(mallctl)("tcache.destroy", NULL, NULL, &id, sizeof(id)) != 0) {
			fail("tcache.destroy of a fresh cache failed", "tcache.create", 0, 0);
		}
	}
}

static bool
stable(const size_t *mib, size_t len) {
	if (len == 0) {
		return false;
	}
	for (unsigned i = 0; i < 2; i++) {
		if (mib_is(mib, len, mib_extend[i], len_extend[i])) {
			return false;
		}
	}
	for (unsigned i = 0; i < ntop_stable; i++) {
		if (mib[0] == top_stable[i]) {
			return true;
		}
	}
	return false;
}

/* One read of mib into a fresh buffer of oldlen bytes (NULL when
 * use_old is false). Returns the result; *out gets the buffer. */
static int
read_mib(const size_t *mib, size_t miblen, bool use_old, size_t oldlen, uint8_t **out,
         size_t *outlen) {
	uint8_t *old = use_old ? calloc(1, oldlen > 0 ? oldlen : 1) : NULL;
	size_t len = oldlen;
	int err = A(mallctlbymib)(mib, miblen, old, use_old ? &len : NULL, NULL, 0);
	if (!documented(err)) {
		fail("undocumented error", NULL, err, 0);
	}
	if (err == 0 && use_old && len > oldlen) {
		fail("*oldlenp grew past the buffer", NULL, (int)len, (int)oldlen);
	}
	after_read(mib, miblen, err, old, len);
	*out = old;
	*outlen = len;
	return err;
}

static void
fuzz_name(const char *name, size_t miblen, bool use_old, size_t oldlen) {
	/* nametomib into exactly miblen components. */
	size_t *mib = malloc((miblen > 0 ? miblen : 1) * sizeof(size_t));
	size_t len = miblen;
	int err_mib = A(mallctlnametomib)(name, mib, &len);
	if (!documented(err_mib)) {
		fail("undocumented error from mallctlnametomib", name, err_mib, 0);
	}
	if (err_mib == 0 && len > miblen) {
		fail("mallctlnametomib reported more components than asked", name, (int)len,
		     (int)miblen);
	}
	free(mib);

	/* The whole name. */
	size_t full[MAX_MIB];
	size_t flen = MAX_MIB;
	int err_full = A(mallctlnametomib)(name, full, &flen);
	if (err_full == 0 && !may_read(full, flen)) {
		return;
	}
	uint8_t *old = use_old ? calloc(1, oldlen > 0 ? oldlen : 1) : NULL;
	size_t olen = oldlen;
	int err = A(mallctl)(name, old, use_old ? &olen : NULL, NULL, 0);
	if (!documented(err)) {
		fail("undocumented error from mallctl", name, err, 0);
	}
	if (err_full == ENOENT && err != ENOENT) {
		fail("mallctlnametomib says ENOENT, mallctl does not", name, err_full, err);
	}
	if (err == 0 && use_old && olen > oldlen) {
		fail("*oldlenp grew past the buffer", name, (int)olen, (int)oldlen);
	}
	if (err_full == 0) {
		after_read(full, flen, err, old, olen);
		if (may_read(full, flen)) {
			uint8_t *old2;
			size_t olen2;
			int err2 = read_mib(full, flen, use_old, oldlen, &old2, &olen2);
			if (err2 != err) {
				fail("the name and its MIB give different results", name, err,
				     err2);
			}
			if (err == 0 && use_old && stable(full, flen) &&
			    (olen != olen2 || memcmp(old, old2, olen) != 0)) {
				fail("the name and its MIB read different values", name, err, err2);
			}
			free(old2);
		}
	}
	free(old);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	setup_once();
	if (size < 3) {
		return 0;
	}
	uint8_t mode = data[0];
	size_t miblen = data[1] % (MAX_MIB + 1);
	bool use_old = (data[2] & 0x80) == 0;
	size_t oldlen = data[2] & 0x3f;
	data += 3;
	size -= 3;
	if ((mode & 1) == 0) {
		char *name = malloc(size + 1);
		memcpy(name, data, size);
		name[size] = '\0';
		fuzz_name(name, miblen, use_old, oldlen);
		free(name);
		return 0;
	}
	/* Exactly miblen components, as many as the input gives. */
	size_t *mib = malloc((miblen > 0 ? miblen : 1) * sizeof(size_t));
	size_t n = 0;
	while (n < miblen && size >= 2) {
		if (data[0] == 0xff && size >= 9) {
			memcpy(&mib[n], data + 1, sizeof(size_t));
			data += 9;
			size -= 9;
		} else {
			mib[n] = (size_t)data[0] | (size_t)(data[1] & 0x0f) << 8;
			data += 2;
			size -= 2;
		}
		n++;
	}
	if (may_read(mib, n)) {
		uint8_t *old;
		size_t olen;
		read_mib(mib, n, use_old, oldlen, &old, &olen);
		free(old);
	}
	free(mib);
	return 0;
}
