/* SPDX-License-Identifier: MIT */
/*
 * pipe_pingpong.c — a Pipe between a parent and its child (Python's
 * `parent_conn, child_conn = Pipe()`).
 *
 * The parent sends "ping 1" .. "ping 5"; the child answers each with
 * "pong N". Then the parent closes its end, and the child's next receive
 * returns IPC_ECLOSED: end of file, as a closed Python Connection raises
 * EOFError. Each process closes the end it does not use, as with a kernel
 * pipe, so that end of file can be seen.
 */
#include "example.h"

#define ROUNDS 5

static ipc_conn *parent_end, *child_end;

static int child(void *arg)
{
	char buf[64];
	ssize_t n;

	(void)arg;
	ex_log("my parent is %d", (int)ipc_parent_pid());
	ipc_conn_close(parent_end); /* not ours */
	while ((n = ipc_conn_recv(child_end, buf, sizeof(buf) - 1,
				  IPC_FOREVER)) >= 0) {
		int round;
		buf[n] = '\0';
		ex_log("got '%s'", buf);
		if (sscanf(buf, "ping %d", &round) != 1)
			return 1;
		n = snprintf(buf, sizeof(buf), "pong %d", round);
		ex_check(ipc_conn_send(child_end, buf, (size_t)n, IPC_FOREVER),
			 "ipc_conn_send");
	}
	ex_log("end of file: %s", ipc_err_name((int)n));
	ipc_conn_close(child_end);
	return n == IPC_ECLOSED ? 0 : 1;
}

int main(void)
{
	ipc_process *kid;
	char buf[64];

	ex_log("parent pid %d (the main program has none)",
	       (int)ipc_parent_pid());
	ex_check(ipc_pipe_new(&parent_end, &child_end, true, NULL),
		 "ipc_pipe_new");
	kid = ex_spawn("child", child, NULL);
	ipc_conn_close(child_end); /* the child's end */
	for (int i = 1; i <= ROUNDS; i++) {
		int len = snprintf(buf, sizeof(buf), "ping %d", i);
		ssize_t n;
		ex_check(ipc_conn_send(parent_end, buf, (size_t)len,
				       IPC_FOREVER),
			 "ipc_conn_send");
		n = ipc_conn_recv(parent_end, buf, sizeof(buf) - 1,
				  IPC_FOREVER);
		ex_check((int)n, "ipc_conn_recv");
		buf[n] = '\0';
		ex_log("got '%s'", buf);
	}
	ex_log("closing my end");
	ipc_conn_close(parent_end);
	return ex_join(kid);
}
