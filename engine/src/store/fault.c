/* store_fault: the store's fault-injection hook, a SQLite VFS shim (part of
 * the store module: the only other file that includes sqlite3.h).
 *
 * RBK_FAULT_IO selects a fault in the store's file I/O, counted over the
 * write-side operations (write, truncate, sync) of the whole process:
 *   N            the Nth operation fails once with an I/O error
 *   N:full       from the Nth operation on, every write fails: disk full
 *   N:powerloss  writes are held in memory until their file is synced; the
 *                Nth sync kills the process first, so exactly the unsynced
 *                writes are lost, as in a power cut
 * Unset, the shim is not installed and costs nothing. */
#include "store/fault.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

enum { FAULT_NONE, FAULT_IOERR, FAULT_FULL, FAULT_POWERLOSS };

static int mode;
static long target, ops, syncs;
static sqlite3_vfs *real_vfs;

typedef struct span {
	sqlite3_int64 off;
	int len;
	unsigned char *data;
	struct span *next;
} span;

typedef struct {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
	span *pending;      /* powerloss: writes not yet synced, oldest first */
	span *last;
} fault_file;

#define REAL(f) (((fault_file *)(f))->real)

/* Count a write-side operation; the error to return, or SQLITE_OK. */
static int tick(int is_write)
{
	ops++;
	if (mode == FAULT_IOERR && ops == target)
		return SQLITE_IOERR_WRITE;
	if (mode == FAULT_FULL && ops >= target && is_write)
		return SQLITE_FULL;
	return SQLITE_OK;
}

static void drop_pending(fault_file *f)
{
	for (span *s = f->pending, *n; s; s = n) {
		n = s->next;
		sqlite3_free(s->data);
		sqlite3_free(s);
	}
	f->pending = f->last = NULL;
}

static int x_close(sqlite3_file *pf)
{
	fault_file *f = (fault_file *)pf;
	/* Closing without a sync: what was never synced is lost anyway. */
	drop_pending(f);
	return REAL(pf)->pMethods ? REAL(pf)->pMethods->xClose(REAL(pf)) : SQLITE_OK;
}

static int x_read(sqlite3_file *pf, void *buf, int amt, sqlite3_int64 off)
{
	fault_file *f = (fault_file *)pf;
	int rc = REAL(pf)->pMethods->xRead(REAL(pf), buf, amt, off);
	if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
		return rc;
	bool covered_short = false;
	/* Unsynced writes are what this process reads back, as from the page cache. */
	for (span *s = f->pending; s; s = s->next) {
		sqlite3_int64 lo = s->off > off ? s->off : off, hi = s->off + s->len < off + amt ? s->off + s->len : off + amt;
		if (lo < hi) {
			memcpy((unsigned char *)buf + (lo - off), s->data + (lo - s->off), (size_t)(hi - lo));
			if (hi == off + amt)
				covered_short = true;
		}
	}
	return rc == SQLITE_IOERR_SHORT_READ && !covered_short ? rc : SQLITE_OK;
}

static int x_write(sqlite3_file *pf, const void *buf, int amt, sqlite3_int64 off)
{
	int rc = tick(1);
	if (rc != SQLITE_OK)
		return rc;
	fault_file *f = (fault_file *)pf;
	if (mode != FAULT_POWERLOSS)
		return REAL(pf)->pMethods->xWrite(REAL(pf), buf, amt, off);
	span *s = sqlite3_malloc(sizeof *s);
	unsigned char *d = sqlite3_malloc(amt);
	if (!s || !d) {
		sqlite3_free(s);
		sqlite3_free(d);
		return SQLITE_IOERR_NOMEM;
	}
	memcpy(d, buf, (size_t)amt);
	*s = (span){off, amt, d, NULL};
	if (f->last)
		f->last->next = s;
	else
		f->pending = s;
	f->last = s;
	return SQLITE_OK;
}

static int x_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
	int rc = tick(0);
	if (rc != SQLITE_OK)
		return rc;
	return REAL(pf)->pMethods->xTruncate(REAL(pf), size);
}

static int x_sync(sqlite3_file *pf, int flags)
{
	int rc = tick(0);
	if (rc != SQLITE_OK)
		return rc;
	fault_file *f = (fault_file *)pf;
	if (mode == FAULT_POWERLOSS) {
		if (++syncs == target)
			raise(SIGKILL); /* the power goes: pending writes never reach the disk */
		for (span *s = f->pending; s; s = s->next)
			if ((rc = REAL(pf)->pMethods->xWrite(REAL(pf), s->data, s->len, s->off)) != SQLITE_OK)
				break;
		drop_pending(f);
		if (rc != SQLITE_OK)
			return rc;
	}
	return REAL(pf)->pMethods->xSync(REAL(pf), flags);
}

static int x_size(sqlite3_file *pf, sqlite3_int64 *size)
{
	fault_file *f = (fault_file *)pf;
	int rc = REAL(pf)->pMethods->xFileSize(REAL(pf), size);
	for (span *s = f->pending; rc == SQLITE_OK && s; s = s->next)
		if (s->off + s->len > *size)
			*size = s->off + s->len;
	return rc;
}

/* The rest passes through. */
static int x_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int x_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int x_reserved(sqlite3_file *f, int *o) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), o); }
static int x_fcntl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int x_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int x_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int x_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p);
}
static int x_shmlock(sqlite3_file *f, int off, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl); }
static void x_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int x_shmunmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }

static const sqlite3_io_methods methods = {
	2, x_close, x_read, x_write, x_truncate, x_sync, x_size, x_lock, x_unlock, x_reserved, x_fcntl, x_sector, x_dev,
	x_shmmap, x_shmlock, x_shmbarrier, x_shmunmap, NULL, NULL};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf, int flags, int *out_flags)
{
	(void)vfs;
	fault_file *f = (fault_file *)pf;
	memset(f, 0, sizeof *f);
	f->real = (sqlite3_file *)(f + 1);
	int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	pf->pMethods = rc == SQLITE_OK ? &methods : NULL;
	return rc;
}

static int v_delete(sqlite3_vfs *v, const char *n, int sync) { (void)v; return real_vfs->xDelete(real_vfs, n, sync); }
static int v_access(sqlite3_vfs *v, const char *n, int fl, int *o) { (void)v; return real_vfs->xAccess(real_vfs, n, fl, o); }
static int v_full(sqlite3_vfs *v, const char *n, int sz, char *o) { (void)v; return real_vfs->xFullPathname(real_vfs, n, sz, o); }
static int v_random(sqlite3_vfs *v, int n, char *o) { (void)v; return real_vfs->xRandomness(real_vfs, n, o); }
static int v_sleep(sqlite3_vfs *v, int us) { (void)v; return real_vfs->xSleep(real_vfs, us); }
static int v_time(sqlite3_vfs *v, double *o) { (void)v; return real_vfs->xCurrentTime(real_vfs, o); }
static int v_err(sqlite3_vfs *v, int n, char *o) { (void)v; return real_vfs->xGetLastError(real_vfs, n, o); }

static sqlite3_vfs shim = {.iVersion = 1,
			   .mxPathname = 1024,
			   .zName = "rbk-fault",
			   .xOpen = v_open,
			   .xDelete = v_delete,
			   .xAccess = v_access,
			   .xFullPathname = v_full,
			   .xRandomness = v_random,
			   .xSleep = v_sleep,
			   .xCurrentTime = v_time,
			   .xGetLastError = v_err};

void rbk_store_fault_install(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	const char *spec = getenv("RBK_FAULT_IO");
	if (!spec || !*spec)
		return;
	char *end;
	target = strtol(spec, &end, 10);
	if (target <= 0)
		return;
	mode = !*end ? FAULT_IOERR : !strcmp(end, ":full") ? FAULT_FULL : !strcmp(end, ":powerloss") ? FAULT_POWERLOSS : FAULT_NONE;
	if (mode == FAULT_NONE || !(real_vfs = sqlite3_vfs_find(NULL)))
		return;
	shim.szOsFile = (int)sizeof(fault_file) + real_vfs->szOsFile;
	shim.mxPathname = real_vfs->mxPathname;
	sqlite3_vfs_register(&shim, 1);
}
