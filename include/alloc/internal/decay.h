/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Decay: how many dirty pages an arena may keep, as a function of time.
 *
 * Every page freed into an arena is dirty (it holds data and costs RSS)
 * until purged. Purging at once would make a program that frees and
 * reallocates pay page faults over and over; never purging keeps RSS at its
 * peak. Decay spreads the purge over a decay time (opt.dirty_decay_ms, or
 * opt.muzzy_decay_ms for the second stage, see below): the time is
 * cut into DECAY_NSTEPS epochs, each epoch remembers how many pages became
 * dirty during it (the backlog), and a page dirtied t seconds ago may stay
 * with weight h(t / decay_time), where h falls smoothly from 1 to 0 along
 * the smootherstep curve 1 - (6x^5 - 15x^4 + 10x^3). The number of dirty
 * pages allowed is the weighted sum of the backlog; the arena purges what
 * is above it. So a burst of frees is purged gradually, mostly near the
 * end of the decay time, and none of it outlives the decay time.
 *
 * Two stages (jemalloc 5). Dirty pages decay into muzzy ones, which are
 * lazily purged (MADV_FREE: still mapped, the kernel takes them back only
 * under memory pressure, a reuse costs no page fault until it does), and
 * muzzy pages decay into purged ones (MADV_DONTNEED: RSS falls at once).
 * Each stage is a decay_t of its own with its own decay time; the muzzy
 * stage's backlog is fed by the pages the dirty stage turned muzzy. A
 * muzzy decay time of 0 skips the stage: dirty pages are purged with
 * MADV_DONTNEED directly, in one madvise call instead of two.
 *
 * This module is pure arithmetic with the clock passed in (nanoseconds),
 * so tests can drive it deterministically; the arena owns locking, the
 * clock and the purging itself.
 */
#ifndef ALLOC_INTERNAL_DECAY_H
#define ALLOC_INTERNAL_DECAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DECAY_NSTEPS 200

/* opt.dirty_decay_ms / opt.muzzy_decay_ms: milliseconds; 0 purges at
 * once, -1 never. opt.decay_time (4.x) is the dirty one in seconds. */
extern ssize_t opt_dirty_decay_ms;
extern ssize_t opt_muzzy_decay_ms;
/* opt.lg_dirty_mult: ratio rule, keep active >> lg_dirty_mult dirty
 * pages at most; -1 disables it. */
extern ssize_t opt_lg_dirty_mult;

typedef enum {
	PURGE_MODE_DECAY = 0,
	PURGE_MODE_RATIO = 1,
} purge_mode_t;
/* opt.purge (an int holding a purge_mode_t). */
extern int opt_purge;

/* Largest decay time accepted, in seconds (about 136 years, so that
 * nanosecond arithmetic cannot overflow), and in milliseconds. */
#define DECAY_TIME_MAX ((ssize_t)INT32_MAX)
#define DECAY_MS_MAX   (DECAY_TIME_MAX * 1000)

/* A decay time in milliseconds seen in whole seconds (the 4.x decay_time
 * nodes): -1 stays -1, anything else rounds up, so a time under a second
 * does not read as 0 ("purge at once"). */
static inline ssize_t
decay_ms_to_seconds(ssize_t ms) {
	return ms < 0 ? -1 : (ms + 999) / 1000;
}

typedef struct {
	/* Milliseconds; -1: never purge; 0: purge at once. */
	ssize_t time;
	/* Length of one epoch, in ns (time / DECAY_NSTEPS). */
	uint64_t interval_ns;
	/* Start of the current epoch. */
	uint64_t epoch_ns;
	/* Dirty pages at the end of the last update. */
	size_t ndirty_last;
	/* The limit as of the last update: between epoch boundaries it only
	 * grows by newly dirtied pages (weight 1), so updates within an epoch
	 * need not sum the backlog. */
	size_t limit;
	/* backlog[DECAY_NSTEPS - 1] is the newest epoch. */
	size_t backlog[DECAY_NSTEPS];
} decay_t;

/* Sets decay up with a decay time of `time_ms` milliseconds, starting
 * now. */
void decay_init(decay_t *decay, ssize_t time_ms, uint64_t now_ns);

/*
 * Advances decay to `now_ns` given the current number of dirty pages
 * (pages dirtied since the last update join the current epoch's backlog).
 * Returns how many dirty pages may remain; the caller purges the rest and
 * then reports the new count with decay_purged().
 */
size_t decay_update(decay_t *decay, uint64_t now_ns, size_t ndirty);

/* Tells decay that purging brought the dirty count down to ndirty. */
void decay_purged(decay_t *decay, size_t ndirty);

/* Nanoseconds from now_ns until the next epoch starts (when the limit can
 * next fall); UINT64_MAX when decay never purges. */
uint64_t decay_ns_until_next(const decay_t *decay, uint64_t now_ns);

/* The curve: weight in [0, 1] scaled by 2^DECAY_WEIGHT_BITS that a page
 * dirtied `step` epochs ago (0 = this epoch) keeps. */
#define DECAY_WEIGHT_BITS 24
uint32_t decay_weight(unsigned step);

/* Monotonic clock in nanoseconds. */
uint64_t decay_now_ns(void);

#endif
