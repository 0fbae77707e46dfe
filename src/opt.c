/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Storage and defaults of the run-time options declared in opt.h.
 */
#include "alloc/internal/opt.h"

bool opt_abort = false;
unsigned opt_narenas = 0;
percpu_arena_mode_t opt_percpu_arena = PERCPU_ARENA_PERCPU;
