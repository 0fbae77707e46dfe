/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The decay curve (see decay.h): a backlog of dirty pages per epoch,
 * weighted by the smootherstep curve, gives the number of dirty pages an
 * arena may keep at a given time.
 */
#include "alloc/internal/decay.h"

#include <string.h>
#include <time.h>

#include "alloc/internal/assert.h"

ssize_t opt_dirty_decay_ms = 10000;
ssize_t opt_muzzy_decay_ms = 0;
ssize_t opt_lg_dirty_mult = 3;
int opt_purge = PURGE_MODE_DECAY;

/*
 * decay_weights[s]: the weight of pages dirtied s epochs ago, in
 * fixed point with DECAY_WEIGHT_BITS fraction bits:
 *   x = (DECAY_NSTEPS - s) / DECAY_NSTEPS,  w = 6x^5 - 15x^4 + 10x^3.
 * Computed with integers only: with N = DECAY_NSTEPS and k = N - s,
 *   w = (6k^5 - 15k^4 N + 10k^3 N^2) / N^5,
 * whose numerator stays below N^5 (w <= 1), so shifting it by 24 bits fits
 * in 64 bits for N = 200 (200^5 * 2^24 < 2^63).
 */
static uint32_t decay_weights[DECAY_NSTEPS];
static bool decay_weights_ready;

static void
decay_weights_init(void) {
	const int64_t n = DECAY_NSTEPS;
	const int64_t n5 = n * n * n * n * n;
	for (unsigned s = 0; s < DECAY_NSTEPS; s++) {
		int64_t k = n - (int64_t)s;
		int64_t k3 = k * k * k;
		int64_t num = 6 * k3 * k * k - 15 * k3 * k * n + 10 * k3 * n * n;
		decay_weights[s] = (uint32_t)(((uint64_t)num << DECAY_WEIGHT_BITS) / (uint64_t)n5);
	}
	decay_weights_ready = true;
}

uint32_t
decay_weight(unsigned step) {
	if (!decay_weights_ready) {
		decay_weights_init();
	}
	return step < DECAY_NSTEPS ? decay_weights[step] : 0;
}

void
decay_init(decay_t *decay, ssize_t time_ms, uint64_t now_ns) {
	if (!decay_weights_ready) {
		decay_weights_init();
	}
	/* Atomic: arena_decay_tick reads it without the arena lock. */
	__atomic_store_n(&decay->time, time_ms, __ATOMIC_RELAXED);
	decay->interval_ns = time_ms > 0 ? (uint64_t)time_ms * 1000000u / DECAY_NSTEPS : 0;
	decay->epoch_ns = now_ns;
	decay->ndirty_last = 0;
	decay->limit = 0;
	memset(decay->backlog, 0, sizeof(decay->backlog));
}

size_t
decay_update(decay_t *decay, uint64_t now_ns, size_t ndirty) {
	if (decay->time < 0) {
		decay->ndirty_last = ndirty;
		return SIZE_MAX;
	}
	if (decay->time == 0) {
		decay->ndirty_last = ndirty;
		return 0;
	}
	if (now_ns < decay->epoch_ns) {
		/* The clock is monotonic, but be safe: restart the epoch. */
		decay->epoch_ns = now_ns;
	}
	uint64_t nadvance = (now_ns - decay->epoch_ns) / decay->interval_ns;
	if (nadvance >= DECAY_NSTEPS) {
		memset(decay->backlog, 0, sizeof(decay->backlog));
	} else if (nadvance > 0) {
		size_t keep = DECAY_NSTEPS - (size_t)nadvance;
		memmove(decay->backlog, decay->backlog + nadvance, keep * sizeof(size_t));
		memset(decay->backlog + keep, 0, (size_t)nadvance * sizeof(size_t));
	}
	decay->epoch_ns += nadvance * decay->interval_ns;
	/* Pages dirtied since the last update belong to the current epoch. */
	size_t fresh = ndirty > decay->ndirty_last ? ndirty - decay->ndirty_last : 0;
	decay->backlog[DECAY_NSTEPS - 1] += fresh;
	decay->ndirty_last = ndirty;
	if (nadvance == 0) {
		decay->limit += fresh;
		return decay->limit > ndirty ? ndirty : decay->limit;
	}

	uint64_t limit = 0;
	for (unsigned i = 0; i < DECAY_NSTEPS; i++) {
		size_t pages = decay->backlog[DECAY_NSTEPS - 1 - i];
		if (pages != 0) {
			limit += (uint64_t)pages * decay_weights[i];
		}
	}
	limit >>= DECAY_WEIGHT_BITS;
	decay->limit = (size_t)limit;
	return limit > ndirty ? ndirty : (size_t)limit;
}

void
decay_purged(decay_t *decay, size_t ndirty) {
	decay->ndirty_last = ndirty;
}

uint64_t
decay_ns_until_next(const decay_t *decay, uint64_t now_ns) {
	if (decay->time <= 0) {
		return decay->time < 0 ? UINT64_MAX : 0;
	}
	uint64_t next = decay->epoch_ns + decay->interval_ns;
	return next > now_ns ? next - now_ns : 0;
}

uint64_t
decay_now_ns(void) {
	/* The coarse clock (a few ms resolution, no system call) is precise
	 * enough for epochs of decay_time / 200. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
