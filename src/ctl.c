/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The mallctl engine (see ctl.h): the root of the tree, name -> MIB
 * resolution, MIB walking, the exported mallctl, mallctlnametomib and
 * mallctlbymib, and the read/write helpers every handler uses. The
 * subtrees live in ctl_*.c, one file per subsystem.
 */
#include "alloc/internal/ctl.h"

#include <errno.h>
#include <string.h>

#include "alloc/internal/export.h"

/* ---------------------------------------------------------------------- */
/* The root. */

static const ctl_node_t ctl_root_children[] = {
    {.name = "version", .handler = ctl_version_handler},
    {.name = "epoch", .handler = ctl_epoch_handler},
    {.name = "background_thread", .handler = ctl_background_thread_handler},
    {.name = "max_background_threads", .handler = ctl_max_background_threads_handler},
    {.name = "config", .children = ctl_config_children},
    {.name = "opt", .index = &ctl_opt_index},
    {.name = "thread", .children = ctl_thread_children},
    {.name = "tcache", .children = ctl_tcache_children},
    {.name = "arena", .index = &ctl_arena_index},
    {.name = "arenas", .children = ctl_arenas_children},
    {.name = "stats", .children = ctl_stats_children},
    {.name = "prof", .children = ctl_prof_children},
    {.name = "timeline", .children = ctl_timeline_children},
    {.name = NULL},
};

static const ctl_node_t ctl_root = {.name = "", .children = ctl_root_children};

/* ---------------------------------------------------------------------- */
/* Start-up. */

/* From alloc.c: initialises the allocator as a side effect. */
size_t ALLOC_NAME(nallocx)(size_t size, int flags);

tsd_t *
ctl_tsd(void) {
	/* nallocx initialises the allocator and answers 0 only when that
	 * failed. */
	if (ALLOC_NAME(nallocx)(1, 0) == 0) {
		return NULL;
	}
	tsd_t *tsd = tsd_get();
	if (tsd->state == TSD_STATE_UNINIT) {
		tsd_setup(tsd);
	}
	return tsd;
}

unsigned
ctl_narenas(void) {
	unsigned total = __atomic_load_n(&narenas_total, __ATOMIC_ACQUIRE);
	return total > narenas_auto ? total : narenas_auto;
}

/* ---------------------------------------------------------------------- */
/* Resolution. */

/* Parses a decimal index; false when s[0..len) is not one. */
static bool
ctl_parse_index(const char *s, size_t len, size_t *out) {
	if (len == 0 || len > 19) {
		return false;
	}
	size_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return false;
		}
		v = v * 10 + (size_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* The child of `children` called name[0..len) and its position, or NULL. */
static const ctl_node_t *
ctl_child_find(const ctl_node_t *children, const char *name, size_t len, size_t *pos) {
	for (size_t i = 0; children[i].name != NULL; i++) {
		const char *cn = children[i].name;
		if (strncmp(cn, name, len) == 0 && cn[len] == '\0') {
			*pos = i;
			return &children[i];
		}
	}
	return NULL;
}

/*
 * Resolves up to *depth components of name into mib. On success *depth is
 * the number of components resolved: all of them when the name ends at a
 * leaf, or the *depth asked for when the name is longer (a partial MIB).
 * ENOENT for an unknown component or a name that ends at an interior node
 * or goes on past a leaf.
 */
static int
ctl_lookup(const char *name, size_t *mib, size_t *depth) {
	const ctl_node_t *node = &ctl_root;
	const char *elm = name;
	size_t i;
	for (i = 0; i < *depth; i++) {
		const char *dot = strchr(elm, '.');
		size_t len = dot != NULL ? (size_t)(dot - elm) : strlen(elm);
		if (len == 0) {
			return ENOENT;
		}
		const ctl_node_t *next = NULL;
		size_t pos = 0;
		if (node->children != NULL) {
			next = ctl_child_find(node->children, elm, len, &pos);
			if (next != NULL && next->alias != NULL) {
				next = ctl_child_find(node->children, next->alias,
				                      strlen(next->alias), &pos);
			}
		} else if (node->index != NULL) {
			const ctl_index_t *index = node->index;
			bool found = index->find != NULL ? index->find(elm, len, &pos)
			                                 : ctl_parse_index(elm, len, &pos);
			if (found && index->valid(mib, i, pos)) {
				next = index->elem;
			}
		}
		if (next == NULL) {
			return ENOENT;
		}
		mib[i] = pos;
		node = next;
		if (node->handler != NULL) {
			if (dot != NULL) {
				return ENOENT;
			}
			*depth = i + 1;
			return 0;
		}
		if (dot == NULL) {
			return ENOENT;
		}
		elm = dot + 1;
	}
	return 0;
}

int
ctl_nametomib(const char *name, size_t *mib, size_t *miblen) {
	if (name == NULL || mib == NULL || miblen == NULL) {
		return EINVAL;
	}
	if (ctl_tsd() == NULL) {
		return EAGAIN;
	}
	return ctl_lookup(name, mib, miblen);
}

int
ctl_bymib(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
          size_t newlen) {
	if (ctl_tsd() == NULL) {
		return EAGAIN;
	}
	if (mib == NULL && miblen != 0) {
		return EINVAL;
	}
	const ctl_node_t *node = &ctl_root;
	for (size_t i = 0; i < miblen; i++) {
		const ctl_node_t *next = NULL;
		if (node->children != NULL) {
			for (size_t pos = 0; node->children[pos].name != NULL; pos++) {
				if (pos == mib[i]) {
					next = &node->children[pos];
					break;
				}
			}
		} else if (node->index != NULL && node->index->valid(mib, i, mib[i])) {
			next = node->index->elem;
		}
		if (next == NULL) {
			return ENOENT;
		}
		node = next;
		if (node->handler != NULL && i + 1 != miblen) {
			return ENOENT;
		}
	}
	if (node->handler == NULL) {
		return ENOENT;
	}
	return node->handler(mib, miblen, oldp, oldlenp, newp, newlen);
}

int
ctl_byname(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
	if (name == NULL) {
		return EINVAL;
	}
	if (ctl_tsd() == NULL) {
		return EAGAIN;
	}
	size_t mib[CTL_MAX_DEPTH];
	size_t depth = CTL_MAX_DEPTH;
	int err = ctl_lookup(name, mib, &depth);
	if (err != 0) {
		return err;
	}
	return ctl_bymib(mib, depth, oldp, oldlenp, newp, newlen);
}

/* ---------------------------------------------------------------------- */
/* Handler helpers. */

int
ctl_readonly(const void *newp, size_t newlen) {
	return newp != NULL || newlen != 0 ? EPERM : 0;
}

int
ctl_writeonly(const void *oldp, const size_t *oldlenp) {
	return oldp != NULL || oldlenp != NULL ? EPERM : 0;
}

/* Read-write handlers call this before they apply a write, and return its
 * error: a call that fails on its old-value buffer changes nothing. */
int
ctl_read(void *oldp, size_t *oldlenp, const void *value, size_t len) {
	if (oldp == NULL || oldlenp == NULL) {
		return 0;
	}
	if (*oldlenp != len) {
		size_t n = *oldlenp < len ? *oldlenp : len;
		memcpy(oldp, value, n);
		return EINVAL;
	}
	memcpy(oldp, value, len);
	return 0;
}

int
ctl_create_check(const void *oldp, const size_t *oldlenp, const void *newp, size_t newlen,
                 size_t len) {
	int err = ctl_readonly(newp, newlen);
	if (err != 0) {
		return err;
	}
	return oldp != NULL && oldlenp != NULL && *oldlenp != len ? EINVAL : 0;
}

int
ctl_write(const void *newp, size_t newlen, void *value, size_t len) {
	if (newp == NULL) {
		return 0;
	}
	if (newlen != len) {
		return EINVAL;
	}
	memcpy(value, newp, len);
	return 0;
}

int
ctl_action_args(void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
	int err = ctl_readonly(newp, newlen);
	if (err == 0) {
		err = ctl_writeonly(oldp, oldlenp);
	}
	return err;
}

int
ctl_decay_rw(void *oldp, size_t *oldlenp, void *newp, size_t newlen, ssize_t old_ms, bool seconds,
             bool *set, ssize_t *new_ms) {
	*set = false;
	ssize_t old = seconds ? decay_ms_to_seconds(old_ms) : old_ms;
	ssize_t v;
	int err = ctl_write(newp, newlen, &v, sizeof(v));
	if (err != 0) {
		return err;
	}
	err = ctl_read(oldp, oldlenp, &old, sizeof(old));
	if (err != 0 || newp == NULL) {
		return err;
	}
	if (seconds) {
		if (!arena_decay_time_valid(v)) {
			return EFAULT;
		}
		v = v < 0 ? -1 : v * 1000;
	}
	if (!arena_decay_ms_valid(v)) {
		return EFAULT;
	}
	*set = true;
	*new_ms = v;
	return 0;
}

int
ctl_read_only_value(void *oldp, size_t *oldlenp, const void *newp, size_t newlen, const void *value,
                    size_t len) {
	int err = ctl_readonly(newp, newlen);
	if (err != 0) {
		return err;
	}
	return ctl_read(oldp, oldlenp, value, len);
}

/* ---------------------------------------------------------------------- */
/* The exported API. */

ALLOC_EXPORT int
ALLOC_NAME(mallctl)(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
	return ctl_byname(name, oldp, oldlenp, newp, newlen);
}

ALLOC_EXPORT int
ALLOC_NAME(mallctlnametomib)(const char *name, size_t *mibp, size_t *miblenp) {
	return ctl_nametomib(name, mibp, miblenp);
}

ALLOC_EXPORT int
ALLOC_NAME(mallctlbymib)(const size_t *mib, size_t miblen, void *oldp, size_t *oldlenp, void *newp,
                         size_t newlen) {
	return ctl_bymib(mib, miblen, oldp, oldlenp, newp, newlen);
}
