/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Thread state (see tsd.h): set-up on a thread's first slow-path call,
 * teardown at thread exit through a pthread key destructor, and the choice
 * of the arena a thread allocates from.
 *
 * Arena choice. With opt.percpu_arena=percpu (the default) every thread
 * uses arena 0 until threads contend for the arenas' locks
 * (opt.percpu_arena_waits, arena.h: arena_spread); from then on a thread
 * uses the arena of the CPU it runs on: CPU ids are numbered through the
 * affinity mask seen at start-up, so a container limited to CPUs 8-11 uses
 * arenas 0-3, and ids outside the mask (affinity changed later, CPU
 * hot-plug) wrap around. phycpu numbers physical cores instead, so
 * hyper-thread siblings share an arena. The CPU is rechecked on every slow
 * path (fills, flushes, large and huge requests) with sched_getcpu, which
 * glibc answers from the rseq area without a system call; the hit path never
 * looks. A thread moves to the arena of a new CPU only after
 * TSD_CPU_MOVES_TO_REBIND consecutive checks found it there: a thread the
 * scheduler bounces between CPUs would otherwise spread its objects, and
 * their partly used runs and dirty pages, over every arena. When it does
 * move, the arena it leaves is marked abandoned (arena_abandon): what its
 * objects give back there is purged promptly instead of staying resident
 * beside the working set the thread builds in its new arena. With
 * percpu_arena=disabled, threads are spread round-robin over
 * opt.narenas arenas (default 4 per CPU) and stay there.
 */
#include "alloc/internal/tsd.h"

#include <fcntl.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc/internal/base.h"
#include "alloc/internal/message.h"
#include "alloc/internal/opt.h"

__thread tsd_t tsd_tls TSD_TLS_MODEL;

static pthread_key_t tsd_key;
unsigned tsd_ncpus;

/* CPU id -> arena index, for ids below CPU_SETSIZE. */
static uint16_t tsd_cpu_arena[CPU_SETSIZE];
/* Next arena for round-robin assignment. */
static unsigned tsd_rr_next;

static void tsd_destructor(void *arg);

/* Set by tsd_boot (tsd.h). */
static tsd_hooks_t tsd_hooks;

#define TSD_CPU_MOVES_TO_REBIND 4

/* Reads a small decimal number from a sysfs file; -1 on any failure. Uses
 * no stdio (start-up must not allocate). */
static long
read_sysfs_number(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	char buf[32];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return -1;
	}
	long v = 0;
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) {
		v = v * 10 + (buf[i] - '0');
	}
	return v;
}

/* Physical core key of a CPU: package << 20 | core id; -1 if unknown. */
static long
cpu_core_key(unsigned cpu) {
	char path[96];
	msg_format(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/topology/core_id", cpu);
	long core = read_sysfs_number(path);
	msg_format(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/topology/physical_package_id",
	           cpu);
	long pkg = read_sysfs_number(path);
	if (core < 0 || pkg < 0) {
		return -1;
	}
	return (pkg << 20) | core;
}

bool
tsd_boot(const tsd_hooks_t *hooks) {
	tsd_hooks = *hooks;
	if (pthread_key_create(&tsd_key, tsd_destructor) != 0) {
		return true;
	}
	/* The affinity mask through syscall(2) rather than glibc's
	 * sched_getaffinity: the wrapper sits in a part of glibc's text that
	 * nothing else a small program runs touches, and faulting it in maps
	 * 64 KiB of libc (the kernel's fault-around) that count in every
	 * process's RSS (doc/design.md, "Footprint"). The system call returns
	 * the bytes it wrote and leaves the rest of the set as it was. */
	cpu_set_t set;
	CPU_ZERO(&set);
	unsigned ncpus = 0;
	unsigned nslots = 0;
	if (syscall(SYS_sched_getaffinity, 0, sizeof(set), &set) > 0) {
		/* percpu: one slot per CPU in the mask. phycpu: one per
		 * distinct physical core (found by a linear search: CPU counts
		 * are small and this runs once), the core keys of the slots in
		 * base memory: static data would add 8 KiB among the variables
		 * every program touches (doc/design.md, "Footprint"). */
		long *keys = NULL;
		if (opt_percpu_arena == PERCPU_ARENA_PHYCPU) {
			keys = base_alloc(CPU_SETSIZE * sizeof(long));
		}
		for (unsigned cpu = 0; cpu < CPU_SETSIZE; cpu++) {
			if (!CPU_ISSET(cpu, &set)) {
				continue;
			}
			ncpus++;
			unsigned slot = nslots;
			if (keys != NULL) {
				long key = cpu_core_key(cpu);
				for (unsigned k = 0; key >= 0 && k < nslots; k++) {
					if (keys[k] == key) {
						slot = k;
						break;
					}
				}
				keys[slot] = key;
			}
			if (slot == nslots) {
				nslots++;
			}
			tsd_cpu_arena[cpu] = (uint16_t)slot;
		}
	}
	if (ncpus == 0) {
		ncpus = 1;
		nslots = 1;
	}
	tsd_ncpus = ncpus;
	unsigned n = opt_narenas;
	if (n == 0) {
		n = opt_percpu_arena == PERCPU_ARENA_DISABLED ? 4 * ncpus : nslots;
	}
	if (n > ARENAS_MAX) {
		n = ARENAS_MAX;
	}
	narenas_auto = n;
	/* CPUs outside the mask wrap around; with fewer arenas than slots
	 * (opt.narenas), slots share. */
	for (unsigned cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set)) {
			tsd_cpu_arena[cpu] = (uint16_t)(cpu % nslots);
		}
		tsd_cpu_arena[cpu] = (uint16_t)(tsd_cpu_arena[cpu] % n);
	}
	return false;
}

static void
tsd_bind(tsd_t *tsd, arena_t *a) {
	if (tsd->arena == a) {
		return;
	}
	if (tsd->arena != NULL) {
		__atomic_fetch_sub(&tsd->arena->nthreads, 1, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&a->nthreads, 1, __ATOMIC_RELAXED);
	tsd->arena = a;
}

arena_t *
tsd_arena(tsd_t *tsd) {
	if (tsd->arena_pinned) {
		return tsd->arena;
	}
	bool rr = opt_percpu_arena == PERCPU_ARENA_DISABLED;
	if (rr || !arena_spread_now()) {
		/* Bound once, at the first allocation: round robin, or, until
		 * threads meet in an arena's locks (arena.h), arena 0 for
		 * every thread. */
		if (likely(tsd->arena != NULL)) {
			return tsd->arena;
		}
		arena_t *a = NULL;
		if (rr) {
			a = arena_get(__atomic_fetch_add(&tsd_rr_next, 1, __ATOMIC_RELAXED) %
			              narenas_auto);
		}
		if (a == NULL) {
			a = arena_get(0);
		}
		if (a != NULL) {
			tsd_bind(tsd, a);
		}
		tsd->arena_cpu = -1;
		return a;
	}
	int cpu = sched_getcpu();
	if (cpu < 0) {
		cpu = 0;
	}
	if (likely(cpu == tsd->arena_cpu && tsd->arena != NULL)) {
		tsd->cpu_moves = 0;
		return tsd->arena;
	}
	if (tsd->arena != NULL && ++tsd->cpu_moves < TSD_CPU_MOVES_TO_REBIND) {
		return tsd->arena;
	}
	tsd->cpu_moves = 0;
	unsigned ind =
	    (unsigned)cpu < CPU_SETSIZE ? tsd_cpu_arena[cpu] : (unsigned)cpu % narenas_auto;
	arena_t *a = arena_get(ind);
	if (a == NULL) {
		a = arena_get(0);
		if (a == NULL) {
			return NULL;
		}
	}
	arena_t *old = tsd->arena;
	tsd_bind(tsd, a);
	if (old != NULL && old != a) {
		/* Moved for good: what comes back to the old arena is not
		 * reused by this thread any more. */
		arena_abandon(old);
	}
	tsd->arena_cpu = cpu;
	return a;
}

void
tsd_arena_set(tsd_t *tsd, arena_t *a, bool pinned) {
	tsd_bind(tsd, a);
	tsd->arena_pinned = pinned;
	tsd->arena_cpu = -1;
}

tsd_state_t
tsd_setup(tsd_t *tsd) {
	if (tsd->state != TSD_STATE_UNINIT) {
		return (tsd_state_t)tsd->state;
	}
	tsd->state = TSD_STATE_NOMINAL;
	tsd->arena_cpu = -1;
	memcpy(tsd->size2pc, tcache_size2pc_tab, sizeof(tsd->size2pc));
	/* A non-NULL value makes pthreads call the destructor at exit. */
	pthread_setspecific(tsd_key, tsd);
	arena_t *a = tsd_arena(tsd);
	if (config_tcache && tsd_hooks.tcache && a != NULL) {
		tcache_init(&tsd->tcache, a);
	}
	return TSD_STATE_NOMINAL;
}

static void
tsd_destructor(void *arg) {
	tsd_t *tsd = arg;
	if (tsd_hooks.exit != NULL) {
		tsd_hooks.exit(tsd);
	}
	if (config_tcache) {
		tcache_destroy(&tsd->tcache);
	}
	if (tsd->arena != NULL) {
		__atomic_fetch_sub(&tsd->arena->nthreads, 1, __ATOMIC_RELAXED);
		tsd->arena = NULL;
	}
	tsd->arena_pinned = false;
	tsd->state = TSD_STATE_EXITING;
}

void
tsd_postfork_child(void) {
	/* Only the forking thread lives on; it is bound to an arena whose
	 * thread count was reset by arena_postfork_child. */
	tsd_t *tsd = tsd_get();
	if (tsd->arena != NULL) {
		tsd->arena->nthreads = 1;
	}
}
