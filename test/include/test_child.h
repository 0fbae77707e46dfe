/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper: run this test program again as a child process with a given
 * MALLOC_CONF, for options that are read once at start-up.
 *
 * test_child_run(conf, mode, &c) executes /proc/self/exe as
 * `prog child MODE` with MALLOC_CONF=conf in its environment (removed when
 * conf is NULL), collects its stdout and stderr (truncated to the buffers)
 * and its wait status. The test's main() dispatches on argv[1] == "child",
 * through test_child_dispatch when the child's work is a table of modes.
 * A child that hangs is killed by its own alarm after 60 s. Header-only:
 * every function is static; needs _GNU_SOURCE (execve of /proc/self/exe,
 * environ). test_child_expect, which fails the running cmocka test, is
 * there only when <cmocka.h> is included first.
 */
#ifndef TEST_CHILD_H
#define TEST_CHILD_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
	/* waitpid status; -1 when the child could not be started. */
	int status;
	char out[8192];
	char err[8192];
} test_child_t;

extern char **environ;

/* Appends what fd has to buf (NUL-terminated); false at end of file. */
static inline bool
test_child_drain(int fd, char *buf, size_t size) {
	size_t len = strlen(buf);
	char tmp[1024];
	ssize_t n = read(fd, tmp, sizeof(tmp));
	if (n < 0 && errno == EINTR) {
		return true;
	}
	if (n <= 0) {
		return false;
	}
	size_t room = size - 1 - len;
	size_t copy = (size_t)n < room ? (size_t)n : room;
	memcpy(buf + len, tmp, copy);
	buf[len + copy] = '\0';
	return true;
}

/* Under valgrind /proc/self/exe is valgrind's launcher, which will not run
 * as a child (valgrind preloads its vgpreload_*.so objects): tests skip
 * their child cases then. */
static inline bool
test_child_under_valgrind(void) {
	const char *preload = getenv("LD_PRELOAD");
	return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* Returns false (c->status -1) when the child could not be started. */
static inline bool
test_child_run(const char *conf, const char *mode, test_child_t *c) {
	static char *envp[4096];
	static char var[4096];
	memset(c, 0, sizeof(*c));
	c->status = -1;
	size_t n = 0;
	for (char **e = environ; *e != NULL && n < 4094; e++) {
		if (strncmp(*e, "MALLOC_CONF=", 12) != 0) {
			envp[n++] = *e;
		}
	}
	if (conf != NULL) {
		snprintf(var, sizeof(var), "MALLOC_CONF=%s", conf);
		envp[n++] = var;
	}
	envp[n] = NULL;

	int out[2], err[2];
	if (pipe(out) != 0) {
		return false;
	}
	if (pipe(err) != 0) {
		close(out[0]);
		close(out[1]);
		return false;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(out[0]);
		close(out[1]);
		close(err[0]);
		close(err[1]);
		return false;
	}
	if (pid == 0) {
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		alarm(60);
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		close(out[0]);
		close(out[1]);
		close(err[0]);
		close(err[1]);
		char *argv[] = {"test", "child", (char *)mode, NULL};
		execve("/proc/self/exe", argv, envp);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0) {
				continue;
			}
			bool more = i == 0 ? test_child_drain(fds[i].fd, c->out, sizeof(c->out))
			                   : test_child_drain(fds[i].fd, c->err, sizeof(c->err));
			if (!more) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			}
		}
	}
	for (int i = 0; i < 2; i++) {
		if (fds[i].fd >= 0) {
			close(fds[i].fd);
		}
	}
	while (waitpid(pid, &c->status, 0) < 0) {
		if (errno != EINTR) {
			c->status = -1;
			return false;
		}
	}
	return true;
}

/* Whether the child exited with status 0. */
static inline bool
test_child_ok(const test_child_t *c) {
	return c->status != -1 && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

/* One child mode: `prog child NAME` runs fn and exits with what it returns. */
typedef struct {
	const char *name;
	int (*fn)(void);
} test_child_mode_t;

/* Runs the mode named `mode` out of modes[0..n); an unknown name is an
 * error (exit status 2, a line on stderr). */
static inline int
test_child_dispatch(const char *mode, const test_child_mode_t *modes, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (strcmp(mode, modes[i].name) == 0) {
			return modes[i].fn();
		}
	}
	fprintf(stderr, "unknown child mode %s\n", mode);
	return 2;
}

#ifdef fail_msg
/* Runs the child and fails the current test unless it exited 0 and, when
 * `quiet`, wrote nothing to stderr; the message shows both outputs. */
static inline void
test_child_expect(const char *conf, const char *mode, bool quiet, test_child_t *c) {
	const char *shown = conf != NULL ? conf : "(unset)";
	if (!test_child_run(conf, mode, c) || !test_child_ok(c)) {
		fail_msg("MALLOC_CONF=%s %s: status 0x%x\nstdout:\n%s\nstderr:\n%s", shown, mode,
		         c->status, c->out, c->err);
	}
	if (quiet && c->err[0] != '\0') {
		fail_msg("MALLOC_CONF=%s %s: unexpected stderr:\n%s", shown, mode, c->err);
	}
}
#endif

#endif
