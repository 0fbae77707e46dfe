/*
 * prodcons: producer/consumer. One thread allocates, another frees.
 *
 * Each producer allocates blocks (mostly 16..512 bytes, one in 64 of
 * 4..16 KiB), stamps them and pushes them through a single-producer
 * single-consumer ring to its consumer thread, which checks and frees them.
 * Every free is therefore a remote free. The consumer replays the producer's
 * random sequence, so it knows the size and pattern of each block it receives
 * and detects corruption, loss or reordering.
 * --threads N runs N independent producer/consumer pairs (default 1).
 */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

static const char *NAME = "prodcons";

#define RING 1024 /* power of two */

struct pair {
	_Alignas(64) _Atomic uint64_t head; /* written by the producer */
	_Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
	_Alignas(64) void *ring[RING];
	uint64_t n, seed, sum_out;
	pthread_t prod, cons;
};

static size_t
draw_size(uint64_t *rng) {
	uint64_t r = rng_next(rng);
	if ((r & 63) == 0)
		return 4096 + (size_t)((r >> 8) % 12289);
	return 16 + (size_t)((r >> 8) % 497);
}

static void
spin(unsigned *k) {
	if (++*k > 64) {
		sched_yield();
		*k = 0;
	}
}

static void *
producer(void *arg) {
	struct pair *p = arg;
	uint64_t rng = p->seed;
	uint64_t head = 0;

	for (uint64_t i = 0; i < p->n; i++) {
		size_t n = draw_size(&rng);
		void *b = malloc(n);
		if (!b)
			bench_fail(NAME, "malloc(%zu) returned NULL", n);
		stamp(b, n, mix64(p->seed ^ i));
		unsigned k = 0;
		while (head - atomic_load_explicit(&p->tail, memory_order_acquire) >= RING)
			spin(&k);
		p->ring[head & (RING - 1)] = b;
		atomic_store_explicit(&p->head, ++head, memory_order_release);
	}
	return NULL;
}

static void *
consumer(void *arg) {
	struct pair *p = arg;
	uint64_t rng = p->seed;
	uint64_t tail = 0;

	for (uint64_t i = 0; i < p->n; i++) {
		unsigned k = 0;
		while (atomic_load_explicit(&p->head, memory_order_acquire) == tail)
			spin(&k);
		void *b = p->ring[tail & (RING - 1)];
		size_t n = draw_size(&rng);
		uint64_t tag = mix64(p->seed ^ i);
		if (!stamp_ok(b, n, tag))
			bench_fail(NAME, "block #%llu (%p, %zu bytes) corrupted or out of order",
			           (unsigned long long)i, b, n);
		p->sum_out += tag;
		free(b);
		atomic_store_explicit(&p->tail, ++tail, memory_order_release);
	}
	return NULL;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "one thread allocates, another frees", 1);
	uint64_t n = bench_scaled(&o, 16e6, 20000) / (uint64_t)o.threads;
	struct pair *ps = bench_map(NAME, sizeof *ps * (size_t)o.threads);
	double t0 = bench_now();

	for (int t = 0; t < o.threads; t++) {
		ps[t].n = n;
		ps[t].seed = o.seed + 104729u * (uint64_t)(t + 1);
		if (pthread_create(&ps[t].cons, NULL, consumer, &ps[t]) ||
		    pthread_create(&ps[t].prod, NULL, producer, &ps[t]))
			bench_fail(NAME, "pthread_create failed");
	}
	uint64_t sum = 0;
	for (int t = 0; t < o.threads; t++) {
		pthread_join(ps[t].prod, NULL);
		pthread_join(ps[t].cons, NULL);
		uint64_t expect = 0;
		for (uint64_t i = 0; i < n; i++)
			expect += mix64(ps[t].seed ^ i);
		if (expect != ps[t].sum_out)
			bench_fail(NAME, "pair %d: consumer saw the wrong blocks", t);
		sum += expect;
	}
	bench_ok(&o, t0, "blocks=%llu checksum=%016llx",
	         (unsigned long long)(n * (uint64_t)o.threads), (unsigned long long)sum);
	return 0;
}
