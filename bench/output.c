/* SPDX-License-Identifier: MIT */
/*
 * Machine-readable output: CSV (one line per measured figure: its median,
 * then every repetition, and whether sanity.c failed its cell) and JSON (the
 * same, with the machine, the command line, the notes and the targets).
 */
#include "bench.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool cell_failed(const struct result *r)
{
	return r->failed || result_failed(r->workload, r->transport, r->param);
}

static void csv_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

int report_csv(const char *path)
{
	FILE *f = fopen(path, "w");
	int n;
	struct result *r = result_all(&n);

	if (f == NULL)
		return -1;
	fprintf(f, "workload,transport,param,metric,median,reps,values,"
		   "failed,note\n");
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s,%s,%s,%s,", r[i].workload, r[i].transport,
			r[i].param, r[i].metric);
		if (r[i].n > 0)
			fprintf(f, "%.6g", bench_median(r[i].v, r[i].n));
		fprintf(f, ",%d,", r[i].n);
		for (int k = 0; k < r[i].n; k++)
			fprintf(f, "%s%.6g", k ? " " : "", r[i].v[k]);
		fprintf(f, ",%d,", cell_failed(&r[i]));
		csv_quoted(f, r[i].note);
		fputc('\n', f);
	}
	return fclose(f);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_number(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

/* An array element's opening: workload, transport and param. */
static void json_record_head(FILE *f, const struct result *r, bool first)
{
	fprintf(f, "%s\n    {\"workload\": ", first ? "" : ",");
	json_string(f, r->workload);
	fprintf(f, ", \"transport\": ");
	json_string(f, r->transport);
	fprintf(f, ", \"param\": ");
	json_string(f, r->param);
}

int report_json(const char *path, const char *machine, const char *cmdline,
		const struct bench_opts *o)
{
	FILE *f = fopen(path, "w");
	struct target tg[TARGETS_MAX];
	int n, nt = targets_check(tg);
	struct result *r = result_all(&n);
	char date[32];
	time_t now = time(NULL);

	if (f == NULL)
		return -1;
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "{\n  \"machine\": ");
	json_string(f, machine);
	fprintf(f, ",\n  \"command\": ");
	json_string(f, cmdline);
	fprintf(f, ",\n  \"date\": \"%s\",\n  \"load_start\": ", date);
	json_number(f, o->load_start);
	fprintf(f, ",\n  \"load_end\": ");
	json_number(f, o->load_end);
	fprintf(f, ",\n  \"took\": ");
	json_string(f, o->took);
	fprintf(f, ",\n  \"results\": [");
	for (int i = 0, first = 1; i < n; i++) {
		if (r[i].n == 0)
			continue;
		json_record_head(f, &r[i], first);
		first = 0;
		fprintf(f, ", \"metric\": ");
		json_string(f, r[i].metric);
		fprintf(f, ", \"median\": ");
		json_number(f, bench_median(r[i].v, r[i].n));
		fprintf(f, ", \"values\": [");
		for (int k = 0; k < r[i].n; k++) {
			fprintf(f, k ? ", " : "");
			json_number(f, r[i].v[k]);
		}
		fprintf(f, "]%s}",
			cell_failed(&r[i]) ? ", \"failed\": true" : "");
	}
	fprintf(f, "\n  ],\n  \"notes\": [");
	for (int i = 0, first = 1; i < n; i++) {
		if (r[i].note[0] == '\0')
			continue;
		json_record_head(f, &r[i], first);
		first = 0;
		fprintf(f, ", \"note\": ");
		json_string(f, r[i].note);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ],\n  \"targets\": [");
	for (int i = 0; i < nt; i++) {
		fprintf(f, "%s\n    {\"target\": ", i ? "," : "");
		json_string(f, tg[i].name);
		fprintf(f, ", \"met\": %s, \"value\": ",
			tg[i].met < 0 ? "null"
			: tg[i].met   ? "true"
				      : "false");
		json_number(f, tg[i].value);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f);
}
