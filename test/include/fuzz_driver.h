/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The driver shared by the fuzz targets in test/fuzz/ (header-only; each
 * target defines FUZZ_TARGET, its name, and LLVMFuzzerTestOneInput, then
 * includes this).
 *
 * Built with libFuzzer (FUZZ_LIBFUZZER, clang -fsanitize=fuzzer):
 *   - with arguments, the program is plain libFuzzer (scripts/fuzz runs it
 *     so, with its own corpus directory and time);
 *   - without, as make check runs it, it replays the committed corpus
 *     $ALLOC_SRCDIR/test/fuzz/corpus/FUZZ_TARGET and then fuzzes for
 *     $FUZZ_SECONDS seconds (default 3), new inputs going to a scratch
 *     directory that is removed at exit and crashes to
 *     test/fuzz/FUZZ_TARGET-crash-* in the build directory.
 * Built without (a gcc build with ASan/UBSan where clang's libFuzzer is
 * missing), main() replays each file named on the command line, or every
 * file of each directory named, or by default the committed corpus, and
 * says why it did not fuzz.
 */
#ifndef TEST_FUZZ_DRIVER_H
#define TEST_FUZZ_DRIVER_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_TARGET
#error "define FUZZ_TARGET before including fuzz_driver.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_TRACE set to a non-zero number in the environment: a target's
 * FUZZ_TRACE_PRINT calls print every operation, to read a reproducer. */
static inline bool
fuzz_trace_on(void) {
	static int on = -1;
	if (on < 0) {
		const char *v = getenv("FUZZ_TRACE");
		on = v != NULL && atoi(v) != 0;
	}
	return on != 0;
}
#define FUZZ_TRACE_PRINT(...)                         \
	do {                                          \
		if (fuzz_trace_on()) {                \
			fprintf(stderr, __VA_ARGS__); \
		}                                     \
	} while (0)

/* The committed corpus of this target, from $ALLOC_SRCDIR (set by the test
 * runner) or the current directory. */
static const char *
fuzz_corpus_dir(void) {
	static char path[4096];
	const char *src = getenv("ALLOC_SRCDIR");
	snprintf(path, sizeof(path), "%s/test/fuzz/corpus/%s", src != NULL ? src : ".",
	         FUZZ_TARGET);
	return path;
}

#ifdef FUZZ_LIBFUZZER

static char fuzz_scratch[] = "/tmp/liballoc-fuzz-" FUZZ_TARGET ".XXXXXX";

static void
fuzz_remove_scratch(void) {
	DIR *d = opendir(fuzz_scratch);
	if (d == NULL) {
		return;
	}
	struct dirent *e;
	char path[4096];
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", fuzz_scratch, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
	rmdir(fuzz_scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv) {
	if (*argc > 1) {
		return 0;
	}
	static char time_arg[64];
	const char *secs = getenv("FUZZ_SECONDS");
	snprintf(time_arg, sizeof(time_arg), "-max_total_time=%d",
	         secs != NULL && atoi(secs) > 0 ? atoi(secs) : 3);
	if (mkdtemp(fuzz_scratch) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(fuzz_remove_scratch);
	const char *corpus = fuzz_corpus_dir();
	struct stat st;
	if (stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "no corpus directory %s (set ALLOC_SRCDIR)\n", corpus);
		exit(1);
	}
	printf("replaying %s, then fuzzing (%s)\n", corpus, time_arg);
	fflush(stdout);
	static char *args[16];
	int n = 0;
	args[n++] = (*argv)[0];
	args[n++] = time_arg;
	args[n++] = "-timeout=30";
	args[n++] = "-max_len=4096";
	/* Long inputs from the start: a few seconds are too short for
	 * libFuzzer's slow growth of the length limit. */
	args[n++] = "-len_control=0";
	args[n++] = "-artifact_prefix=test/fuzz/" FUZZ_TARGET "-";
	args[n++] = "-print_final_stats=1";
	/* libFuzzer's default exit status on a crash is 77, which the test
	 * runner reads as "skipped". */
	args[n++] = "-error_exitcode=1";
	args[n++] = fuzz_scratch;
	args[n++] = (char *)corpus;
	args[n] = NULL;
	*argc = n;
	*argv = args;
	return 0;
}

#else /* replay only */

static unsigned fuzz_replayed;

static int
fuzz_replay_file(const char *path) {
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap);
	size_t got;
	while (buf != NULL && (got = fread(buf + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	fclose(f);
	if (buf == NULL) {
		fprintf(stderr, "%s: out of memory\n", path);
		return 1;
	}
	/* An exact-size copy, so ASan sees reads past the end of the input. */
	uint8_t *data = malloc(len > 0 ? len : 1);
	memcpy(data, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	fuzz_replayed++;
	return 0;
}

static int
fuzz_replay_path(const char *path) {
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		return fuzz_replay_file(path);
	}
	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	int failed = 0;
	char file[4096];
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
			failed |= fuzz_replay_file(file);
		}
		free(names[i]);
	}
	free(names);
	return failed;
}

#ifndef FUZZ_SKIP
#define FUZZ_SKIP "built without libFuzzer"
#endif

int
main(int argc, char **argv) {
	int failed = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			if (argv[i][0] != '-') {
				failed |= fuzz_replay_path(argv[i]);
			}
		}
	} else {
		printf("not fuzzing: %s; replaying the corpus only\n", FUZZ_SKIP);
		failed = fuzz_replay_path(fuzz_corpus_dir());
	}
	printf("%u inputs replayed\n", fuzz_replayed);
	return failed;
}

#endif

#endif
