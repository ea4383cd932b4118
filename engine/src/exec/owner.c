/* owner: fcntl record locks on per-run files. */
#include "exec/owner.h"
#include "base/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The home's permissions: owners/ and its lock files follow them, whatever
 * the umask, so a home shared by a group (2770) is usable by each member
 * (a lock is taken on a descriptor open for writing). */
static mode_t home_mode(const char *home)
{
	struct stat sb;
	return stat(home, &sb) == 0 ? sb.st_mode & 07777 : 0700;
}

/* run < 0 names the scheduler's lock. */
static char *lock_path(const char *home, int64_t run)
{
	char *dir = rbk_xasprintf("%s/owners", home);
	/* Its mode set on every use, as the lock files' (open_lock): a process
	 * killed between mkdir and chmod left it 0700. */
	struct stat sb;
	mode_t want = home_mode(home) | 0700;
	if ((mkdir(dir, 0700) == 0 || (stat(dir, &sb) == 0 && (sb.st_mode & 07777) != want)) && chmod(dir, want) < 0) {
		/* not its owner: it keeps its mode */
	}
	rbk_free(dir);
	if (run < 0)
		return rbk_xasprintf("%s/owners/scheduler.lock", home);
	return rbk_xasprintf("%s/owners/%lld.lock", home, (long long)run);
}

static int open_lock(const char *home, int64_t run, rbk_err *err)
{
	char *path = lock_path(home, run);
	mode_t want = (home_mode(home) & 0666) | 0600;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_RDWR | O_CLOEXEC);
	/* Its mode follows the home's (the umask would narrow it). Set again
	 * on every open: a process killed between creating the file and
	 * setting its mode left it 0600, which its owner's next process mends
	 * for the others of the group. */
	struct stat sb;
	if (fd >= 0 && fstat(fd, &sb) == 0 && (sb.st_mode & 07777) != want && fchmod(fd, want) < 0) {
		/* not the file's owner: it keeps its mode */
	}
	if (fd < 0)
		rbk_err_set(err, -1, "cannot open %s: %s", path, strerror(errno));
	rbk_free(path);
	return fd;
}

int rbk_owner_take(const char *home, int64_t run, int *fd, int64_t *pid, rbk_err *err)
{
	*fd = -1;
	*pid = 0;
	int f = open_lock(home, run, err);
	if (f < 0)
		return -1;
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(f, F_SETLK, &fl) == 0) {
		*fd = f;
		return 0;
	}
	int e = errno;
	if (e == EACCES || e == EAGAIN) {
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		if (fcntl(f, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
			*pid = q.l_pid;
		close(f);
		return 1;
	}
	close(f);
	rbk_err_set(err, -1, "cannot lock run %lld: %s", (long long)run, strerror(e));
	return -1;
}

int rbk_owner_take_scheduler(const char *home, int *fd, int64_t *pid, rbk_err *err)
{
	return rbk_owner_take(home, -1, fd, pid, err);
}

void rbk_owner_release(int fd)
{
	if (fd >= 0)
		close(fd); /* closing releases the record lock */
}

int rbk_owner_probe(const char *home, int64_t run, int64_t *pid, rbk_err *err)
{
	*pid = 0;
	int f = open_lock(home, run, err);
	if (f < 0)
		return -1;
	struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int rc = fcntl(f, F_GETLK, &q);
	close(f);
	if (rc < 0) {
		rbk_err_set(err, -1, "cannot probe run %lld: %s", (long long)run, strerror(errno));
		return -1;
	}
	if (q.l_type == F_UNLCK)
		return 0;
	*pid = q.l_pid;
	return 1;
}
