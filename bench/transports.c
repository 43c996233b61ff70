/* SPDX-License-Identifier: MIT */
/*
 * The transport table: every row ipc-bench can measure, in the order the
 * tables print them. Rows whose library was not found at configure time
 * are absent, and the report says so.
 */
#include "bench.h"

#include "config.h"

#include <stddef.h>
#include <string.h>

extern const struct transport tr_ring, tr_libipc, tr_libipc_batch, tr_libipc_zc,
	tr_libipc_jq, tr_libipc_mq, tr_ipc_pipe, tr_remote, tr_remote_batch,
	tr_mq, tr_pipe, tr_unix, tr_nn_ipc, tr_nn_tcp, tr_zmq_ipc, tr_boost;

const struct transport *const bench_transports[] = {
	&tr_ring,      &tr_libipc,   &tr_libipc_batch, &tr_libipc_zc,
	&tr_libipc_mq, &tr_ipc_pipe, &tr_remote,       &tr_remote_batch,
	&tr_mq,	       &tr_pipe,     &tr_unix,	       &tr_nn_ipc,
	&tr_nn_tcp,
#ifdef HAVE_ZMQ
	&tr_zmq_ipc,
#endif
#ifdef HAVE_BOOST
	&tr_boost,
#endif
	&tr_libipc_jq, NULL,
};

const struct transport *bench_transport(const char *name)
{
	for (int i = 0; bench_transports[i] != NULL; i++)
		if (strcmp(bench_transports[i]->name, name) == 0)
			return bench_transports[i];
	return NULL;
}
