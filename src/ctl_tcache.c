/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mallctl tcache.*: explicit thread caches, for MALLOCX_TCACHE(id).
 *
 * tcache.create returns a new id; the cache fills from the arena the
 * calling thread uses at that moment. tcache.flush and tcache.destroy take
 * the id as the written value; an id that is not live is EFAULT, like a
 * missing value.
 */
#include <errno.h>

#include "alloc/internal/config.h"
#include "alloc/internal/ctl.h"
#include "alloc/internal/tcache.h"
#include "alloc/internal/tsd.h"

static int
tcache_create_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                  size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_tcache) {
		return ENOENT;
	}
	int err = ctl_create_check(oldp, oldlenp, newp, newlen, sizeof(unsigned));
	if (err != 0) {
		return err;
	}
	/* Without a buffer the id would be lost, and with it the cache:
	 * nothing could use or destroy it. */
	if (oldp == NULL || oldlenp == NULL) {
		return EINVAL;
	}
	arena_t *a = tsd_arena(ctl_tsd());
	unsigned id;
	if (a == NULL || tcaches_create(a, &id)) {
		return EAGAIN;
	}
	return ctl_read(oldp, oldlenp, &id, sizeof(id));
}

/* Reads the id written to tcache.flush / tcache.destroy. */
static int
tcache_id_arg(void *oldp, size_t *oldlenp, void *newp, size_t newlen, unsigned *id) {
	int err = ctl_writeonly(oldp, oldlenp);
	if (err != 0) {
		return err;
	}
	if (newp == NULL) {
		return EFAULT;
	}
	return ctl_write(newp, newlen, id, sizeof(*id));
}

static int
tcache_flush_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                 size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_tcache) {
		return ENOENT;
	}
	unsigned id;
	int err = tcache_id_arg(oldp, oldlenp, newp, newlen, &id);
	if (err != 0) {
		return err;
	}
	return tcaches_flush(id) ? EFAULT : 0;
}

static int
tcache_destroy_ctl(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) {
	(void)mib, (void)miblen;
	if (!config_tcache) {
		return ENOENT;
	}
	unsigned id;
	int err = tcache_id_arg(oldp, oldlenp, newp, newlen, &id);
	if (err != 0) {
		return err;
	}
	return tcaches_destroy(id) ? EFAULT : 0;
}

const ctl_node_t ctl_tcache_children[] = {
    {.name = "create", .handler = tcache_create_ctl},
    {.name = "flush", .handler = tcache_flush_ctl},
    {.name = "destroy", .handler = tcache_destroy_ctl},
    {.name = NULL},
};
