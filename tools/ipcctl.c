/* SPDX-License-Identifier: MIT */
/*
 * ipcctl — list, inspect, remove and clean up the named libipc objects of
 * this machine (the files /dev/shm/libipc.*).
 *
 * Everything it reports comes from ipc_stat, which reads each file's
 * header with pread and asks the kernel how many live handles hold it
 * open: ipcctl never maps a segment, never takes or waits for an object's
 * locks, and is not disturbed by corrupt, truncated or foreign files (they
 * are listed with what is wrong). gc removes through ipc_unlink_unused,
 * which is race-free against a process opening the name at that moment.
 * See ipcctl(1).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libipc/ipc.h"

#define SHM_DIR "/dev/shm"
#define PREFIX "libipc."

struct opts {
	bool json;
	bool dry_run;
	const char *prefix; /* object names starting with it only */
	long interval_ms;
	long count; /* watch: refreshes, 0 for ever */
};

struct entry {
	char name[256];
	int rc;
	ipc_object_info info;
};

static int usage(FILE *to)
{
	fprintf(to, "usage: ipcctl [--json] ls [--prefix P]\n"
		    "       ipcctl [--json] show NAME...\n"
		    "       ipcctl rm NAME...\n"
		    "       ipcctl [--json] gc [--dry-run] [--prefix P]\n"
		    "       ipcctl watch [--prefix P] [--interval MS] "
		    "[--count N]\n");
	return to == stderr ? 2 : 0;
}

/* The objects in /dev/shm, sorted by name. */
static int scan(const struct opts *o, struct entry **out, size_t *n)
{
	DIR *d = opendir(SHM_DIR);
	struct dirent *e;
	size_t cap = 16;

	*n = 0;
	*out = malloc(cap * sizeof(**out));
	if (d == NULL || *out == NULL) {
		if (d != NULL)
			closedir(d);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		const char *name = e->d_name + strlen(PREFIX);
		if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) != 0 ||
		    strncmp(name, ".tmp.", 5) == 0) /* a creator's */
			continue;
		if (o->prefix != NULL &&
		    strncmp(name, o->prefix, strlen(o->prefix)) != 0)
			continue;
		if (*n == cap) {
			struct entry *g =
				realloc(*out, 2 * cap * sizeof(**out));
			if (g == NULL)
				break;
			*out = g;
			cap *= 2;
		}
		struct entry *en = &(*out)[(*n)++];
		snprintf(en->name, sizeof(en->name), "%s", name);
		en->rc = ipc_stat(en->name, &en->info);
	}
	closedir(d);
	for (size_t i = 1; i < *n; i++) /* insertion sort: few entries */
		for (size_t j = i;
		     j > 0 && strcmp((*out)[j - 1].name, (*out)[j].name) > 0;
		     j--) {
			struct entry t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return 0;
}

static const char *kind_of(const struct entry *e)
{
	if (e->rc == 0)
		return ipc_kind_name(e->info.kind);
	if (e->rc == IPC_EINVAL)
		return "bad name"; /* not one libipc could have made */
	return e->info.problem != NULL ? e->info.problem : ipc_strerror(e->rc);
}

static bool pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static double age_s(const ipc_object_info *i)
{
	struct timespec now;
	double t;

	clock_gettime(CLOCK_REALTIME, &now);
	t = (double)now.tv_sec + now.tv_nsec / 1e9 - i->created_ns / 1e9;
	return i->created_ns == 0 || t < 0 ? 0 : t;
}

static const char *owner(uid_t uid, char *buf, size_t cap)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, cap, "%s", pw->pw_name);
	else
		snprintf(buf, cap, "%u", (unsigned)uid);
	return buf;
}

static void holder_text(const ipc_object_info *i, char *buf, size_t cap)
{
	if (i->holder > 0)
		snprintf(buf, cap, "held by %d", (int)i->holder);
	else if (i->holder == 0 && i->holder_died == 1)
		snprintf(buf, cap, "free (holder died)");
	else if (i->holder == 0)
		snprintf(buf, cap, "free");
	else
		snprintf(buf, cap, "holder unknown");
}

/* One line of live state, per kind. */
static void state_of(const struct entry *e, char *buf, size_t cap)
{
	const ipc_object_info *i = &e->info;
	char h[48];
	int n = 0;

	buf[0] = '\0';
	if (e->rc != 0) {
		snprintf(buf, cap, "-");
		return;
	}
	switch (i->kind) {
	case IPC_KIND_QUEUE:
	case IPC_KIND_MQUEUE:
		n = snprintf(buf, cap, "depth %ld", i->depth);
		if (i->maxsize > 0)
			n += snprintf(buf + n, cap - (size_t)n, "/%ld",
				      i->maxsize);
		if (i->bytes_used >= 0)
			n += snprintf(buf + n, cap - (size_t)n,
				      ", %ld/%ld bytes", i->bytes_used,
				      i->capacity);
		if (i->waiters > 0)
			n += snprintf(buf + n, cap - (size_t)n, ", %ld waiting",
				      i->waiters);
		if (i->unfinished >= 0)
			n += snprintf(buf + n, cap - (size_t)n,
				      ", %ld unfinished, %d consumers",
				      i->unfinished, i->n_consumers);
		if (i->shut_down == 1)
			snprintf(buf + n, cap - (size_t)n, ", shut down");
		break;
	case IPC_KIND_LOCK:
	case IPC_KIND_RLOCK:
		holder_text(i, buf, cap);
		break;
	case IPC_KIND_COND:
		holder_text(i, h, sizeof(h));
		snprintf(buf, cap, "%s, %ld waiting", h, i->waiters);
		break;
	case IPC_KIND_EVENT:
		snprintf(buf, cap, "%s", i->is_set == 1 ? "set" : "clear");
		break;
	case IPC_KIND_SEM:
		n = snprintf(buf, cap, "value %ld", i->value);
		if (i->max > 0)
			n += snprintf(buf + n, cap - (size_t)n, "/%ld", i->max);
		snprintf(buf + n, cap - (size_t)n, ", %ld waiting", i->waiters);
		break;
	case IPC_KIND_BARRIER:
		snprintf(buf, cap, "%ld/%ld waiting%s", i->n_waiting,
			 i->parties, i->broken == 1 ? ", broken" : "");
		break;
	default:
		snprintf(buf, cap, "-");
	}
}

/* JSON string: names in /dev/shm may hold any byte but '/' and NUL. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* A field that applies (not -1). */
static void json_long(const char *key, long v)
{
	if (v >= 0)
		printf(", \"%s\": %ld", key, v);
}

static void json_bool(const char *key, int v)
{
	if (v >= 0)
		printf(", \"%s\": %s", key, v ? "true" : "false");
}

static void json_entry(const struct entry *e)
{
	const ipc_object_info *i = &e->info;
	char who[64];

	printf("{\"name\": ");
	json_str(e->name);
	printf(", \"ok\": %s, \"kind\": ", e->rc == 0 ? "true" : "false");
	json_str(kind_of(e));
	printf(", \"size\": %llu, \"mode\": \"%04o\", \"owner\": ", i->size,
	       i->mode);
	json_str(owner(i->uid, who, sizeof(who)));
	printf(", \"users\": %d", i->users);
	if (i->users > 0) {
		printf(", \"user_pids\": [");
		for (int k = 0; k < i->users && k < IPC_STAT_MAX_PIDS; k++)
			printf("%s%d", k ? ", " : "", (int)i->user_pids[k]);
		printf("]");
	}
	if (e->rc == 0)
		printf(", \"creator_pid\": %d, \"creator_alive\": %s, "
		       "\"age_s\": %.1f",
		       (int)i->creator_pid,
		       pid_alive(i->creator_pid) ? "true" : "false", age_s(i));
	json_long("depth", i->depth);
	json_long("maxsize", i->maxsize);
	json_long("max_msg_size", i->max_msg_size);
	json_long("bytes_used", i->bytes_used);
	json_long("capacity", i->capacity);
	json_bool("shut_down", i->shut_down);
	json_long("unfinished", i->unfinished);
	json_long("waiters", i->waiters);
	if (i->holder >= 0) {
		json_long("holder_pid", i->holder);
		json_bool("holder_died", i->holder_died);
	}
	json_bool("set", i->is_set);
	json_long("value", i->value);
	json_long("max", i->max);
	json_long("parties", i->parties);
	json_long("n_waiting", i->n_waiting);
	json_bool("broken", i->broken);
	if (i->n_consumers >= 0) {
		printf(", \"consumers\": [");
		for (int k = 0; k < i->n_consumers; k++)
			printf("%s{\"pid\": %d, \"alive\": %s, \"tasks\": %ld}",
			       k ? ", " : "", (int)i->consumers[k].pid,
			       i->consumers[k].alive ? "true" : "false",
			       i->consumers[k].tasks);
		printf("]");
	}
	printf("}");
}

static void table_header(void)
{
	printf("%-32s %-10s %10s %5s %-8s %-14s %8s %5s  %s\n", "NAME", "KIND",
	       "SIZE", "MODE", "OWNER", "CREATOR", "AGE", "USERS", "STATE");
}

static void table_row(const struct entry *e)
{
	const ipc_object_info *i = &e->info;
	char who[64], creator[32], state[64], users[16];

	if (e->rc == 0)
		snprintf(creator, sizeof(creator), "%d%s", (int)i->creator_pid,
			 pid_alive(i->creator_pid) ? "" : " (gone)");
	else
		snprintf(creator, sizeof(creator), "-");
	if (i->users >= 0)
		snprintf(users, sizeof(users), "%d", i->users);
	else
		snprintf(users, sizeof(users), "?");
	state_of(e, state, sizeof(state));
	printf("%-32s %-10s %10llu %04o %-8s %-14s %7.0fs %5s  %s\n", e->name,
	       kind_of(e), i->size, i->mode, owner(i->uid, who, sizeof(who)),
	       creator, e->rc == 0 ? age_s(i) : 0.0, users, state);
}

static int cmd_ls(const struct opts *o)
{
	struct entry *es;
	size_t n;

	if (scan(o, &es, &n) != 0) {
		fprintf(stderr, "ipcctl: cannot read " SHM_DIR ": %s\n",
			strerror(errno));
		return 1;
	}
	if (o->json) {
		printf("[");
		for (size_t k = 0; k < n; k++) {
			printf(k ? ",\n " : "\n ");
			json_entry(&es[k]);
		}
		printf("\n]\n");
	} else {
		table_header();
		for (size_t k = 0; k < n; k++)
			table_row(&es[k]);
	}
	free(es);
	return 0;
}

static int cmd_show(const struct opts *o, int argc, char **argv)
{
	int status = 0;

	if (argc == 0)
		return usage(stderr);
	if (o->json)
		printf("[");
	for (int k = 0; k < argc; k++) {
		struct entry e;
		char state[64], who[64];

		snprintf(e.name, sizeof(e.name), "%s", argv[k]);
		e.rc = ipc_stat(e.name, &e.info);
		if (e.rc == IPC_ENOENT || e.rc == IPC_EINVAL ||
		    e.rc == IPC_EACCES) {
			fprintf(stderr, "ipcctl: %s: %s\n", argv[k],
				ipc_strerror(e.rc));
			status = 1;
			continue;
		}
		if (o->json) {
			printf(k ? ",\n " : "\n ");
			json_entry(&e);
			continue;
		}
		state_of(&e, state, sizeof(state));
		printf("name:     %s\nkind:     %s\nsize:     %llu bytes\n"
		       "mode:     %04o\nowner:    %s\nusers:    %d live "
		       "process(es)\n",
		       e.name, kind_of(&e), e.info.size, e.info.mode,
		       owner(e.info.uid, who, sizeof(who)), e.info.users);
		if (e.rc == 0)
			printf("creator:  %d (%s)\nage:      %.1f s\n",
			       (int)e.info.creator_pid,
			       pid_alive(e.info.creator_pid) ? "alive" : "gone",
			       age_s(&e.info));
		if (e.info.users > 0) {
			printf("opened by:");
			for (int u = 0;
			     u < e.info.users && u < IPC_STAT_MAX_PIDS; u++)
				printf(" %d", (int)e.info.user_pids[u]);
			printf("%s\n",
			       e.info.users > IPC_STAT_MAX_PIDS ? " ..." : "");
		}
		printf("state:    %s\n", state);
		if (e.info.kind == IPC_KIND_MQUEUE)
			printf("mq:       /libipc.%s, messages of at most %ld "
			       "bytes\n",
			       e.name, e.info.max_msg_size);
		for (int c = 0; c < e.info.n_consumers; c++) {
			const ipc_consumer_info *ci = &e.info.consumers[c];
			printf("consumer: pid %d, %s, ", (int)ci->pid,
			       ci->alive ? "alive" : "dead");
			if (ci->tasks >= 0)
				printf("%ld unfinished task(s)\n", ci->tasks);
			else
				printf("unfinished tasks unknown\n");
		}
		printf("\n");
	}
	if (o->json)
		printf("\n]\n");
	return status;
}

static int cmd_rm(int argc, char **argv)
{
	int status = 0;

	if (argc == 0)
		return usage(stderr);
	for (int k = 0; k < argc; k++) {
		int rc = ipc_unlink(argv[k]);
		if (rc != 0) {
			fprintf(stderr, "ipcctl: %s: %s\n", argv[k],
				ipc_strerror(rc));
			status = 1;
		}
	}
	return status;
}

/* Remove every object no live process has open. Foreign files and
 * objects of another ABI version are never touched. */
static int cmd_gc(const struct opts *o)
{
	struct entry *es;
	size_t n;
	int status = 0;

	if (scan(o, &es, &n) != 0)
		return 1;
	if (o->json)
		printf("[");
	for (size_t k = 0, shown = 0; k < n; k++) {
		const struct entry *e = &es[k];
		const char *what;
		int rc = 0;

		if (e->info.users != 0)
			continue; /* in use, or not ours */
		if (o->dry_run)
			what = "would remove";
		else if ((rc = ipc_unlink_unused(e->name)) == 0)
			what = "removed";
		else if (rc == IPC_EBUSY || rc == IPC_ENOENT)
			what = "kept (opened meanwhile)";
		else
			what = "kept";
		if (rc != 0 && rc != IPC_EBUSY && rc != IPC_ENOENT &&
		    rc != IPC_EPROTO)
			status = 1;
		if (o->json) {
			printf(shown++ ? ",\n " : "\n ");
			printf("{\"name\": ");
			json_str(e->name);
			printf(", \"kind\": ");
			json_str(kind_of(e));
			printf(", \"action\": ");
			json_str(what);
			printf("}");
		} else {
			printf("%s %s (%s)%s%s\n", what, e->name, kind_of(e),
			       rc ? ": " : "", rc ? ipc_strerror(rc) : "");
		}
	}
	if (o->json)
		printf("\n]\n");
	free(es);
	return status;
}

/* Like top: the table every interval, with the mq backend's rate of
 * change of depth. */
static int cmd_watch(const struct opts *o)
{
	struct entry *prev = NULL;
	size_t nprev = 0;

	for (long round = 0; o->count == 0 || round < o->count; round++) {
		struct entry *es;
		size_t n;
		struct timespec ts = { o->interval_ms / 1000,
				       (o->interval_ms % 1000) * 1000000 };

		if (scan(o, &es, &n) != 0)
			return 1;
		if (isatty(STDOUT_FILENO))
			printf("\033[H\033[2J");
		printf("ipcctl watch: %zu object(s), every %ld ms\n", n,
		       o->interval_ms);
		table_header();
		for (size_t k = 0; k < n; k++) {
			table_row(&es[k]);
			for (size_t j = 0; j < nprev; j++)
				if (strcmp(prev[j].name, es[k].name) == 0 &&
				    es[k].info.depth >= 0 &&
				    prev[j].info.depth >= 0)
					printf("%32s depth %+.1f/s\n", "",
					       (es[k].info.depth -
						prev[j].info.depth) *
						       1000.0 / o->interval_ms);
		}
		fflush(stdout);
		free(prev);
		prev = es;
		nprev = n;
		if (o->count == 0 || round + 1 < o->count)
			nanosleep(&ts, NULL);
	}
	free(prev);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .interval_ms = 1000 };
	const char *cmd;
	int c;

	while ((c = getopt_long(argc, argv, "jnp:i:c:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'n':
			o.dry_run = true;
			break;
		case 'p':
			o.prefix = optarg;
			break;
		case 'i':
			o.interval_ms = strtol(optarg, NULL, 10);
			if (o.interval_ms < 10)
				return usage(stderr);
			break;
		case 'c':
			o.count = strtol(optarg, NULL, 10);
			if (o.count < 0)
				return usage(stderr);
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	if (optind >= argc)
		return usage(stderr);
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;
	if (strcmp(cmd, "ls") == 0 && argc == 0)
		return cmd_ls(&o);
	if (strcmp(cmd, "show") == 0)
		return cmd_show(&o, argc, argv);
	if (strcmp(cmd, "rm") == 0)
		return cmd_rm(argc, argv);
	if (strcmp(cmd, "gc") == 0 && argc == 0)
		return cmd_gc(&o);
	if (strcmp(cmd, "watch") == 0 && argc == 0)
		return cmd_watch(&o);
	return usage(stderr);
}
