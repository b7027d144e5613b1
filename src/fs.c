/* fs.c: FUSE low-level callbacks for h5mount; the only place that speaks FUSE. It maps inode
 * numbers to (node, view), replies, and turns negative errno into fuse_reply_err once. */
#include "fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "h5mount/iobuf.h"
#include "h5mount/log.h"

/* Inode numbers: node index * H5M_NVIEWS + view + 1, so the root group (node 0) is FUSE_ROOT_ID. */
static fuse_ino_t ino_of(uint32_t node, enum h5m_view view)
{
	return (fuse_ino_t)node * H5M_NVIEWS + (fuse_ino_t)view + 1;
}

#define READ_AHEAD_KB 2048

/* Raises the mount's readahead to 2 MiB (as root; see the platform notes). Buffered reads then
 * arrive as 1 MiB requests (the most one request carries) instead of 128 KiB, often two at a
 * time, and an mmap fault reads 2 MiB around it, so that random rows of a compressed array
 * decode fewer chunks twice (measured on the benchmark's random rows: 1 MiB 1.8x PyTables,
 * 2 MiB 2.2x, 4 MiB 2.5x but over its memory bound, with four requests in flight). The
 * kernel sets it from the INIT reply, so this runs at the first request after INIT. */
static void tune_readahead(struct h5m_fs *fs)
{
	char path[128];
	FILE *f;

	if (__atomic_exchange_n(&fs->readahead_done, 1, __ATOMIC_SEQ_CST) || !fs->bdi[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", fs->bdi);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%d\n", READ_AHEAD_KB) < 0 || fclose(f) != 0) {
		h5m_log(H5M_LOG_DEBUG, "cannot raise the readahead in %s", path);
		return;
	}
	h5m_log(H5M_LOG_DEBUG, "readahead of the mount raised to %d KiB", READ_AHEAD_KB);
}

static unsigned char *known_slot(struct h5m_fs *fs, fuse_ino_t ino)
{
	return &fs->known[(ino * 0x9E3779B97F4A7C15ull >> 40) % H5M_FS_KNOWN_SLOTS];
}

#define KNOWN 1u /* the kernel has (or may have) an inode for ino: it answered a lookup of it */
#define PAGES 2u /* the kernel may hold pages of ino: a READ or a buffered WRITE of it came */

static void mark_known(struct h5m_fs *fs, fuse_ino_t ino)
{
	__atomic_fetch_or(known_slot(fs, ino), KNOWN, __ATOMIC_RELAXED);
}

static bool is_known(struct h5m_fs *fs, fuse_ino_t ino)
{
	return (__atomic_load_n(known_slot(fs, ino), __ATOMIC_RELAXED) & KNOWN) != 0;
}

/* Called before a READ or buffered WRITE of ino is served, and checked by notify() after a
 * change was made: a READ that marks too late for a change to see it also reads after it. */
static void mark_pages(struct h5m_fs *fs, fuse_ino_t ino)
{
	if (!(__atomic_load_n(known_slot(fs, ino), __ATOMIC_SEQ_CST) & PAGES))
		__atomic_fetch_or(known_slot(fs, ino), PAGES, __ATOMIC_SEQ_CST);
}

static bool may_have_pages(struct h5m_fs *fs, fuse_ino_t ino)
{
	return (__atomic_load_n(known_slot(fs, ino), __ATOMIC_SEQ_CST) & PAGES) != 0;
}

static struct h5m_fs *fs_of(fuse_req_t req)
{
	struct h5m_fs *fs = fuse_req_userdata(req);

	if (!__atomic_load_n(&fs->readahead_done, __ATOMIC_RELAXED))
		tune_readahead(fs);
	return fs;
}

/* Whether -o views= shows `view` of node n (only a dataset's views can be hidden). */
static bool view_shown(const struct h5m_fs *fs, const struct h5m_node *n, enum h5m_view view)
{
	return n->type != H5M_NODE_DATASET || (fs->views_shown & (1u << view));
}

/* Resolves ino to a node and view that exist and are shown. Returns 0 or -ENOENT. */
static int resolve(struct h5m_fs *fs, fuse_ino_t ino, struct h5m_node **n, enum h5m_view *view)
{
	uint64_t idx;

	if (ino < 1)
		return -ENOENT;
	idx = (ino - 1) / H5M_NVIEWS;
	*view = (enum h5m_view)((ino - 1) % H5M_NVIEWS);
	/* The inodes of a dataset given a new type stand for the dataset that replaced it. */
	*n = h5m_store_current(fs->store, h5m_store_node(fs->store, idx));
	if (!*n)
		return -ENOENT;
	return h5m_store_shows(*n, *view) && view_shown(fs, *n, *view) ? 0 : -ENOENT;
}

/* resolve() for a request through an open file (fi set): a removed name or a deleted dataset
 * keeps working for the files opened before (as on ext4). Returns 0 or -ENOENT. */
static int resolve_open(struct h5m_fs *fs, fuse_ino_t ino, struct h5m_node **n, enum h5m_view *view)
{
	uint64_t idx;

	if (ino < 1)
		return -ENOENT;
	idx = (ino - 1) / H5M_NVIEWS;
	*view = (enum h5m_view)((ino - 1) % H5M_NVIEWS);
	*n = h5m_store_current(fs->store, h5m_store_node(fs->store, idx));
	return *n && h5m_store_has_view(*n, *view) ? 0 : -ENOENT;
}

/* Permission bits: the HDF5 file's read and write bits (mode & 0666) for every view, without
 * the write bits for views that take no writes and on a read-only mount; directories add an x
 * bit wherever they have an r bit; symlinks 0777. The kernel checks them (default_permissions). */
static mode_t view_mode(const struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view)
{
	mode_t m = __atomic_load_n(&fs->mode, __ATOMIC_RELAXED) & 0666;

	switch (n->type) {
	case H5M_NODE_GROUP:
		if (!fs->writable)
			m &= 0444;
		return S_IFDIR | m | ((m & 0444) >> 2);
	case H5M_NODE_SOFTLINK:
		return S_IFLNK | 0777;
	case H5M_NODE_DATASET:
		if (!fs->writable || !h5m_view_writable(fs->views, n, view))
			m &= 0444;
		return S_IFREG | m;
	}
	return 0;
}

/* The times every name shows: the HDF5 file's mtime at mount, or those set through the mount
 * since (set_times). Returns whether they were set, and when (*set_at). */
static bool shown_times(struct h5m_fs *fs, struct stat *st, struct timespec *set_at)
{
	bool set;

	pthread_mutex_lock(&fs->times_lock);
	set = fs->times_set;
	if (set) {
		st->st_atim = fs->atime;
		st->st_mtim = st->st_ctim = fs->mtime_set;
		*set_at = fs->set_at;
	}
	pthread_mutex_unlock(&fs->times_lock);
	if (!set)
		st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = fs->mtime;
	return set;
}

static int fill_stat(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view, struct stat *st)
{
	struct timespec set_at = { 0, 0 }, changed;
	uint64_t size = 0;
	bool set;
	int rc;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino_of(n->idx, view);
	st->st_uid = __atomic_load_n(&fs->uid, __ATOMIC_RELAXED);
	st->st_gid = __atomic_load_n(&fs->gid, __ATOMIC_RELAXED);
	set = shown_times(fs, st, &set_at);
	st->st_blksize = 1 << 17;
	switch (n->type) {
	case H5M_NODE_GROUP:
		st->st_mode = view_mode(fs, n, view);
		st->st_nlink = 2;
		return 0;
	case H5M_NODE_SOFTLINK:
		st->st_mode = view_mode(fs, n, view);
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(n->target);
		return 0;
	case H5M_NODE_DATASET:
		rc = h5m_view_size(fs->views, n, view, &size);
		if (rc)
			return rc;
		st->st_mode = view_mode(fs, n, view);
		st->st_nlink = h5m_store_nlink(n);
		st->st_size = (off_t)size;
		/* A dataset changed through the mount shows when, unless times were set after that. */
		if (h5m_view_mtime(fs->views, n, &changed) &&
		    (!set || changed.tv_sec > set_at.tv_sec ||
		     (changed.tv_sec == set_at.tv_sec && changed.tv_nsec > set_at.tv_nsec)))
			st->st_mtim = st->st_ctim = changed;
		/* du counts each dataset once: its file storage on x, nothing on its derived views */
		st->st_blocks = (blkcnt_t)((h5m_view_disk_bytes(fs->views, n, view, size) + 511) / 512);
		return 0;
	}
	return -EIO;
}

/* Replies with a core result: 0 for success, -errno for failure (anything else is EIO). */
static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc == 0 ? 0 : rc < 0 ? -rc : EIO);
}

/* ---- kernel cache invalidation ---- */

struct inval {
	fuse_ino_t ino; /* the inode, or (with name) the directory */
	off_t off;      /* -1: attributes only */
	off_t len;      /* 0: to the end */
	char *name;     /* a directory entry to drop (fuse_lowlevel_notify_inval_entry), or NULL */
	struct inval *next;
};

/* The size the kernel was given for a raw or .npy inode by storing its bytes (store_change),
 * so that no reply says more (the kernel could drop that reply and keep less) nor less (the
 * kernel would take it and shrink). Slots are claimed once (CAS on ino, 0: free) and never
 * freed; `size` is UNTRACKED when the kernel's size is not known (replies say the views'
 * size). `size` is set under the dataset stripe's size lock, together with the store that
 * makes it true, except that it may drop to UNTRACKED at any time (atomic). */
struct ksize {
	fuse_ino_t ino;
	uint64_t size;
};

#define KSIZE_SLOTS 65536u
#define KSIZE_PROBES 64u
#define UNTRACKED UINT64_MAX

struct h5m_notifier {
	pthread_mutex_t lock;   /* protects the queue and stop */
	pthread_cond_t cond;
	struct inval *head, *tail;
	bool stop;
	pthread_t thread;
	/* Per dataset stripe (n->idx % H5M_FS_STRIPES): held across a store of changed bytes and
	 * the update of its ksize, and across the computation, catch-up store and sending of a
	 * reply that carries the size of a raw or .npy view, so that a reply never passes a store.
	 * Lock order: a size lock, then page locks in the kernel (a store waits for READs in
	 * flight, which never take a size lock); the whole daemon's order is in lock.h. */
	pthread_mutex_t size_lock[H5M_FS_STRIPES];
	struct ksize ksizes[KSIZE_SLOTS];
};

static void *notifier_main(void *arg)
{
	struct h5m_fs *fs = arg;
	struct h5m_notifier *q = fs->notifier;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct inval *i;

		while (!q->head && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!q->head)
			break;
		i = q->head;
		q->head = i->next;
		if (!q->head)
			q->tail = NULL;
		pthread_mutex_unlock(&q->lock);
		if (i->name)
			fuse_lowlevel_notify_inval_entry(fs->se, i->ino, i->name, strlen(i->name));
		else
			fuse_lowlevel_notify_inval_inode(fs->se, i->ino, i->off, i->len);
		free(i->name);
		free(i);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int h5m_fs_notifier_start(struct h5m_fs *fs)
{
	struct h5m_notifier *q = calloc(1, sizeof(*q));
	int rc;

	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	for (size_t i = 0; i < H5M_FS_STRIPES; i++)
		pthread_mutex_init(&q->size_lock[i], NULL);
	for (size_t i = 0; i < KSIZE_SLOTS; i++)
		q->ksizes[i].size = UNTRACKED;
	fs->notifier = q;
	rc = pthread_create(&q->thread, NULL, notifier_main, fs);
	if (rc) {
		for (size_t i = 0; i < H5M_FS_STRIPES; i++)
			pthread_mutex_destroy(&q->size_lock[i]);
		pthread_cond_destroy(&q->cond);
		pthread_mutex_destroy(&q->lock);
		free(q);
		fs->notifier = NULL;
		return -rc;
	}
	return 0;
}

void h5m_fs_notifier_stop(struct h5m_fs *fs)
{
	struct h5m_notifier *q = fs->notifier;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	while (q->head) {
		struct inval *i = q->head;

		q->head = i->next;
		free(i->name);
		free(i);
	}
	for (size_t i = 0; i < H5M_FS_STRIPES; i++)
		pthread_mutex_destroy(&q->size_lock[i]);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
	fs->notifier = NULL;
}

/* Returns the ksize slot of ino, claiming a free one when `claim`; NULL when it has none (or
 * the table is full: the inode is then never tracked). Lock-free. */
static struct ksize *ksize_slot(struct h5m_fs *fs, fuse_ino_t ino, bool claim)
{
	struct h5m_notifier *q = fs->notifier;
	size_t h = (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 40);

	if (!q)
		return NULL;
	for (unsigned p = 0; p < KSIZE_PROBES; p++) {
		struct ksize *k = &q->ksizes[(h + p) % KSIZE_SLOTS];
		fuse_ino_t cur = __atomic_load_n(&k->ino, __ATOMIC_ACQUIRE);

		if (cur == 0 && claim &&
		    __atomic_compare_exchange_n(&k->ino, &cur, ino, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return k;
		if (cur == ino)
			return k;
		if (cur == 0)
			return NULL;
	}
	return NULL;
}

/* Forgets the size the kernel was given for ino: replies say the views' size again. */
static void ksize_forget(struct h5m_fs *fs, fuse_ino_t ino)
{
	struct ksize *k = ksize_slot(fs, ino, false);

	if (k)
		__atomic_store_n(&k->size, UNTRACKED, __ATOMIC_RELEASE);
}

/* Whether replies about (n, view) carry a size that stores track now: only then do they take
 * the size lock (an untracked view's replies go out as before stores existed; one that becomes
 * tracked meanwhile, at its first store, can still be told the old race). */
static bool sized_view(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view)
{
	struct ksize *k;

	if (!fs->notifier || n->type != H5M_NODE_DATASET || (view != H5M_VIEW_OBJ && view != H5M_VIEW_NPY))
		return false;
	k = ksize_slot(fs, ino_of(n->idx, view), false);
	return k && __atomic_load_n(&k->size, __ATOMIC_ACQUIRE) != UNTRACKED;
}

#define SIZE_LOCK_WAIT_NS 50000000L

/* Takes the size lock of n's stripe. Returns it, or NULL when it stayed busy for 50 ms (logged):
 * its holder's store can wait for a READ that no free thread is left to serve, or for the
 * pages a buffered WRITE holds while its request waits here. A reply then goes out without
 * ksize_catch_up (the old race), a write invalidates instead of storing. */
static pthread_mutex_t *size_lock(struct h5m_fs *fs, struct h5m_node *n)
{
	pthread_mutex_t *lk = &fs->notifier->size_lock[n->idx % H5M_FS_STRIPES];
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += SIZE_LOCK_WAIT_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_mutex_timedlock(lk, &until) != 0) {
		h5m_log(H5M_LOG_DEBUG, "size lock of node %llu busy for 50 ms: going on without it",
		        (unsigned long long)n->idx);
		return NULL;
	}
	return lk;
}

/* Invalidates [off, off+len) of ino (len 0: to the end; off -1: attributes only), inline when
 * that cannot deadlock, else through the notifier thread. */
static void inval(struct h5m_fs *fs, fuse_ino_t ino, off_t off, off_t len, bool inline_ok)
{
	struct h5m_notifier *q = fs->notifier;
	struct inval *i;

	if (inline_ok || !q) {
		fuse_lowlevel_notify_inval_inode(fs->se, ino, off, len);
		return;
	}
	i = calloc(1, sizeof(*i));
	if (!i) {
		fuse_lowlevel_notify_inval_inode(fs->se, ino, off, -1);
		return;
	}
	*i = (struct inval){ .ino = ino, .off = off, .len = len };
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = i;
	else
		q->head = i;
	q->tail = i;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

/* Queues the invalidation of directory entry `base``suffix` of directory inode `parent` for
 * the notifier thread: a request that changes names holds the kernel's lock of the directory
 * until it is answered, and fuse_lowlevel_notify_inval_entry takes it (inline would deadlock).
 * Without a notifier (tests), nothing: the entry timeout ends it. */
static void inval_entry_later(struct h5m_fs *fs, fuse_ino_t parent, const char *base, size_t len, const char *suffix)
{
	struct h5m_notifier *q = fs->notifier;
	struct inval *i;

	if (!q || !(i = calloc(1, sizeof(*i))))
		return;
	i->ino = parent;
	i->name = malloc(len + strlen(suffix) + 1);
	if (!i->name) {
		free(i);
		return;
	}
	memcpy(i->name, base, len);
	strcpy(i->name + len, suffix);
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = i;
	else
		q->head = i;
	q->tail = i;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static off_t clamp_len(uint64_t len)
{
	return len > (uint64_t)INT64_MAX / 2 ? 0 : (off_t)len;
}

#define STORE_CHUNK ((size_t)1 << 17)

/* Copies bytes [off, off + len) of view `view` of n, as the views read them now, into the
 * kernel's page cache of ino (FUSE_NOTIFY_STORE), in chunks. The kernel first raises the
 * inode's size to off + len when that is larger (never lowers it), then overwrites or creates
 * the pages in place: a page a reader has mapped shows the new bytes without being dropped.
 * It waits for the page locks, so call it only where no request of this daemon that holds
 * them can be waiting for the caller. Returns 0 or -errno (-ENOENT: the kernel has no inode,
 * nothing to grow). */
static int store_range(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view, fuse_ino_t ino,
                       uint64_t off, uint64_t len)
{
	size_t cap = len < STORE_CHUNK ? (size_t)len : STORE_CHUNK;
	struct h5m_iobuf b;
	char *buf;
	int rc = 0;

	if (h5m_iobuf_get(&b, cap))
		return -ENOMEM;
	buf = b.data;
	while (len) {
		size_t want = len < cap ? (size_t)len : cap;
		ssize_t got = h5m_view_read(fs->views, n, view, buf, want, off);
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);

		if (got <= 0) {
			rc = got < 0 ? (int)got : -ERANGE; /* 0: the view ends before off */
			goto out;
		}
		bv.buf[0].size = (size_t)got;
		bv.buf[0].mem = buf;
		rc = fuse_lowlevel_notify_store(fs->se, ino, (off_t)off, &bv, 0);
		if (rc)
			goto out;
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
out:
	h5m_iobuf_put(&b);
	return rc;
}

/* Stores the last byte of view v of n (`size` > 0 bytes), which makes the kernel's size of ino
 * reach `size`. The kernel marks a page it creates for a store up to date (readable without a
 * READ) only when the store begins at the page's start; only then does ino now hold a page
 * that later changes must drop. Returns as store_range. */
static int store_last_byte(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view v, fuse_ino_t ino, uint64_t size)
{
	int rc = store_range(fs, n, v, ino, size - 1, 1);

	if (!rc && (size - 1) % (uint64_t)sysconf(_SC_PAGESIZE) == 0)
		mark_pages(fs, ino);
	return rc;
}

/* Under the size lock, before a reply that says view v of n (inode ino) has `size` bytes:
 * when the kernel was given less by the last store (a write is between changing the view and
 * storing its bytes), stores the bytes from there on first, so that the kernel's size is never
 * below a size a reply carried (store_change says why). */
static void ksize_catch_up(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view v, fuse_ino_t ino, uint64_t size)
{
	struct ksize *k = ksize_slot(fs, ino, false);
	uint64_t have = k ? __atomic_load_n(&k->size, __ATOMIC_ACQUIRE) : UNTRACKED;
	int rc;

	if (have == UNTRACKED || have >= size)
		return;
	if (may_have_pages(fs, ino))
		rc = store_range(fs, n, v, ino, have, size - have);
	else
		rc = store_last_byte(fs, n, v, ino, size);
	__atomic_store_n(&k->size, rc ? UNTRACKED : size, __ATOMIC_RELEASE);
	if (rc && rc != -ENOENT)
		h5m_log(H5M_LOG_DEBUG, "storing the end of inode %llu failed (%s)", (unsigned long long)ino, strerror(-rc));
}

/* Tells the kernel that a change of n made view v (inode ino) grow or change in place, by
 * storing the changed bytes into its page cache (store_range) instead of invalidating them:
 * the last page of the old end, which the kernel holds with zeros past the old end, gets the
 * appended bytes in place, and the kernel's size grows to the view's size before any reply can
 * carry it. Why: every FUSE_NOTIFY_INVAL_INODE (and every size change) bumps the inode's
 * attribute version, and the kernel then drops a GETATTR reply that was in flight
 * (fuse_change_attributes_i) while still handing its size to the stat(2) caller
 * (fuse_do_getattr fills the stat from the reply), so the caller is told a size the inode does
 * not have, and a mapping of it faults past i_size (SIGBUS in filemap_fault). Under the
 * stripe's size lock, with ksize set to the size stored, a reply that would carry more first
 * stores the rest (ksize_catch_up), so none carries more than the kernel has nor less (which it
 * would take, shrinking the file). A view whose pages the kernel never held only gets its last
 * byte stored. Call only where a store may wait for page locks (no other write of n in
 * flight). Returns 0 or -errno (the caller then invalidates as before, ksize forgotten). */
static int store_change(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view v, fuse_ino_t ino,
                        const struct h5m_change *c)
{
	pthread_mutex_t *lk = size_lock(fs, n);
	uint64_t base = v == H5M_VIEW_NPY ? n->ds->npy_header_len : 0;
	uint64_t off = base + c->data_off, end = off + c->data_len, size = 0, have;
	bool pages = may_have_pages(fs, ino);
	struct ksize *k;
	int rc;

	if (!lk)
		return -EAGAIN;
	k = ksize_slot(fs, ino, true);
	rc = k ? h5m_view_size(fs->views, n, v, &size) : -ENOSPC;
	if (!rc && size == 0)
		rc = -ERANGE;
	if (rc)
		goto out;
	have = __atomic_load_n(&k->size, __ATOMIC_ACQUIRE); /* the kernel's size, if known */
	/* Its size not known, the kernel may hold the page of its end with zeros past it
	 * anywhere before the changed bytes: drop every page once, then track it. */
	if (have == UNTRACKED && pages) {
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
		pages = false;
	}
	end = end < size ? end : size;
	off = off < end ? off : end;
	/* The changed bytes, in place (the kernel has no other copy of them to keep). */
	if (pages && end > off) {
		rc = store_range(fs, n, v, ino, off, end - off);
		if (!rc && (have == UNTRACKED || have < end))
			have = end;
	}
	/* Then up to the view's size: the bytes the kernel has not got (only the last one if it
	 * holds no pages). */
	if (!rc && (have == UNTRACKED || have < size)) {
		if (pages && have != UNTRACKED)
			rc = store_range(fs, n, v, ino, have, size - have);
		else
			rc = store_last_byte(fs, n, v, ino, size);
	}
	/* The new .npy header last, once the size it describes is the kernel's. */
	if (!rc && pages && v == H5M_VIEW_NPY && c->size)
		rc = store_range(fs, n, v, ino, 0, base);
out:
	if (k)
		__atomic_store_n(&k->size, rc ? UNTRACKED : size, __ATOMIC_RELEASE);
	pthread_mutex_unlock(lk);
	if (rc == -ENOENT) /* the kernel forgot the inode: nothing cached, nothing to grow */
		return 0;
	if (rc)
		h5m_log(H5M_LOG_DEBUG, "storing changed bytes of inode %llu failed (%s): invalidating instead",
		        (unsigned long long)ino, strerror(-rc));
	return rc;
}

/* Tells the kernel what a change through view `from` of n made stale in its caches. Data of the
 * other views is invalidated inline only when no other write of this dataset is in flight: the
 * kernel holds page locks of a file while its write request is being served, so two writers
 * invalidating each other's file inline would deadlock. A buffered write (`kernel_copy`; never
 * set for bytes the daemon made itself, such as a row completed at RELEASE) has
 * put the written bytes into the written file's own pages already: they are only stale when
 * the write landed elsewhere (O_APPEND, a different .npy header), and are then invalidated from
 * the notifier thread. A direct write may leave those pages as they were (the last page of
 * the old end, say: Linux 6.18 drops them itself, older kernels may not), so they are
 * invalidated like another view's. Attributes are always invalidated inline (no page locks);
 * the written file's size the kernel updates itself.
 * Where the change wrote a bounded range of data bytes (appends, overwrites; not a truncate,
 * a reshape or a moved buffered write) and may touch pages inline, the raw and .npy views get
 * the new bytes stored instead (store_change), and the other views' attributes are invalidated
 * only after that, so that the kernel's size is never below one a reader was given. After a
 * buffered write that holds for the other view too (x.npy when x was written): invalidating
 * it would let a stat() of it be told a size the kernel then drops, and a reader that maps it
 * gets SIGBUS. Only the written file itself is not stored into then: the kernel holds the lock
 * of its last written page until the request is answered, so a store would wait forever. */
static void notify(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view from, const struct h5m_change *c,
                   bool inline_ok, bool kernel_copy)
{
	uint64_t hl = n->ds->npy_header_len;

	h5m_view_touch(fs->views, n);
	for (enum h5m_view v = H5M_VIEW_OBJ; v <= H5M_VIEW_SHAPE; v++) {
		fuse_ino_t ino = ino_of(n->idx, v);
		bool own = v == from, own_pages = own && kernel_copy;

		/* An inode the kernel never looked up has nothing cached. */
		if (!is_known(fs, ino))
			continue;
		/* The written file itself too: the kernel grows its size only when the WRITE's caller
		 * runs again, and a stat() meanwhile could be told the new size and then see the old
		 * one (its attributes it invalidates itself). */
		if ((v == H5M_VIEW_OBJ || v == H5M_VIEW_NPY) && fs->notifier) {
			if (inline_ok && !own_pages && !c->all && !(own && c->moved) && clamp_len(c->data_len) &&
			    store_change(fs, n, v, ino, c) == 0) {
				if (!own)
					fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
				continue;
			}
			ksize_forget(fs, ino);
		}
		/* The written file's own size the kernel updates itself, unless the write landed
		 * elsewhere or changed more than the bytes written. */
		if (!own || c->moved || c->all || c->data_len == 0 || !c->size)
			fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
		/* No page of it was ever read or written through the page cache: none to drop. */
		if (!may_have_pages(fs, ino))
			continue;
		if (c->all) {
			inval(fs, ino, 0, 0, inline_ok && !own);
			continue;
		}
		switch (v) {
		case H5M_VIEW_OBJ:
			if (c->data_len && (!own_pages || c->moved))
				inval(fs, ino, (off_t)c->data_off, clamp_len(c->data_len), inline_ok && !own_pages);
			break;
		case H5M_VIEW_NPY:
			if (c->size)
				inval(fs, ino, 0, (off_t)hl, inline_ok && !own_pages);
			if (c->data_len && (!own_pages || c->moved))
				inval(fs, ino, (off_t)(hl + c->data_off), clamp_len(c->data_len), inline_ok && !own_pages);
			if (own && c->moved && !c->data_len)
				inval(fs, ino, 0, 0, false);
			break;
		default:
			if (c->size && !own)
				inval(fs, ino, 0, 0, inline_ok);
			break;
		}
	}
}

static int *writers_of(struct h5m_fs *fs, struct h5m_node *n)
{
	return &fs->writers[n->idx % H5M_FS_STRIPES];
}

/* Marks a write request of n in flight (writer_alone then says whether it is the only one). */
static void writer_enter(struct h5m_fs *fs, struct h5m_node *n)
{
	__atomic_add_fetch(writers_of(fs, n), 1, __ATOMIC_SEQ_CST);
}

/* Whether the caller's write request is the only one of n in flight (stripes are shared, so
 * another dataset's write can make it say no, never yes wrongly). Never with -s: no other
 * thread could answer the READs an inline invalidation may wait for. */
static bool writer_alone(struct h5m_fs *fs, struct h5m_node *n)
{
	return !fs->single_thread && __atomic_load_n(writers_of(fs, n), __ATOMIC_SEQ_CST) == 1;
}

static void writer_leave(struct h5m_fs *fs, struct h5m_node *n)
{
	__atomic_sub_fetch(writers_of(fs, n), 1, __ATOMIC_SEQ_CST);
}

/* Fills st for a reply about (n, view). For a view that stores track, takes its size lock
 * first and, under it, makes the kernel's size reach st's (ksize_catch_up), so that the reply
 * never passes a store of changed bytes (store_change). *lk: the lock to release once the
 * reply is sent, or NULL. Returns 0 or -errno (fill_stat's). */
static int fill_stat_for_reply(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view, struct stat *st,
                               pthread_mutex_t **lk)
{
	int rc;

	*lk = sized_view(fs, n, view) ? size_lock(fs, n) : NULL;
	rc = fill_stat(fs, n, view, st);
	if (!rc && *lk)
		ksize_catch_up(fs, n, view, (fuse_ino_t)st->st_ino, (uint64_t)st->st_size);
	return rc;
}

/* Replies with the attributes of (n, view), or with rc when it is an error. */
static void reply_attr(fuse_req_t req, struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view, int rc)
{
	pthread_mutex_t *lk = NULL;
	struct stat st;

	if (!rc)
		rc = fill_stat_for_reply(fs, n, view, &st, &lk);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, fs->timeout);
	if (lk)
		pthread_mutex_unlock(lk);
}

static void h5m_fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct h5m_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct h5m_node *dir, *n;
	pthread_mutex_t *lk = NULL;
	enum h5m_view view, nview;
	uint32_t node;
	int rc;

	rc = resolve(fs, parent, &dir, &view);
	if (rc)
		goto fail;
	rc = h5m_store_find(fs->store, dir, name, &node, &nview);
	if (rc)
		goto fail;
	n = h5m_store_node(fs->store, node);
	if (!view_shown(fs, n, nview)) {
		rc = -ENOENT;
		goto fail;
	}
	memset(&e, 0, sizeof(e));
	rc = fill_stat_for_reply(fs, n, nview, &e.attr, &lk);
	if (rc)
		goto fail;
	e.ino = e.attr.st_ino;
	e.attr_timeout = fs->timeout;
	e.entry_timeout = fs->timeout;
	mark_known(fs, e.ino);
	fuse_reply_entry(req, &e);
	goto out;
fail:
	reply_err(req, rc);
out:
	if (lk)
		pthread_mutex_unlock(lk);
}

static void h5m_fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n = NULL;
	enum h5m_view view = H5M_VIEW_OBJ;
	int rc;

	/* By inode: the kernel asks only for inodes it holds, which live on after their names are
	 * removed (fstat of an open file; st_nlink says 0 once the dataset is deleted). */
	(void)fi;
	rc = resolve_open(fs, ino, &n, &view);
	reply_attr(req, fs, n, view, rc);
}

static void h5m_fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve(fs, ino, &n, &view);

	if (rc)
		reply_err(req, rc);
	else if (n->type != H5M_NODE_SOFTLINK)
		fuse_reply_err(req, EINVAL);
	else
		fuse_reply_readlink(req, n->target);
}

static void h5m_fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve(fs, ino, &n, &view);

	if (!rc)
		rc = h5m_store_list_each(fs->store, n, 0, NULL, NULL);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	/* The kernel drops its cached listing at each change of names it makes itself (its
	 * version of the directory changes), and those are the only changes while mounted. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* What h5m_fs_readdir gathers under the store's namespace lock. */
struct readdir_ctx {
	fuse_req_t req;
	const struct h5m_fs *fs;
	char *buf;
	size_t size, used;
};

/* Adds entry `pos` (directory offset 2 + pos; each entry carries the next offset). Returns
 * non-zero once the buffer is full. Runs under the namespace lock: only formats. */
static int readdir_add(void *arg, size_t pos, const char *name, const struct h5m_node *c, enum h5m_view view)
{
	struct readdir_ctx *x = arg;
	struct stat st = { 0 };
	size_t need;

	if (!view_shown(x->fs, c, view))
		return 0; /* -o views= leaves it out */
	st.st_ino = ino_of(c->idx, view);
	st.st_mode = c->type == H5M_NODE_GROUP ? S_IFDIR : c->type == H5M_NODE_SOFTLINK ? S_IFLNK : S_IFREG;
	need = fuse_add_direntry(x->req, x->buf + x->used, x->size - x->used, name, &st, (off_t)pos + 3);
	if (need > x->size - x->used)
		return 1;
	x->used += need;
	return 0;
}

static void h5m_fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct readdir_ctx x = { .req = req, .fs = fs, .size = size };
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve(fs, ino, &n, &view);

	(void)fi;
	if (rc || off < 0) {
		reply_err(req, rc ? rc : -EINVAL);
		return;
	}
	x.buf = malloc(size);
	if (!x.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2 + i the i-th entry. */
	for (off_t i = off; i < 2; i++) {
		struct stat st = { .st_ino = ino, .st_mode = S_IFDIR };
		size_t need = fuse_add_direntry(req, x.buf + x.used, size - x.used, i ? ".." : ".", &st, i + 1);

		if (need > size - x.used)
			break;
		x.used += need;
	}
	rc = h5m_store_list_each(fs->store, n, off > 2 ? (size_t)off - 2 : 0, readdir_add, &x);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, x.buf, x.used);
	free(x.buf);
}

/* An open file: the view handle (first, so fi->fh points at both) on the list of open files. */
struct h5m_fs_file {
	struct h5m_view_handle h;
	bool direct;                       /* writes bypass the kernel's page cache (direct_io) */
	fuse_ino_t parent;                 /* made by CREATE: the directory and the name, to take */
	char *name;                        /* back a dataset a refused header left empty (malloc) */
	struct h5m_fs_file *prev, *next;   /* fs->handles_lock */
};

static void file_link(struct h5m_fs *fs, struct h5m_fs_file *f)
{
	pthread_mutex_lock(&fs->handles_lock);
	f->prev = NULL;
	f->next = fs->handles;
	if (fs->handles)
		fs->handles->prev = f;
	fs->handles = f;
	pthread_mutex_unlock(&fs->handles_lock);
}

static void file_unlink(struct h5m_fs *fs, struct h5m_fs_file *f)
{
	pthread_mutex_lock(&fs->handles_lock);
	if (f->prev)
		f->prev->next = f->next;
	else if (fs->handles == f)
		fs->handles = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	pthread_mutex_unlock(&fs->handles_lock);
}

/* Makes the open file of view `view` of node n for OPEN or CREATE (`trunc`: O_TRUNC applies
 * now) into *out and sets fi. Returns 0 or -errno (nothing made). */
static int open_file(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view, struct fuse_file_info *fi,
                     bool trunc, struct h5m_fs_file **out)
{
	struct h5m_view_handle *h;
	struct h5m_fs_file *file;
	bool write = (fi->flags & O_ACCMODE) != O_RDONLY;
	int rc;

	if (n->type == H5M_NODE_GROUP)
		return -EISDIR;
	if (write && !fs->writable)
		return -EROFS;
	if (write && (rc = h5m_view_check_writable(fs->views, n, view)) < 0)
		return rc;
	file = calloc(1, sizeof(*file));
	if (!file)
		return -ENOMEM;
	h = &file->h;
	h->view = view;
	h->write = write;
	h->append = (fi->flags & O_APPEND) != 0;
	if (write && trunc) {
		struct h5m_change chg;

		writer_enter(fs, n);
		rc = h5m_view_open_truncate(fs->views, n, h, &chg);
		if (!rc && chg.size)
			notify(fs, n, view, &chg, writer_alone(fs, n), true);
		writer_leave(fs, n);
		if (rc) {
			free(file);
			return rc;
		}
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	/* Keep the kernel's page cache across opens: every change made through the mount is
	 * invalidated explicitly (see notify()). */
	fi->keep_cache = 1;
	/* A write-only data file cannot be mapped or read, so the page cache does nothing for it,
	 * and a buffered write costs a request per page boundary it crosses plus a GETXATTR of
	 * security.capability: write it directly, one request per write(2). */
	file->direct = (fi->flags & O_ACCMODE) == O_WRONLY && (view == H5M_VIEW_OBJ || view == H5M_VIEW_NPY);
	fi->direct_io = file->direct;
	*out = file;
	return 0;
}

static void file_free(struct h5m_fs_file *file)
{
	h5m_view_handle_destroy(&file->h);
	free(file->name);
	free(file);
}

static void h5m_fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_fs_file *file = NULL;
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve(fs, ino, &n, &view);

	if (!rc)
		rc = open_file(fs, n, view, fi, (fi->flags & O_TRUNC) != 0, &file);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	file_link(fs, file);
	if (fuse_reply_open(req, fi) != 0) {
		/* The opener is gone (interrupted): no release will come for this handle. */
		file_unlink(fs, file);
		file_free(file);
	}
}

static struct h5m_view_handle *handle_of(struct fuse_file_info *fi)
{
	return (struct h5m_view_handle *)(uintptr_t)fi->fh;
}

/* A file CREATE made whose .npy header was refused (Fortran order, an object dtype...) leaves
 * nothing behind: its dataset, still untyped and empty, is removed at release. */
static void discard_refused(struct h5m_fs *fs, struct h5m_fs_file *file, fuse_ino_t ino)
{
	struct h5m_unlinked u;
	struct h5m_node *n, *dir;
	enum h5m_view view;
	uint64_t size = 1;

	if (!file->name || !file->h.refused || resolve(fs, ino, &n, &view) || !n->untyped ||
	    h5m_view_size(fs->views, n, H5M_VIEW_OBJ, &size) || size != 0 || resolve(fs, file->parent, &dir, &view))
		return;
	if (h5m_store_unlink(fs->store, dir, file->name, &u) == 0) {
		h5m_log(H5M_LOG_INFO, "%s: removed: the file created as '%s' got no valid .npy header", n->ds->path,
		        file->name);
		if (u.deleted)
			h5m_view_forget(fs->views, n);
		inval_entry_later(fs, file->parent, file->name, strlen(file->name), "");
	}
}

/* The last reference to an open file went (FLUSH came at each close(2) before): an incomplete
 * row its writer left is completed now, not at a FLUSH, which a forked child's exec or a
 * dup's close sends too while the writer goes on appending (the rest of the row would land a
 * row later). Nobody can be told of a failure: it is logged. */
static void h5m_fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_view_handle *h = handle_of(fi);
	struct h5m_change chg;
	struct h5m_node *n;
	enum h5m_view view;

	if (h) {
		struct h5m_fs_file *file = (struct h5m_fs_file *)h; /* h is the first member */

		if (h->wrote && resolve_open(fs, ino, &n, &view) == 0) {
			int rc;

			writer_enter(fs, n);
			rc = h5m_view_release(fs->views, n, h, &chg);
			/* The completed bytes are in no page of the kernel (not a buffered write's). */
			if (!rc && chg.size)
				notify(fs, n, view, &chg, writer_alone(fs, n), false);
			writer_leave(fs, n);
			if (rc)
				h5m_log(H5M_LOG_WARN, "%s: completing the incomplete row at close failed: %s", n->ds->path,
				        strerror(-rc));
		}
		discard_refused(fs, file, ino);
		file_unlink(fs, file);
		file_free(file);
	}
	fuse_reply_err(req, 0);
}

void h5m_fs_release_all(struct h5m_fs *fs)
{
	pthread_mutex_lock(&fs->handles_lock);
	while (fs->handles) {
		struct h5m_fs_file *f = fs->handles;

		fs->handles = f->next;
		file_free(f);
	}
	pthread_mutex_unlock(&fs->handles_lock);
}

static void h5m_fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	struct h5m_iobuf buf;
	ssize_t got;
	int rc = resolve_open(fs, ino, &n, &view);

	(void)fi;
	if (rc || off < 0) {
		reply_err(req, rc ? rc : -EINVAL);
		return;
	}
	if (n->type != H5M_NODE_DATASET) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* From the shared stash: a fresh buffer per request would cost a page fault per 4 KiB, and
	 * one kept per thread would hold up to a MiB for each thread that ever read. */
	if (h5m_iobuf_get(&buf, size)) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	mark_pages(fs, ino);
	got = h5m_view_read(fs->views, n, view, buf.data, size, (uint64_t)off);
	if (got < 0)
		reply_err(req, (int)got);
	else
		fuse_reply_buf(req, buf.data, (size_t)got);
	h5m_iobuf_put(&buf);
}

/* df of the mount: the file system that holds the HDF5 file, whose free space appends take. */
static void h5m_fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct h5m_fs *fs = fs_of(req);
	struct statvfs sv;

	(void)ino;
	if (fs->host_fd < 0) { /* a remote file: no host file system, nothing free */
		memset(&sv, 0, sizeof(sv));
		sv.f_bsize = sv.f_frsize = 4096;
		sv.f_namemax = 255;
		fuse_reply_statfs(req, &sv);
		return;
	}
	if (fstatvfs(fs->host_fd, &sv) < 0) {
		int rc = -errno;

		h5m_log(H5M_LOG_WARN, "statfs of the HDF5 file's file system failed: %s", strerror(-rc));
		reply_err(req, rc);
		return;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* xattrs: HDF5 attributes of groups and datasets as "user.<name>", the same on every view of a
 * dataset (names of one object, as hard links share theirs). */
static void h5m_fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	char *list = NULL;
	size_t len = 0;
	int rc = resolve(fs, ino, &n, &view);

	if (!rc)
		rc = h5m_store_xattr_list(fs->store, n, &list, &len);
	if (rc)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, list, len);
	free(list);
}

static void h5m_fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	char *val = NULL;
	size_t len = 0;
	int rc = resolve(fs, ino, &n, &view);

	(void)view;
	if (!rc && strncmp(name, "user.", 5) != 0)
		rc = -ENODATA;
	if (!rc)
		rc = h5m_store_xattr_get(fs->store, n, name + 5, &val, &len);
	if (rc)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
	free(val);
}

/* Only user.* names are HDF5 attributes: other namespaces (security.*, trusted.*; the kernel
 * answers system.posix_acl_* itself) are not supported. */
static int user_name(const char *op, const char *name)
{
	if (strncmp(name, "user.", 5) == 0)
		return 0;
	h5m_log(H5M_LOG_INFO, "%s '%s': not supported: only user.* names are HDF5 attributes", op, name);
	return -ENOTSUP;
}

/* After a change of the HDF5 file that no dataset's time shows (an attribute's): every name
 * shows the file's times again, which that change's commit moved. */
static void file_times_changed(struct h5m_fs *fs)
{
	struct timespec now;
	struct stat st;

	if (h5m_store_stat(fs->store, &st))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&fs->times_lock);
	fs->times_set = true;
	fs->atime = st.st_atim;
	fs->mtime_set = st.st_mtim;
	fs->set_at = now;
	pthread_mutex_unlock(&fs->times_lock);
}

static void h5m_fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                            int flags)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve(fs, ino, &n, &view);

	if (!rc)
		rc = user_name("setxattr", name);
	if (!rc && !fs->writable)
		rc = -EROFS;
	if (!rc)
		rc = h5m_store_xattr_set(fs->store, n, name + 5, value, size,
		                         ((flags & XATTR_CREATE) ? H5M_XATTR_CREATE : 0) |
		                         ((flags & XATTR_REPLACE) ? H5M_XATTR_REPLACE : 0));
	if (!rc)
		file_times_changed(fs);
	reply_err(req, rc);
}

static void h5m_fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve(fs, ino, &n, &view);

	if (!rc)
		rc = user_name("removexattr", name);
	if (!rc && !fs->writable)
		rc = -EROFS;
	if (!rc)
		rc = h5m_store_xattr_remove(fs->store, n, name + 5);
	if (!rc)
		file_times_changed(fs);
	reply_err(req, rc);
}

/* Copies the bytes of untyped dataset `from` into its successor `to` through the open file h
 * (the data written so far keeps its place: rule 4). Returns 0 or -errno. */
static int copy_untyped(struct h5m_fs *fs, struct h5m_node *from, struct h5m_node *to, struct h5m_view_handle *h)
{
	enum h5m_view view = h->view;
	bool append = h->append;
	struct h5m_change chg;
	uint64_t size = 0, off = 0;
	size_t cap = (size_t)1 << 20;
	char *buf = NULL;
	int rc = h5m_view_size(fs->views, from, H5M_VIEW_OBJ, &size);

	if (rc || !size)
		return rc;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	h->view = H5M_VIEW_OBJ;
	h->append = false;
	while (!rc && off < size) {
		ssize_t got = h5m_view_read(fs->views, from, H5M_VIEW_OBJ, buf, size - off < cap ? (size_t)(size - off) : cap,
		                            off);

		if (got <= 0) {
			rc = got < 0 ? (int)got : -EIO;
			break;
		}
		got = h5m_view_write(fs->views, to, h, buf, (size_t)got, off, &chg);
		if (got < 0)
			rc = (int)got;
		else
			off += (uint64_t)got;
	}
	h->view = view;
	h->append = append;
	free(buf);
	return rc;
}

/* After h5m_store_retype replaced *n (rt): copies the bytes written so far when `keep`,
 * drops the old dataset's blocks, has the kernel forget what it holds of the old node, and
 * sets *n to the new one. Frees rt->base. Returns 0 or the copy's -errno. */
static int retyped(struct h5m_fs *fs, struct h5m_node **n, struct h5m_retyped *rt, struct h5m_view_handle *h,
                   bool keep)
{
	struct h5m_node *old = *n, *nn = h5m_store_node(fs->store, rt->node);
	int rc = keep ? copy_untyped(fs, old, nn, h) : 0;

	h5m_view_forget(fs->views, old);
	h5m_store_drop_replaced(fs->store, old);
	/* Names now lead to the new node; pages the kernel holds of the old one are stale. */
	for (enum h5m_view v = H5M_VIEW_OBJ; v < H5M_NVIEWS; v++) {
		inval_entry_later(fs, ino_of(rt->dir, H5M_VIEW_OBJ), rt->base, strlen(rt->base), h5m_store_view_suffix(v));
		if (h5m_store_has_view(old, v) && is_known(fs, ino_of(old->idx, v)))
			inval(fs, ino_of(old->idx, v), 0, 0, false);
	}
	free(rt->base);
	rt->base = NULL;
	*n = nn;
	return rc;
}

/* Before a write of .npy header bytes through h: when they complete a header that asks for
 * another dataset (an untyped one, or O_TRUNC over one of another dtype or trailing shape:
 * ns-model rules 4 and 5), replaces *n by a new dataset of the header's type
 * (h5m_store_retype; the bytes of an untyped dataset written so far are kept) and sets *n to
 * it. Returns 0 or -errno (the header refused, logged). */
static int retype_for_header(struct h5m_fs *fs, struct h5m_node **n, struct h5m_view_handle *h, const char *buf,
                             size_t size, uint64_t off)
{
	struct h5m_npy_header *hdr = malloc(sizeof(*hdr));
	struct h5m_node *old = *n;
	struct h5m_retyped rt;
	bool keep;
	int rc = 0;

	if (!hdr)
		return -ENOMEM;
	if (!h5m_view_npy_wants_type(fs->views, old, h, buf, size, off, hdr))
		goto out;
	keep = old->untyped && !h->trunc_pending;
	rc = h5m_store_retype(fs->store, old, hdr->descr, hdr->rank - 1, hdr->shape + 1, false, &rt);
	if (!rc) {
		h->trunc_pending = false; /* the new dataset is empty */
		h->trunc_at_write = false;
		rc = retyped(fs, n, &rt, h, keep);
	} else if (rc == -ENOENT) {
		rc = 0; /* replaced by another file's header meanwhile: the views judge this one */
	}
out:
	free(hdr);
	return rc;
}

/* Before a write of .shape text through h: text of another rank or trailing dims for an
 * untyped dataset gives it a uint8 type of those trailing dims, keeping its bytes (rule 4),
 * and sets *n to the new dataset. Returns 0 or -errno. */
static int reshape_untyped(struct h5m_fs *fs, struct h5m_node **n, struct h5m_view_handle *h, const char *buf,
                           size_t size, uint64_t off)
{
	uint64_t dims[H5M_NPY_MAXDIMS];
	struct h5m_retyped rt;
	unsigned rank;
	int rc;

	if (!h5m_view_shape_wants_rank(fs->views, *n, h, buf, size, off, dims, &rank))
		return 0;
	rc = h5m_store_retype(fs->store, *n, "'|u1'", rank - 1, dims + 1, true, &rt);
	if (!rc)
		rc = retyped(fs, n, &rt, h, true);
	return rc == -ENOENT ? 0 : rc;
}

static void h5m_fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                         struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_view_handle *h = handle_of(fi);
	struct h5m_change chg;
	struct h5m_node *n;
	enum h5m_view view;
	ssize_t got;
	bool direct;
	int rc = resolve_open(fs, ino, &n, &view);

	if (!rc && (n->type != H5M_NODE_DATASET || !h || off < 0))
		rc = -EBADF;
	if (rc) {
		reply_err(req, rc);
		return;
	}
	direct = ((struct h5m_fs_file *)h)->direct;
	if (view == H5M_VIEW_NPY && (rc = retype_for_header(fs, &n, h, buf, size, (uint64_t)off)) < 0) {
		h->refused = true;
		reply_err(req, rc);
		return;
	}
	if (view == H5M_VIEW_SHAPE && (rc = reshape_untyped(fs, &n, h, buf, size, (uint64_t)off)) < 0) {
		reply_err(req, rc);
		return;
	}
	if (!direct)
		mark_pages(fs, ino);
	writer_enter(fs, n);
	got = h5m_view_write(fs->views, n, h, buf, size, (uint64_t)off, &chg);
	if (got == -EINVAL && view == H5M_VIEW_NPY)
		h->refused = true;
	if (got >= 0)
		notify(fs, n, view, &chg, writer_alone(fs, n), !direct);
	writer_leave(fs, n);
	if (got < 0)
		reply_err(req, (int)got);
	else
		fuse_reply_write(req, (size_t)got);
}

/* chmod and chown of any name: HDF5 keeps no owner or mode per object, and every name shows
 * the HDF5 file's, so they change the HDF5 file's (the kernel checked the caller may:
 * default_permissions). Bits a name cannot have are masked as always (view_mode). */
static int set_owner_mode(struct h5m_fs *fs, const struct stat *attr, int to_set)
{
	mode_t mode = (to_set & FUSE_SET_ATTR_MODE) ? attr->st_mode & 0777 : (mode_t)-1;
	uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
	gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
	int rc;

	if (!fs->writable)
		return -EROFS;
	rc = h5m_store_set_owner_mode(fs->store, mode, uid, gid);
	if (rc) {
		h5m_log(H5M_LOG_WARN, "chmod/chown of the HDF5 file failed: %s", strerror(-rc));
		return rc;
	}
	if (uid != (uid_t)-1)
		__atomic_store_n(&fs->uid, uid, __ATOMIC_RELAXED);
	if (gid != (gid_t)-1)
		__atomic_store_n(&fs->gid, gid, __ATOMIC_RELAXED);
	if (mode != (mode_t)-1)
		__atomic_store_n(&fs->mode, mode, __ATOMIC_RELAXED);
	return 0;
}

/* utimensat of any name: HDF5 keeps no settable time per object (object header times are the
 * library's own), so it sets the HDF5 file's times, which every name shows. What was written
 * so far is written back and committed first: that commit would otherwise move the time. */
static int set_times(struct h5m_fs *fs, const struct stat *attr, int to_set)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	int rc;

	if (!fs->writable)
		return -EROFS;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
	rc = h5m_views_flush(fs->views, false, false);
	if (!rc)
		rc = h5m_store_set_times(fs->store, ts);
	if (rc) {
		h5m_log(H5M_LOG_WARN, "setting the HDF5 file's times failed: %s", strerror(-rc));
		return rc;
	}
	file_times_changed(fs);
	return 0;
}

static void h5m_fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_change chg;
	struct h5m_node *n = NULL;
	enum h5m_view view = H5M_VIEW_OBJ;
	int rc = resolve_open(fs, ino, &n, &view); /* by inode, as getattr */

	(void)fi;
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (!fs->writable)
			rc = -EROFS;
		else if (n->type != H5M_NODE_DATASET)
			rc = n->type == H5M_NODE_GROUP ? -EISDIR : -EINVAL;
		else if (attr->st_size < 0)
			rc = -EINVAL;
		if (!rc) {
			writer_enter(fs, n);
			rc = h5m_view_truncate(fs->views, n, view, (uint64_t)attr->st_size, &chg);
			if (!rc)
				notify(fs, n, view, &chg, writer_alone(fs, n), true);
			writer_leave(fs, n);
		}
	}
	if (!rc && (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = set_owner_mode(fs, attr, to_set);
	/* A truncate's times are its own change (the views' mtime), not a utimensat. */
	if (!rc && !(to_set & FUSE_SET_ATTR_SIZE) &&
	    (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		rc = set_times(fs, attr, to_set);
	reply_attr(req, fs, n, view, rc);
}

static void h5m_fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_view_handle *h = handle_of(fi);
	struct h5m_change chg;
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve_open(fs, ino, &n, &view);

	if (!rc && h && n->type == H5M_NODE_DATASET) {
		writer_enter(fs, n);
		rc = h5m_view_close(fs->views, n, h, &chg);
		if (!rc && (chg.size || chg.data_len))
			notify(fs, n, view, &chg, writer_alone(fs, n), true);
		writer_leave(fs, n);
	}
	reply_err(req, rc);
}

static void h5m_fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_view_handle *h = handle_of(fi);
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve_open(fs, ino, &n, &view);

	(void)datasync;
	(void)h;
	(void)view;
	/* Incomplete rows are completed (every dataset's: the observer tells the kernel), and
	 * everything is written back and fsync'ed. */
	if (!rc && n->type == H5M_NODE_DATASET && fs->writable)
		rc = h5m_views_flush(fs->views, true, true);
	reply_err(req, rc);
}

void h5m_fs_flushed(void *ctx, struct h5m_node *n, const struct h5m_change *c)
{
	/* Not a write through one of n's files: none of them is the "own" view (the notifier thread
	 * drops pages: a flush may run under a request that holds page locks). */
	notify(ctx, n, H5M_VIEW_OFFSETS, c, false, false);
}

static void h5m_fs_eperm_entry(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)rdev;
	fuse_reply_err(req, EPERM);
}

/* Replies to a MKDIR or SYMLINK with the new node's entry, or with rc. */
static void reply_new_entry(fuse_req_t req, struct h5m_fs *fs, uint32_t node, int rc)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (!rc)
		rc = fill_stat(fs, h5m_store_node(fs->store, node), H5M_VIEW_OBJ, &e.attr);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	e.ino = e.attr.st_ino;
	e.attr_timeout = fs->timeout;
	e.entry_timeout = fs->timeout;
	mark_known(fs, e.ino);
	fuse_reply_entry(req, &e);
}

static void h5m_fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *dir;
	enum h5m_view view;
	uint32_t node = 0;
	int rc = resolve(fs, parent, &dir, &view);

	(void)mode; /* HDF5 keeps no modes: a group shows the file's */
	if (!rc)
		rc = h5m_store_mkdir(fs->store, dir, name, &node);
	reply_new_entry(req, fs, node, rc);
}

/* After the names or the name count of node n changed: its views' attributes (st_nlink) the
 * kernel may hold are dropped before the reply, so a stat after it sees them. Inline: an
 * attributes-only invalidation takes no page or directory lock. */
static void names_changed(struct h5m_fs *fs, struct h5m_node *n)
{
	for (enum h5m_view v = H5M_VIEW_OBJ; v < H5M_NVIEWS; v++)
		if (h5m_store_has_view(n, v) && is_known(fs, ino_of(n->idx, v)))
			fuse_lowlevel_notify_inval_inode(fs->se, ino_of(n->idx, v), -1, 0);
}

/* CREATE (and MKNOD of a regular file, fi NULL): a name of a dataset (ns-model rule 3,
 * store.h h5m_store_create), opened unless fi is NULL. */
static void create_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool excl, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct h5m_fs_file *file = NULL;
	struct h5m_created c;
	struct h5m_node *dir, *n;
	enum h5m_view view;
	int rc = resolve(fs, parent, &dir, &view);

	if (!rc)
		rc = h5m_store_create(fs->store, dir, name, excl, &c);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	n = h5m_store_node(fs->store, c.node);
	if (c.reshown)
		names_changed(fs, n); /* st_nlink of its other names */
	if (fi) {
		rc = open_file(fs, n, c.view, fi, c.existed && (fi->flags & O_TRUNC), &file);
		if (!rc && c.reshown && file->h.write) {
			/* As if with O_TRUNC, deferred to the first write (rule 3 amended). */
			file->h.trunc_pending = c.view == H5M_VIEW_NPY;
			file->h.trunc_at_write = c.view == H5M_VIEW_OBJ;
		}
		if (!rc && !c.existed && !c.reshown) {
			file->parent = parent;
			file->name = strdup(name); /* NULL: nothing is taken back */
		}
	}
	memset(&e, 0, sizeof(e));
	if (!rc)
		rc = fill_stat(fs, n, c.view, &e.attr);
	if (rc) {
		if (file)
			file_free(file);
		reply_err(req, rc);
		return;
	}
	e.ino = e.attr.st_ino;
	e.attr_timeout = fs->timeout;
	e.entry_timeout = fs->timeout;
	mark_known(fs, e.ino);
	if (!fi) {
		fuse_reply_entry(req, &e);
		return;
	}
	file_link(fs, file);
	if (fuse_reply_create(req, &e, fi) != 0) {
		file_unlink(fs, file);
		file_free(file);
	}
}

static void h5m_fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode; /* HDF5 keeps no modes: a dataset shows the file's */
	create_entry(req, parent, name, (fi->flags & O_EXCL) != 0, fi);
}

static void h5m_fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	if (!S_ISREG(mode)) {
		h5m_log(H5M_LOG_INFO, "mknod '%s' refused (EPERM): only regular files (datasets) can be made", name);
		h5m_fs_eperm_entry(req, parent, name, mode, rdev);
		return;
	}
	create_entry(req, parent, name, true, NULL);
}

static void h5m_fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_unlinked u;
	struct h5m_node *dir;
	enum h5m_view view;
	int rc = resolve(fs, parent, &dir, &view);

	if (!rc)
		rc = h5m_store_unlink(fs->store, dir, name, &u);
	/* The kernel drops its dentry of `name` itself; the other names' st_nlink changed. */
	if (!rc) {
		struct h5m_node *n = h5m_store_node(fs->store, u.node);

		if (u.deleted && n->type == H5M_NODE_DATASET)
			h5m_view_forget(fs->views, n);
		names_changed(fs, n);
	}
	reply_err(req, rc);
}

static void h5m_fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *dir;
	enum h5m_view view;
	int rc = resolve(fs, parent, &dir, &view);

	if (!rc)
		rc = h5m_store_rmdir(fs->store, dir, name);
	reply_err(req, rc);
}

static void h5m_fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *dir;
	enum h5m_view view;
	uint32_t node = 0;
	int rc = resolve(fs, parent, &dir, &view);

	if (!rc)
		rc = h5m_store_symlink(fs->store, dir, name, link, &node);
	reply_new_entry(req, fs, node, rc);
}

/* Queues the invalidation of every name base+suffix in directory `parent` but `except`, whose
 * dentry the kernel updates itself. */
static void inval_names(struct h5m_fs *fs, fuse_ino_t parent, const char *name, enum h5m_view view,
                        const char *except)
{
	size_t len = strlen(name) - strlen(h5m_store_view_suffix(view));

	for (enum h5m_view v = H5M_VIEW_OBJ; v < H5M_NVIEWS; v++) {
		const char *suf = h5m_store_view_suffix(v);

		if (strlen(except) != len + strlen(suf) || strncmp(except, name, len) || strcmp(except + len, suf))
			inval_entry_later(fs, parent, name, len, suf);
	}
}

/* Whether renaming `name` of dir to `newname` moves the raw name of an untyped dataset (a file
 * just copied in, e.g. rsync's temporary ".x.npy.XXXXXX") onto a .npy or .shape name: the
 * bytes are then a header and data, or shape text, for the target (rename_by_copy). */
static bool rename_types(struct h5m_fs *fs, struct h5m_node *dir, const char *name, const char *newname)
{
	const char *suf[] = { h5m_store_view_suffix(H5M_VIEW_NPY), h5m_store_view_suffix(H5M_VIEW_SHAPE) };
	size_t len = strlen(newname);
	enum h5m_view view;
	uint32_t node;
	bool typed_name = false;

	for (unsigned i = 0; i < 2; i++)
		typed_name |= len > strlen(suf[i]) && !strcmp(newname + len - strlen(suf[i]), suf[i]);
	if (!typed_name || h5m_store_find(fs->store, dir, name, &node, &view) || view != H5M_VIEW_OBJ)
		return false;
	return h5m_store_node(fs->store, node)->untyped;
}

/* Renames the raw name of untyped dataset `name` onto `newname` (NAME.npy or NAME.shape) as
 * if its bytes were written through newname with O_TRUNC (creating NAME when it does not
 * exist; a header of another type replaces it, rule 5), then removes `name`. Not one commit:
 * a crash between the steps leaves the target written and the source still there. Returns
 * 0 or -errno (the source is kept). */
static int rename_by_copy(struct h5m_fs *fs, struct h5m_node *dir, const char *name, fuse_ino_t newparent,
                          struct h5m_node *newdir, const char *newname, bool noreplace)
{
	struct h5m_view_handle h = { 0 };
	struct h5m_unlinked u;
	struct h5m_created c;
	struct h5m_change chg;
	struct h5m_node *src, *t;
	enum h5m_view view;
	uint64_t size = 0, off = 0;
	size_t cap = (size_t)1 << 20;
	uint32_t node;
	char *buf = NULL;
	int rc, rc2;

	if (noreplace && h5m_store_find(fs->store, newdir, newname, &node, &view) == 0)
		return -EEXIST;
	rc = h5m_store_find(fs->store, dir, name, &node, &view);
	if (rc)
		return rc;
	src = h5m_store_node(fs->store, node);
	rc = h5m_view_size(fs->views, src, H5M_VIEW_OBJ, &size);
	if (rc)
		return rc;
	rc = h5m_store_create(fs->store, newdir, newname, false, &c);
	if (rc)
		return rc;
	t = h5m_store_node(fs->store, c.node);
	h.view = c.view;
	h.write = true;
	if ((rc = h5m_view_check_writable(fs->views, t, c.view)) < 0)
		return rc;
	chg = (struct h5m_change){ 0 };
	if (c.existed || c.reshown)
		rc = h5m_view_open_truncate(fs->views, t, &h, &chg);
	buf = rc ? NULL : malloc(cap);
	if (!rc && !buf)
		rc = -ENOMEM;
	while (!rc && off < size) {
		ssize_t got = h5m_view_read(fs->views, src, H5M_VIEW_OBJ, buf, size - off < cap ? (size_t)(size - off) : cap,
		                            off);

		if (got <= 0) {
			rc = got < 0 ? (int)got : -EIO;
			break;
		}
		if (c.view == H5M_VIEW_NPY)
			rc = retype_for_header(fs, &t, &h, buf, (size_t)got, off);
		else
			rc = reshape_untyped(fs, &t, &h, buf, (size_t)got, off);
		if (!rc)
			got = h5m_view_write(fs->views, t, &h, buf, (size_t)got, off, &chg);
		if (!rc && got < 0)
			rc = (int)got;
		off += rc ? 0 : (uint64_t)got;
	}
	free(buf);
	rc2 = h5m_view_close(fs->views, t, &h, &chg);
	rc = rc ? rc : rc2;
	rc2 = h5m_view_release(fs->views, t, &h, &chg); /* no row is left held by h */
	rc = rc ? rc : rc2;
	h5m_view_handle_destroy(&h);
	/* What the kernel holds of the target's names is stale (it also moves `name`'s inode to
	 * `newname` when this returns: that entry is dropped after the rename's locks go). */
	for (enum h5m_view v = H5M_VIEW_OBJ; v < H5M_NVIEWS; v++)
		if (h5m_store_has_view(t, v) && is_known(fs, ino_of(t->idx, v)))
			inval(fs, ino_of(t->idx, v), 0, 0, false);
	inval_entry_later(fs, newparent, newname, strlen(newname), "");
	if (rc) {
		h5m_log(H5M_LOG_WARN, "%s: rename of '%s' onto '%s' failed (%s): its bytes did not make that file",
		        src->ds->path, name, newname, strerror(-rc));
		return rc;
	}
	rc = h5m_store_unlink(fs->store, dir, name, &u);
	if (!rc && u.deleted)
		h5m_view_forget(fs->views, src);
	return rc;
}

static void h5m_fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                          const char *newname, unsigned int flags)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *dir, *newdir, *n;
	struct h5m_renamed r;
	enum h5m_view view;
	int rc = resolve(fs, parent, &dir, &view);

	if (!rc)
		rc = resolve(fs, newparent, &newdir, &view);
	if (!rc && (flags & ~RENAME_NOREPLACE)) {
		h5m_log(H5M_LOG_INFO, "rename with flags %#x refused (EINVAL): only RENAME_NOREPLACE is supported", flags);
		rc = -EINVAL;
	}
	if (!rc && rename_types(fs, dir, name, newname)) {
		rc = rename_by_copy(fs, dir, name, newparent, newdir, newname, (flags & RENAME_NOREPLACE) != 0);
		reply_err(req, rc);
		return;
	}
	if (!rc)
		rc = h5m_store_rename(fs->store, dir, name, newdir, newname,
		                      flags & RENAME_NOREPLACE ? H5M_RENAME_NOREPLACE : 0, &r);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	/* A dataset's other names moved too (x.npy after `mv x y`), and names of the new one may
	 * be cached as absent or as the replaced dataset's: drop them all but the two the kernel
	 * moves itself, once it has let go of the directories' locks. */
	n = h5m_store_node(fs->store, r.node);
	if (n->type == H5M_NODE_DATASET) {
		inval_names(fs, parent, name, r.view, name);
		inval_names(fs, newparent, newname, r.view, newname);
	}
	if (r.replaced >= 0) {
		struct h5m_node *t = h5m_store_node(fs->store, (uint64_t)r.replaced);

		if (r.replaced_deleted && t->type == H5M_NODE_DATASET)
			h5m_view_forget(fs->views, t);
		names_changed(fs, t);
	}
	reply_err(req, 0);
}

/* Hard links: a dataset's views already are its names, and HDF5 hard links to one object
 * would give it names in several directories that the namespace rules cannot keep apart. */
static void h5m_fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct h5m_fs *fs = fs_of(req);

	(void)ino;
	(void)newparent;
	h5m_log(H5M_LOG_INFO, "hard link '%s' refused (EPERM): h5mount makes no hard links (use ln -s)", newname);
	reply_err(req, fs->writable ? -EPERM : -EROFS);
}

static void h5m_fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* O_TRUNC arrives with open() (ATOMIC_O_TRUNC), so a .npy view can wait for a valid
	 * header before emptying the dataset; the kernel's writeback cache stays off (it would own
	 * st_size, see the platform notes). */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	h5m_log(H5M_LOG_DEBUG, "fuse: protocol %u.%u, max_write %u, max_readahead %u", conn->proto_major,
	        conn->proto_minor, conn->max_write, conn->max_readahead);
}

static const struct fuse_lowlevel_ops h5m_ops = {
	.init = h5m_fs_init,
	.lookup = h5m_fs_lookup,
	.getattr = h5m_fs_getattr,
	.readlink = h5m_fs_readlink,
	.opendir = h5m_fs_opendir,
	.readdir = h5m_fs_readdir,
	.open = h5m_fs_open,
	.release = h5m_fs_release,
	.read = h5m_fs_read,
	.write = h5m_fs_write,
	.setattr = h5m_fs_setattr,
	.flush = h5m_fs_flush,
	.fsync = h5m_fs_fsync,
	.mknod = h5m_fs_mknod,
	.mkdir = h5m_fs_mkdir,
	.create = h5m_fs_create,
	.unlink = h5m_fs_unlink,
	.rmdir = h5m_fs_rmdir,
	.symlink = h5m_fs_symlink,
	.rename = h5m_fs_rename,
	.link = h5m_fs_link,
	.statfs = h5m_fs_statfs,
	.listxattr = h5m_fs_listxattr,
	.getxattr = h5m_fs_getxattr,
	.setxattr = h5m_fs_setxattr,
	.removexattr = h5m_fs_removexattr,
};

const struct fuse_lowlevel_ops *h5m_fs_ops(void)
{
	return &h5m_ops;
}
