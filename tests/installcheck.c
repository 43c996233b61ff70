/* SPDX-License-Identifier: MIT */
/*
 * installcheck.c — built by `make installcheck` against the *installed*
 * header and library, found through pkg-config: proves that
 * `cc prog.c $(pkg-config --cflags --libs libipc)` works for a user.
 */
#include <libipc/ipc.h>
#include <stdio.h>

int main(void)
{
	ipc_sem *s;
	int rc = ipc_sem_new(&s, 1, 1);

	if (rc != 0) {
		fprintf(stderr, "ipc_sem_new: %s\n", ipc_strerror(rc));
		return 1;
	}
	rc = ipc_sem_acquire(s, IPC_NOWAIT);
	rc |= ipc_sem_release(s);
	rc |= ipc_sem_release(s) == IPC_EINVAL ? 0 : 1;
	ipc_sem_close(s);
	printf("installed libipc works: %s\n", rc == 0 ? "yes" : "no");
	return rc != 0;
}
