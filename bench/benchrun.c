/*
 * benchrun: run one command and measure it (used by scripts/bench).
 *
 *   benchrun [-p PRELOAD] [-e NAME=VALUE]... [-o LOG] [-t SECONDS] [-w MIB] -- CMD [ARG...]
 *
 * Runs CMD with LD_PRELOAD set to PRELOAD (or removed when -p is absent or
 * empty, so the launcher's own environment never leaks an allocator), with
 * extra environment variables from -e, stdin from /dev/null and stdout+stderr
 * to LOG (default: inherited). The command runs in its own process group and
 * is killed after SECONDS (default 600). Only the child gets LD_PRELOAD: the
 * launcher itself runs on the system allocator.
 *
 * -w MIB: before the clock starts, the launcher maps MIB MiB, writes a byte
 * in every page and unmaps them. On a virtual machine the host takes back
 * guest memory that was freed, and the first process to touch it again
 * pays the host's faults in its system time (frag: 3-8 s instead of 1 after
 * a run that left 1 GB freed); warming first charges that to nobody.
 *
 * Prints one line on stdout:
 *   status=N wall=SECONDS maxrss_kb=KB user=SECONDS sys=SECONDS
 * where status is the exit code, 128+signal if killed by a signal, or 124 on
 * timeout. wall is measured with CLOCK_MONOTONIC around fork..wait4; maxrss
 * comes from wait4's rusage (peak resident set of the child).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static pid_t child;

static void
on_alarm(int sig) {
	(void)sig;
	timed_out = 1;
	if (child > 0)
		kill(-child, SIGKILL);
}

static double
now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
usage(void) {
	fprintf(stderr, "usage: benchrun [-p PRELOAD] [-e NAME=VALUE]... [-o LOG] [-t SECONDS] "
	                "[-w MIB] -- CMD [ARG...]\n");
	exit(2);
}

/* Touches `mib` MiB of fresh memory once (-w). */
static void
warm(size_t mib) {
	size_t len = mib << 20;
	if (len == 0)
		return;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "benchrun: -w %zu: %s\n", mib, strerror(errno));
		return;
	}
	long page = sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < len; off += (size_t)page)
		p[off] = 1;
	munmap(p, len);
}

int
main(int argc, char **argv) {
	const char *preload = NULL, *log = NULL;
	unsigned timeout = 600;
	size_t warm_mib = 0;
	int opt;

	while ((opt = getopt(argc, argv, "+p:e:o:t:w:h")) != -1) {
		switch (opt) {
		case 'p':
			preload = optarg;
			break;
		case 'e':
			if (!strchr(optarg, '=') || putenv(optarg) != 0)
				usage();
			break;
		case 'o':
			log = optarg;
			break;
		case 't':
			timeout = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			warm_mib = (size_t)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();

	int logfd = -1;
	if (log) {
		logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (logfd < 0) {
			fprintf(stderr, "benchrun: %s: %s\n", log, strerror(errno));
			return 2;
		}
	}
	fflush(NULL);
	warm(warm_mib);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);

	double t0 = now();
	child = fork();
	if (child < 0) {
		perror("benchrun: fork");
		return 2;
	}
	if (child == 0) {
		setpgid(0, 0);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
		if (logfd >= 0) {
			dup2(logfd, 1);
			dup2(logfd, 2);
		}
		if (preload && *preload)
			setenv("LD_PRELOAD", preload, 1);
		else
			unsetenv("LD_PRELOAD");
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "benchrun: cannot run %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	setpgid(child, child);
	alarm(timeout);

	int st = 0;
	struct rusage ru;
	pid_t r;
	do {
		r = wait4(child, &st, 0, &ru);
	} while (r < 0 && errno == EINTR);
	double wall = now() - t0;
	alarm(0);
	if (r < 0) {
		perror("benchrun: wait4");
		return 2;
	}
	/* reap anything left in the process group */
	kill(-child, SIGKILL);

	int status;
	if (timed_out)
		status = 124;
	else if (WIFEXITED(st))
		status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		status = 128 + WTERMSIG(st);
	else
		status = 255;
	printf("status=%d wall=%.6f maxrss_kb=%ld user=%.3f sys=%.3f\n", status, wall, ru.ru_maxrss,
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6);
	return 0;
}
