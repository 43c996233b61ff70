/* SPDX-License-Identifier: MIT */
/*
 * Plots with gnuplot, each as PNG and SVG in one directory: throughput by
 * message size per transport (stream.*), latency percentiles per transport
 * (latency.*), and the producers x consumers grid (grid.*). The data files
 * and the script stay beside the images, so a plot can be redrawn or
 * restyled without rerunning the benchmark.
 */
#include "bench.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void cell(FILE *f, double v)
{
	if (isfinite(v) && v > 0)
		fprintf(f, " %.6g", v);
	else
		fprintf(f, " ?"); /* gnuplot's missing value */
}

static int nrows(const char *workload, const char *const *rows)
{
	int n = 0;

	for (int i = 0; rows[i] != NULL; i++)
		n += workload == NULL || result_measured(workload, rows[i]);
	return n;
}

static void write_data(const char *dir)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/stream.dat", dir);
	if ((f = fopen(path, "w")) != NULL) {
		/* Only the rows measured: gnuplot warns of empty columns. */
		fprintf(f, "size");
		for (int t = 0; stream_rows[t] != NULL; t++)
			if (result_measured("stream", stream_rows[t]))
				fprintf(f, " %s", stream_rows[t]);
		fprintf(f, "\n");
		for (int s = 0; s < bench_nsizes; s++) {
			char p[24];
			snprintf(p, sizeof(p), "%zu", bench_sizes[s]);
			fprintf(f, "%zu", bench_sizes[s]);
			for (int t = 0; stream_rows[t] != NULL; t++)
				if (result_measured("stream", stream_rows[t]))
					cell(f, result_get("stream",
							   stream_rows[t], p,
							   "msgs_per_s"));
			fprintf(f, "\n");
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/latency.dat", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "transport p50 p99 p99.9\n");
		for (int t = 0; stream_rows[t] != NULL; t++) {
			const char *r = stream_rows[t];
			if (isnan(result_get("latency", r, "64", "p50_us")))
				continue;
			fprintf(f, "%s", r);
			cell(f, result_get("latency", r, "64", "p50_us"));
			cell(f, result_get("latency", r, "64", "p99_us"));
			cell(f, result_get("latency", r, "64", "p999_us"));
			fprintf(f, "\n");
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/grid.dat", dir);
	if ((f = fopen(path, "w")) != NULL) {
		fprintf(f, "transport");
		for (int g = 0; grid_params[g] != NULL; g++)
			fprintf(f, " %s", grid_params[g]);
		fprintf(f, "\n");
		for (int t = 0; grid_rows[t] != NULL; t++) {
			if (!result_measured("grid", grid_rows[t]))
				continue;
			fprintf(f, "%s", grid_rows[t]);
			for (int g = 0; grid_params[g] != NULL; g++)
				cell(f,
				     result_get("grid", grid_rows[t],
						grid_params[g], "msgs_per_s"));
			fprintf(f, "\n");
		}
		fclose(f);
	}
}

static void write_script(FILE *f, const char *dir, const char *term,
			 const char *ext)
{
	fprintf(f,
		"set terminal %s\nset datafile missing '?'\n"
		"set key outside right\nset grid\n",
		term);
	if (result_measured("stream", NULL))
		fprintf(f,
			"set output '%s/stream.%s'\nset logscale xy\n"
			"set title 'One-way stream, 1 producer -> 1 consumer'\n"
			"set xlabel 'message size (bytes)'\n"
			"set ylabel 'messages per second'\n"
			"plot for [i=2:%d] '%s/stream.dat' using 1:i with "
			"linespoints title columnheader(i)\n",
			dir, ext, nrows("stream", stream_rows) + 1, dir);
	fprintf(f, "unset logscale\nunset xlabel\nset logscale y\n"
		   "set style data histograms\nset style histogram clustered\n"
		   "set style fill solid border -1\nset xtics rotate by -45\n");
	if (result_measured("latency", NULL))
		fprintf(f,
			"set output '%s/latency.%s'\n"
			"set title 'Ping-pong one-way latency, 64 B'\n"
			"set ylabel 'microseconds'\n"
			"plot '%s/latency.dat' using 2:xtic(1) title 'p50', "
			"'' using 3 title 'p99', '' using 4 title 'p99.9'\n",
			dir, ext, dir);
	if (result_measured("grid", NULL))
		fprintf(f,
			"set output '%s/grid.%s'\n"
			"set title 'Producers x consumers, 64 B, total'\n"
			"set ylabel 'messages per second'\n"
			"plot for [i=2:%d] '%s/grid.dat' using i:xtic(1) "
			"title columnheader(i)\n",
			dir, ext, nrows(NULL, grid_params) + 1, dir);
}

int report_plots(const char *dir)
{
	char path[512], cmd[1100];
	FILE *f;

	mkdir(dir, 0755);
	write_data(dir);
	snprintf(path, sizeof(path), "%s/plots.gp", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	write_script(f, dir, "pngcairo size 1100,650", "png");
	write_script(f, dir, "svg size 1100,650", "svg");
	fclose(f);
	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		fprintf(stderr,
			"ipc-bench: gnuplot not found: data and script "
			"in %s, no images\n",
			dir);
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>&1", path);
	return system(cmd) == 0 ? 0 : -1;
}
