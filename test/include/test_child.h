/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Test helper: run this test program again as a child process with a given
 * MALLOC_CONF, for options that are read once at start-up.
 *
 * test_child_run(conf, mode, &c) executes /proc/self/exe as
 * `prog child MODE` with MALLOC_CONF=conf in its environment (removed when
 * conf is NULL), collects its stdout and stderr (truncated to the buffers)
 * and its wait status. The test's main() dispatches on argv[1] == "child".
 * A child that hangs is killed by its own alarm after 60 s. Header-only:
 * every function is static; needs _GNU_SOURCE (execve of /proc/self/exe,
 * environ).
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

#endif
