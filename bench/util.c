/* SPDX-License-Identifier: MIT */
/*
 * Small helpers of ipc-bench: clocks, CPU time, pinning, order statistics,
 * shared scratch memory, the progress line and the machine description.
 */
#include "bench.h"

#include <gnu/libc-version.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Every thread of the process: nanomsg and ZeroMQ do their work in
 * background threads, which must count. */
double bench_cpu_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

void bench_die(const char *what)
{
	perror(what);
	_exit(3);
}

int bench_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (int)n;
}

void bench_pin(int cpu)
{
	cpu_set_t set;
	int ncpu = bench_ncpu();

	CPU_ZERO(&set);
	if (cpu < 0) {
		for (int i = 0; i < ncpu && i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	} else {
		CPU_SET(cpu % ncpu, &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

void bench_sort(double *v, long n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
}

double bench_median(double *v, int n)
{
	double tmp[BENCH_MAX_REPS];
	int m = 0;

	for (int i = 0; i < n && m < BENCH_MAX_REPS; i++)
		if (!isnan(v[i]))
			tmp[m++] = v[i];
	if (m == 0)
		return NAN;
	bench_sort(tmp, m);
	return m % 2 ? tmp[m / 2] : (tmp[m / 2 - 1] + tmp[m / 2]) / 2;
}

/* Nearest rank. */
double bench_percentile(double *sorted, long n, double p)
{
	long i;

	if (n <= 0)
		return NAN;
	i = (long)ceil(p / 100.0 * (double)n) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return sorted[i];
}

void *bench_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_die("mmap");
	return p;
}

void bench_unshare(void *p, size_t size)
{
	munmap(p, size);
}

static bool progress_shown;

void bench_progress(const char *fmt, ...)
{
	char line[160];
	va_list ap;

	if (!isatty(2))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	progress_shown = true;
}

void bench_progress_end(void)
{
	if (progress_shown)
		fprintf(stderr, "\r\033[K");
	progress_shown = false;
}

void bench_machine(char *out, size_t cap)
{
	char model[128] = "unknown CPU", line[256];
	struct utsname u;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	}
	if (f != NULL)
		fclose(f);
	uname(&u);
	snprintf(out, cap, "%s, %d CPUs online, Linux %s (%s), glibc %s", model,
		 bench_ncpu(), u.release, u.machine, gnu_get_libc_version());
}

double bench_loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double load = NAN;

	if (f != NULL) {
		if (fscanf(f, "%lf", &load) != 1)
			load = NAN;
		fclose(f);
	}
	return load;
}

/* The attach of transports whose parent-made setup is all a peer needs. */
int bench_attach_nothing(struct channel *c, enum bench_role role)
{
	(void)c;
	(void)role;
	return 0;
}
