/* SPDX-License-Identifier: MIT */
/*
 * Shared by the report writers: the row orders and the targets.
 */
#ifndef IPC_BENCH_REPORT_H
#define IPC_BENCH_REPORT_H

#include <stddef.h>

extern const char *const stream_rows[];
extern const char *const grid_rows[];
extern const char *const grid_params[];
extern const char *const onecore_rows[];
extern const char *const prim_rows[];

const char *fmt_num(char *buf, size_t cap, double v);

#define TARGETS_MAX 16
struct target {
	const char *name;
	int met; /* 1 met, 0 not met, -1 not measured in this run */
	double value;
	char measured[96];
};
/* The targets of the speed issue against this run's medians. */
int targets_check(struct target *out);

#endif
