/* SPDX-License-Identifier: MIT */
/*
 * seg.c — shared-memory segments: anonymous and named, with a header that
 * makes every segment a small self-describing file format.
 *
 * Named segments are files in /dev/shm (the same files shm_open makes),
 * "libipc.<name>". The hard part is creation: an opener must never see a
 * segment whose creator is still initialising it, nor wait for ever on a
 * creator that died half-way. libipc sidesteps both by publishing only
 * finished segments: the creator makes an unnamed file (O_TMPFILE), sizes,
 * maps and initialises it, and only then gives it its name with linkat(),
 * which fails with EEXIST if the name is taken. A creator killed before the
 * link leaves nothing behind; two racing creators both build a segment and
 * exactly one link succeeds, the loser opens the winner's.
 *
 * An opener checks, before trusting a single field: the file is at least a
 * header long, the magic, the ABI version, the kind, the "ready" mark, that
 * the recorded size fits the file and is at least the kind's minimum, and
 * then the kind's own check. Any mismatch is -EPROTO. Before even that, the
 * file must belong to the caller's effective user or to root, unless the
 * caller passed IPC_ANY_OWNER: another user who made the name first (mode
 * 0666) would otherwise hand the program an object they control and could
 * truncate it under the program later (a SIGBUS; docs/design.md, "Trust
 * model").
 *
 * A tmpfs file is sparse: ftruncate promises nothing, and the first write
 * to a page the filesystem cannot supply raises SIGBUS. The creator
 * therefore reserves every page with posix_fallocate before the file is
 * mapped, so a full or small /dev/shm is an -ENOMEM from the open call,
 * never a signal later.
 *
 * Every errno is translated by ipc__sys_error at the call that met it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libipc/core/core.h"

#define SHM_DIR "/dev/shm"
#define NAME_PREFIX "libipc."
#define NAME_MAX_LEN 200

int ipc__name_path(const char *name, char *path, size_t cap)
{
	size_t len;

	if (name == NULL)
		return -EINVAL;
	if (name[0] == '/')
		name++;
	len = strlen(name);
	if (len == 0 || len > NAME_MAX_LEN)
		return -EINVAL;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			  c == '-';
		if (!ok)
			return -EINVAL;
	}
	if ((size_t)snprintf(path, cap, SHM_DIR "/" NAME_PREFIX "%s", name) >=
	    cap)
		return -EINVAL;
	return 0;
}

static void hdr_fill(struct ipc__seg_hdr *h, enum ipc__kind kind, size_t size)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	h->h_magic = IPC__MAGIC;
	h->h_abi = IPC__ABI_VERSION;
	h->h_kind = (uint16_t)kind;
	h->h_size = size;
	h->h_creator_pid = (int32_t)getpid();
	h->h_created_ns =
		(uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Write the header and let the kind initialise the rest; mark it ready
 * last. The mark matters for anonymous segments only in spirit: nobody can
 * see one before this returns. */
static int seg_init(void *base, const struct ipc__seg_type *type, size_t size,
		    const void *arg)
{
	struct ipc__seg_hdr *h = base;
	int rc;

	hdr_fill(h, type->kind, size);
	rc = type->init(base, size, arg);
	if (rc != 0)
		return rc;
	atomic_thread_fence(memory_order_release);
	h->h_init = IPC__INIT_READY;
	return 0;
}

int ipc__seg_new(struct ipc__seg *seg, const struct ipc__seg_type *type,
		 size_t size, const void *arg)
{
	void *base;
	int rc;

	if (size < type->min_size)
		return -EINVAL;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return ipc__sys_error(errno);
	rc = seg_init(base, type, size, arg);
	if (rc != 0) {
		munmap(base, size);
		return rc;
	}
	seg->base = base;
	seg->size = size;
	seg->fd = -1;
	return 0;
}

void ipc__seg_close(struct ipc__seg *seg)
{
	if (seg->base != NULL)
		munmap(seg->base, seg->size);
	if (seg->base != NULL && seg->fd >= 0)
		close(seg->fd);
	seg->base = NULL;
	seg->size = 0;
}

static int seg_validate(const void *base, size_t file_size,
			const struct ipc__seg_type *type, const void *arg)
{
	const struct ipc__seg_hdr *h = base;

	if (h->h_magic != IPC__MAGIC || h->h_abi != IPC__ABI_VERSION ||
	    h->h_kind != (uint16_t)type->kind || h->h_init != IPC__INIT_READY)
		return -EPROTO;
	if (h->h_size > file_size || h->h_size < type->min_size)
		return -EPROTO;
	return type->check != NULL ? type->check(base, h->h_size, arg) : 0;
}

/* Whose objects an opener accepts without IPC_ANY_OWNER: its own, and
 * root's (root can do anything to it anyway). */
static bool owner_trusted(uid_t owner, int flags)
{
	return (flags & IPC_ANY_OWNER) || owner == geteuid() || owner == 0;
}

static int seg_open_existing(struct ipc__seg *seg,
			     const struct ipc__seg_type *type, const char *path,
			     int flags, const void *arg)
{
	struct stat st;
	void *base;
	int fd, rc;

	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ipc__sys_error(errno); /* ELOOP (a symlink): -EPROTO */
	if (fstat(fd, &st) != 0) {
		rc = ipc__sys_error(errno);
		goto fail_fd;
	}
	if (!owner_trusted(st.st_uid, flags)) {
		rc = -EACCES;
		goto fail_fd;
	}
	if (!S_ISREG(st.st_mode) ||
	    (size_t)st.st_size < sizeof(struct ipc__seg_hdr)) {
		rc = -EPROTO;
		goto fail_fd;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = ipc__sys_error(errno);
		goto fail_fd;
	}
	rc = seg_validate(base, (size_t)st.st_size, type, arg);
	if (rc == 0)
		rc = ipc__users_join(fd, path);
	if (rc != 0) {
		munmap(base, (size_t)st.st_size);
		goto fail_fd;
	}
	seg->base = base;
	seg->size = (size_t)st.st_size;
	seg->fd = fd;
	return 0;

fail_fd:
	close(fd);
	return rc;
}

/* An unnamed file in /dev/shm. Falls back to a randomly named file that is
 * unlinked again by the caller where O_TMPFILE is not supported. */
static int tmpfile_create(char *tmp_path, size_t cap, unsigned mode)
{
	int fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);

	tmp_path[0] = '\0';
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd >= 0 ? fd : ipc__sys_error(errno);
	for (int tries = 0; tries < 100; tries++) {
		snprintf(tmp_path, cap, SHM_DIR "/" NAME_PREFIX ".tmp.%d.%ld",
			 (int)getpid(), random());
		fd = open(tmp_path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC,
			  mode);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd : ipc__sys_error(errno);
	}
	return -EEXIST;
}

static int fd_link(int fd, const char *tmp_path, const char *path)
{
	char proc[64];

	if (tmp_path[0] != '\0')
		return link(tmp_path, path) == 0 ? 0 : ipc__sys_error(errno);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno != ENOENT)
		return ipc__sys_error(errno);
	/* No /proc: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, try it. */
	return linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0
		       ? 0
		       : ipc__sys_error(errno);
}

/* Give the file every page now (see the top of this file): -ENOMEM when
 * the filesystem is full or too small. */
static int reserve_pages(int fd, size_t size)
{
	int rc;

	do
		rc = posix_fallocate(fd, 0, (off_t)size);
	while (rc == EINTR);
	return rc == 0 ? 0 : ipc__sys_error(rc);
}

/* Build a finished segment and link it to path. -EEXIST if the name was
 * taken first. */
static int seg_create(struct ipc__seg *seg, const struct ipc__seg_type *type,
		      const char *path, unsigned mode, size_t size,
		      const void *arg)
{
	char tmp_path[IPC__PATH_MAX + 64];
	void *base = MAP_FAILED;
	int fd, rc;

	fd = tmpfile_create(tmp_path, sizeof(tmp_path), mode);
	if (fd < 0)
		return fd;
	if (fchmod(fd, mode) != 0 || ftruncate(fd, (off_t)size) != 0) {
		rc = ipc__sys_error(errno);
		goto out;
	}
	rc = reserve_pages(fd, size);
	if (rc != 0)
		goto out;
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = ipc__sys_error(errno);
		goto out;
	}
	rc = seg_init(base, type, size, arg);
	IPC__CRASHPOINT("seg.create.before_link");
	if (rc == 0)
		rc = ipc__users_join(fd, NULL);
	if (rc == 0)
		rc = fd_link(fd, tmp_path, path);
out:
	if (tmp_path[0] != '\0')
		unlink(tmp_path);
	if (rc != 0) {
		close(fd);
		if (base != MAP_FAILED)
			munmap(base, size);
		return rc;
	}
	seg->base = base;
	seg->size = size;
	seg->fd = fd;
	return 0;
}

int ipc__seg_open(struct ipc__seg *seg, const struct ipc__seg_type *type,
		  const char *name, int flags, size_t size, const void *arg)
{
	char path[IPC__PATH_MAX];
	unsigned mode = (unsigned)flags & IPC_MODE_MASK;
	int rc;

	if ((flags &
	     ~(IPC_CREATE | IPC_EXCL | IPC_ANY_OWNER | IPC_MODE_MASK)) != 0 ||
	    ((flags & IPC_EXCL) && !(flags & IPC_CREATE)))
		return -EINVAL;
	rc = ipc__name_path(name, path, sizeof(path));
	if (rc != 0)
		return rc;
	if (!(flags & IPC_CREATE))
		return seg_open_existing(seg, type, path, flags, arg);
	if (size < type->min_size)
		return -EINVAL;
	if (mode == 0)
		mode = 0600;
	/* Open-or-create: the name may appear or vanish between our tries,
	 * so alternate until one of them settles it. */
	for (int tries = 0; tries < 100; tries++) {
		if (!(flags & IPC_EXCL)) {
			rc = seg_open_existing(seg, type, path, flags, arg);
			if (rc != -ENOENT)
				return rc;
		}
		rc = seg_create(seg, type, path, mode, size, arg);
		if (rc != -EEXIST || (flags & IPC_EXCL))
			return rc;
	}
	return -EAGAIN;
}

int ipc_unlink(const char *name)
{
	char path[IPC__PATH_MAX];
	int rc = ipc__name_path(name, path, sizeof(path));

	if (rc != 0)
		return rc;
	rc = unlink(path) == 0 ? 0 : ipc__sys_error(errno);
	/* The POSIX message queue of an mqueue-backend queue goes too. */
	return ipc__mq_unlink(name) == 0 ? 0 : rc;
}

int ipc__handle_new(void **out, size_t handle_size,
		    const struct ipc__seg_type *type, const char *name,
		    int flags, size_t seg_size, const void *arg)
{
	struct ipc__seg *seg;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	seg = calloc(1, handle_size);
	if (seg == NULL)
		return -ENOMEM;
	if (name == NULL)
		rc = ipc__seg_new(seg, type, seg_size, arg);
	else
		rc = ipc__seg_open(seg, type, name, flags, seg_size, arg);
	if (rc != 0) {
		free(seg);
		return rc;
	}
	*out = seg;
	return 0;
}

void ipc__handle_free(void *handle)
{
	if (handle == NULL)
		return;
	ipc__seg_close(handle);
	free(handle);
}
