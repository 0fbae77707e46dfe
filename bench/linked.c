/*
 * linked: linked structures built and torn down, single thread.
 *
 * Phase 1 builds a singly linked list of nodes with a small variable payload,
 * walks it, and frees it front to back (FIFO order relative to allocation).
 * Phase 2 builds an unbalanced binary search tree from random keys, walks it
 * in order (checking the keys come out sorted), and frees it in post-order,
 * which is a random order relative to allocation.
 * Each node carries its key and a stamped payload; both are checked on the way
 * out, and the sum of the keys seen must equal the sum of the keys inserted.
 */
#include "common.h"

struct lnode {
	struct lnode *next;
	uint64_t key;
	uint32_t len;
	unsigned char payload[];
};

struct tnode {
	struct tnode *left, *right;
	uint64_t key;
	uint32_t len;
	unsigned char payload[];
};

static const char *NAME = "linked";

static uint64_t
list_round(uint64_t n, uint64_t *rng) {
	struct lnode *head = NULL, **tail = &head;
	uint64_t in = 0, out = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint32_t len = (uint32_t)rng_range(rng, 0, 96);
		struct lnode *x = malloc(sizeof *x + len);
		if (!x)
			bench_fail(NAME, "malloc returned NULL");
		x->next = NULL;
		x->key = rng_next(rng);
		x->len = len;
		stamp(x->payload, len, x->key);
		*tail = x;
		tail = &x->next;
		in += x->key;
	}
	while (head) {
		struct lnode *x = head;
		head = x->next;
		if (!stamp_ok(x->payload, x->len, x->key))
			bench_fail(NAME, "list node %p corrupted", (void *)x);
		out += x->key;
		free(x);
	}
	if (in != out)
		bench_fail(NAME, "list key sum mismatch");
	return out;
}

struct walk {
	uint64_t sum, count, last;
	int sorted;
};

static void
tree_walk(struct tnode *t, struct walk *w) {
	/* iterative in-order walk with an explicit stack (the tree can be deep) */
	static struct tnode **stack;
	static size_t cap;
	size_t sp = 0;

	if (!stack) {
		cap = 1 << 20;
		stack = bench_map(NAME, cap * sizeof *stack);
	}
	while (t || sp) {
		while (t) {
			if (sp == cap)
				bench_fail(NAME, "tree too deep");
			stack[sp++] = t;
			t = t->left;
		}
		t = stack[--sp];
		if (w->count && t->key < w->last)
			w->sorted = 0;
		w->last = t->key;
		w->sum += t->key;
		w->count++;
		t = t->right;
	}
}

static uint64_t
tree_free(struct tnode *t) {
	/* post-order free via pointer reversal-free approach: rotate left children up */
	uint64_t sum = 0;

	while (t) {
		if (t->left) {
			/* right rotation: make the left child the root */
			struct tnode *l = t->left;
			t->left = l->right;
			l->right = t;
			t = l;
		} else {
			struct tnode *r = t->right;
			if (!stamp_ok(t->payload, t->len, t->key))
				bench_fail(NAME, "tree node %p corrupted", (void *)t);
			sum += t->key;
			free(t);
			t = r;
		}
	}
	return sum;
}

static uint64_t
tree_round(uint64_t n, uint64_t *rng) {
	struct tnode *root = NULL;
	uint64_t in = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint32_t len = (uint32_t)rng_range(rng, 0, 96);
		struct tnode *x = malloc(sizeof *x + len);
		if (!x)
			bench_fail(NAME, "malloc returned NULL");
		x->left = x->right = NULL;
		x->key = rng_next(rng);
		x->len = len;
		stamp(x->payload, len, x->key);
		struct tnode **pp = &root;
		while (*pp)
			pp = x->key < (*pp)->key ? &(*pp)->left : &(*pp)->right;
		*pp = x;
		in += x->key;
	}
	struct walk w = {0, 0, 0, 1};
	tree_walk(root, &w);
	if (w.count != n || w.sum != in || !w.sorted)
		bench_fail(NAME, "tree walk mismatch (count %llu of %llu, sorted %d)",
		           (unsigned long long)w.count, (unsigned long long)n, w.sorted);
	if (tree_free(root) != in)
		bench_fail(NAME, "tree key sum mismatch on teardown");
	return in;
}

int
main(int argc, char **argv) {
	struct bench_opts o;

	bench_parse(&o, argc, argv, NAME, "build and tear down linked lists and binary trees", 1);
	/* 5 rounds of 1.2M list nodes + 300k tree nodes at full scale: scale the
	 * number of rounds first and the structure size only below one round */
	double work = 5.0 * o.scale;
	uint64_t rounds = work < 1.0 ? 1 : (uint64_t)(work + 0.5);
	double size = work < 1.0 ? work : 1.0;
	uint64_t list_n = (uint64_t)(1.2e6 * size), tree_n = (uint64_t)(3e5 * size);
	if (list_n < 2000)
		list_n = 2000;
	if (tree_n < 1000)
		tree_n = 1000;
	uint64_t rng = o.seed, sum = 0;
	double t0 = bench_now();

	for (uint64_t r = 0; r < rounds; r++) {
		sum += list_round(list_n, &rng);
		sum += tree_round(tree_n, &rng);
	}
	bench_ok(&o, t0, "rounds=%llu list_nodes=%llu tree_nodes=%llu checksum=%016llx",
	         (unsigned long long)rounds, (unsigned long long)list_n, (unsigned long long)tree_n,
	         (unsigned long long)sum);
	return 0;
}
