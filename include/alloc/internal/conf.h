/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Configuration: reads the option strings at start-up and sets the
 * options of opt.h from them.
 *
 * Sources, applied in this order, so a later one overrides an earlier one
 * option by option:
 *   1. the string built in by configure --with-malloc-conf
 *      (config_malloc_conf);
 *   2. the malloc_conf global a program may define (liballoc's own is a weak
 *      NULL; a program linked with -lalloc overrides it; under LD_PRELOAD
 *      it is seen only when the executable exports the symbol);
 *   3. the name the symbolic link /etc/malloc.conf points to (no link, no
 *      options);
 *   4. the MALLOC_CONF environment variable (ignored in set-user-ID and
 *      set-group-ID programs, as jemalloc does).
 *
 * Syntax (jemalloc's): "key:value,key:value,...". A key is
 * [A-Za-z0-9_]+, a value is everything up to the next comma; no
 * whitespace anywhere. Keys are the names in opt_table plus a few aliases
 * (conf_aliases): jemalloc 4 and 5 spellings of table options in other
 * units. Every invalid piece (a pair without a key or a
 * colon, an empty pair, a trailing comma, an unknown key, a value of the
 * wrong type or out of range) prints one warning naming the source, the key
 * and the value, and is ignored; parsing goes on with the next pair. With
 * opt.abort_conf or opt.abort set, the warning is followed by abort()
 * instead; if one of them is only set by a later pair, conf_boot() aborts
 * once all sources are read.
 *
 * Nothing here allocates: this runs inside the first malloc call of the
 * process, possibly before the C library has finished starting.
 */
#ifndef ALLOC_INTERNAL_CONF_H
#define ALLOC_INTERNAL_CONF_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
	CONF_SOURCE_BUILD,
	CONF_SOURCE_PROGRAM,
	CONF_SOURCE_LINK,
	CONF_SOURCE_ENV,
	CONF_NSOURCES,
} conf_source_t;

/* Path of the symbolic link whose target is read as options:
 * "/etc/malloc.conf". Only tests point it elsewhere. */
extern const char *conf_link_path;

/*
 * An alternative key for a table option, where a jemalloc 4 or 5 option
 * means exactly the same thing in other units. Values are accepted only where
 * the conversion is exact.
 */
typedef enum {
	/* target = value / scale; the value must be a multiple of scale.
	 * Negative values (the target's "never") pass through unchanged. */
	CONF_ALIAS_SCALE,
	/* target = log2(value); the value must be a power of two. */
	CONF_ALIAS_LOG2,
	/* target = value * scale (a coarser unit); negative values pass
	 * through unchanged. */
	CONF_ALIAS_MULTIPLY,
} conf_alias_kind_t;

typedef struct {
	/* The key as a jemalloc 5 MALLOC_CONF writes it. */
	const char *name;
	/* The opt_table entry it sets. */
	const char *target;
	conf_alias_kind_t kind;
	/* CONF_ALIAS_SCALE: units of the alias per unit of the target;
	 * CONF_ALIAS_MULTIPLY: units of the target per unit of the alias. */
	int64_t scale;
	/* Says in a warning what the alias is, e.g. "alias of
	 * dirty_decay_ms in seconds". */
	const char *note;
} conf_alias_t;

extern const conf_alias_t conf_aliases[];
extern const size_t conf_aliases_len;

/* The name of a source as warnings show it ("MALLOC_CONF", ...). */
const char *conf_source_name(conf_source_t source);

/*
 * The options string of `source`, or NULL when the source is absent. buf
 * (of `size` bytes) holds it when it has to be copied (the link target).
 */
const char *conf_source_read(conf_source_t source, char *buf, size_t size);

/*
 * Applies one options string (NULL is the same as ""); `source` names it in
 * warnings. Returns the number of invalid pieces, each warned about once.
 * Aborts at the first one when opt_abort_conf or opt_abort is set.
 */
unsigned conf_parse(const char *opts, const char *source);

/*
 * Reads and applies every source in order, then aborts if any piece was
 * invalid and opt_abort_conf or opt_abort ended up set. Returns the number
 * of invalid pieces. Keeps errno.
 */
unsigned conf_apply_sources(void);

/* conf_apply_sources() once per process; malloc_init_hard() calls it first
 * thing, before any arena exists. */
void conf_boot(void);

#endif
