/* jvfd.c: the "h5m-journal" HDF5 file driver: holds writes in memory and commits them atomically
 * through a journal file; it knows nothing of datasets, FUSE or the caller's locks.
 *
 * The file in HDF5's eyes ("the virtual file") is the file on disk, cut at `cut` and resized to
 * `base` by the truncations since the last commit, with the held extents on top. A commit
 * writes exactly that description to the journal, so applying it (set size to cut, write the
 * extents, set size to eof) is idempotent and can be replayed after a crash.
 *
 * Bytes past the committed end of file (`disk_eof`) belong to no committed object, so while
 * nothing was cut below that end, a write there goes straight into the file instead of being
 * held (appended chunks, mostly: they are written once and cost no memory). The file on disk
 * past disk_eof is then part of the virtual file up to `direct_end`; a crash before the next
 * commit leaves unreferenced bytes past the committed end, which HDF5 ignores.
 *
 * Journal format (all integers little-endian), version 2:
 *   header   96 bytes: "H5MJRNL1", u32 version (2), u32 reserved (0), u64 extent count,
 *                      u64 cut (truncate the file to this first), u64 eof (the final size),
 *                      then the binding: u64 st_dev, u64 st_ino of the HDF5 file, u64 its size
 *                      when the commit began, u64 offset and u64 length of the bound region,
 *                      u64 checksum of the region before the commit, u64 checksum after it
 *   extents  count x (u64 addr, u64 len, len bytes), ascending and disjoint, each ending <= eof
 *   trailer  24 bytes: u64 offset of the trailer, u64 FNV-1a-64 of every byte before the
 *                      trailer, "H5MJEND1"
 * A journal is complete only if its size is exactly what the header and records imply and the
 * trailer matches; anything else is a commit that never reached the HDF5 file. Version 1 had
 * the 40-byte header without the binding.
 *
 * The binding ties a journal to the file state it was written against, so that a journal left
 * next to a file that was since replaced (renamed over: another inode; copied over: the same
 * inode, other bytes) is refused instead of replayed into it. The bound region is the 4 KiB
 * page holding the superblock (found where HDF5 looks for it: 0, 512, 1024, 2048...), cut to
 * below the commit's cut and the file's size, so that no step of applying the commit changes
 * it but one: its bytes are written last, in one pwrite of at most a page, after every other
 * extent. At any moment of a commit or a replay, and after a crash in any of them, the region
 * is therefore either entirely as before the commit or entirely as after it, and its checksum
 * one of the two recorded. A replay (or a read-only open) accepts a complete journal only when
 * st_dev and st_ino match, the file is at least as long as every step of the apply leaves it
 * (min(cut, size before)), and the region's checksum is one of the two.
 *
 *   commit:  [direct bytes past disk_eof] -> journal.tmp -> rename to journal -> extents
 *            outside the region -> the region (one write) -> final size -> empty the journal
 *   replay:  check the binding -> cut -> extents outside the region -> the region -> final
 *            size -> fsync -> remove the journal
 * A journal that fails the check is left as it is, and so is the file; a version-1 journal
 * cannot show which file it belongs to and is refused the same way. */
#include "h5mount/jvfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5mount/log.h"

#define JV_NAME "h5m-journal"
#define JV_MAGIC "H5MJRNL1"
#define JV_END "H5MJEND1"
#define JV_VERSION 2u
#define JV_HEAD 96u                         /* version 2's header */
#define JV_HEAD_V1 40u
#define JV_REGION 4096u                     /* the bound region: at most one page */
#define JV_REC 16u
#define JV_TRAIL 24u
#define JV_TMP ".tmp"
#define JV_WBUF (256u * 1024u)              /* journal write buffer */
#define JV_MAXADDR ((haddr_t)INT64_MAX)     /* file offsets are off_t */
#define JV_FILE_MAGIC 0x6835726e6c766664ull /* marks a live struct jv_file */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* One held extent: bytes [addr, addr + len) of the virtual file, stored at buf + skip. A head
 * trimmed away by a later overlapping write only advances skip, so trimming never copies. */
struct jv_ext {
	uint64_t addr;
	size_t len;
	size_t skip;
	size_t cap;                  /* bytes allocated at buf */
	uint32_t prio;               /* treap priority: parents have higher ones */
	struct jv_ext *left, *right; /* treap children, ordered by addr */
	unsigned char *buf;
};

/* An open file. Every field is protected by HDF5's global lock (callbacks) or by the caller's
 * lock around HDF5 (h5m_jvfd_* helpers); nothing here is touched without one of them. */
struct jv_file {
	H5FD_t pub;             /* HDF5's part; must come first */
	uint64_t magic;         /* JV_FILE_MAGIC while open */
	int fd;                 /* the HDF5 file */
	bool writable;          /* opened with H5F_ACC_RDWR */
	bool durable;           /* commits fsync the journal, its directory and the file */
	bool lock_best_effort;  /* a file system without flock is not an error */
	bool journal_ours;      /* we renamed a journal into place: remove it at close when empty */
	int err;                /* errno of the last failed write, truncate or commit; 0 if none */
	dev_t dev;              /* of the file opened: a journal binds to them */
	ino_t ino;
	bool sb_known;          /* sb_off is where the superblock is (found on disk at a commit) */
	uint64_t sb_off;
	haddr_t eoa;
	uint64_t disk_eof;      /* size of the file on disk after the last commit */
	uint64_t cut;           /* lowest size the file was truncated to since: disk bytes past it are gone */
	uint64_t base;          /* size before held bytes: the last truncation, else disk_eof */
	uint64_t held_end;      /* >= the end of every held extent, <= the virtual EOF */
	uint64_t direct_end;    /* 0, or the end of the bytes written straight into the file past
				 * disk_eof since the last commit: the disk is current up to it.
				 * Outside held extents, the file holds only zeros past it. */
	struct jv_ext *root;    /* held extents, disjoint */
	uint64_t held;          /* bytes held */
	size_t nexts;           /* extents held */
	uint64_t rng;           /* xorshift state for treap priorities */
	char *path;             /* the HDF5 file, made absolute at open */
	char *jpath;            /* path + H5M_JVFD_SUFFIX */
	char *jtmp;             /* jpath + ".tmp": journals are written here, then renamed */
	char *dir;              /* the directory holding them, fsync'ed after a rename */
};

/* The registered driver id; the only global state (see h5m_jvfd_register). */
static hid_t jv_id = H5I_INVALID_HID;
static bool crash_after_journal; /* fault injection for tests, see jvfd.h */
static unsigned crash_after_writes; /* likewise: 0, or the file writes left before _exit(86) */

/* ---------------------------------------------------------------------------------------- */
/* Small helpers */

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The journal checksum: FNV-1a over little-endian 64-bit words (eight times fewer steps than
 * bytes), then over the 0..7 trailing bytes. Streaming: the result does not depend on how the
 * input is split between calls. */
struct jsum {
	uint64_t h;
	unsigned char carry[8];
	unsigned nc;
};

static void jsum_init(struct jsum *s)
{
	s->h = FNV_OFFSET;
	s->nc = 0;
}

static void jsum_update(struct jsum *s, const unsigned char *p, size_t n)
{
	while (n && s->nc) {
		s->carry[s->nc++] = *p++;
		n--;
		if (s->nc == 8) {
			s->h = (s->h ^ get64(s->carry)) * FNV_PRIME;
			s->nc = 0;
		}
	}
	for (; n >= 8; p += 8, n -= 8)
		s->h = (s->h ^ get64(p)) * FNV_PRIME;
	while (n--)
		s->carry[s->nc++] = *p++;
}

static uint64_t jsum_final(const struct jsum *s)
{
	uint64_t h = s->h;

	for (unsigned i = 0; i < s->nc; i++)
		h = (h ^ s->carry[i]) * FNV_PRIME;
	return h;
}

/* Returns malloc'ed a + b, or NULL. */
static char *concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);

	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

/* Returns the malloc'ed directory part of path ("." when it has none), or NULL. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (!slash)
		return concat(".", "");
	if (slash == path)
		return concat("/", "");
	d = malloc((size_t)(slash - path) + 1);
	if (d) {
		memcpy(d, path, (size_t)(slash - path));
		d[slash - path] = '\0';
	}
	return d;
}

/* Returns the malloc'ed absolute form of path (prefixed with the working directory when
 * relative, so that a later chdir, as a daemon makes, cannot move the journal), or NULL. */
static char *absolute(const char *path)
{
	char *cwd, *with_slash, *abs;

	if (path[0] == '/')
		return concat(path, "");
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	with_slash = concat(cwd, "/");
	abs = with_slash ? concat(with_slash, path) : NULL;
	free(with_slash);
	free(cwd);
	return abs;
}

/* Writes all n bytes at off. Returns 0 or -errno. */
static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
	const unsigned char *p = buf;

	while (n > 0) {
		ssize_t w = pwrite(fd, p, n > (1u << 30) ? (1u << 30) : n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Fsyncs a directory. Returns 0 or -errno. */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Removes path; a missing file is not an error. Returns 0 or -errno. */
static int unlink_if_present(const char *path)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Reads up to n bytes at off, fewer only at the end of the file. Returns the count or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* pwrite_all for the steps that apply a commit to the HDF5 file, where the crash fault
 * injection (h5m_jvfd_crash_after_file_writes) counts. Returns 0 or -errno. */
static int file_write(int fd, const void *buf, size_t n, uint64_t off)
{
	int rc = pwrite_all(fd, buf, n, off);

	if (rc == 0 && crash_after_writes && --crash_after_writes == 0)
		_exit(86);
	return rc;
}

/* Writes the n bytes of buf meant for [off, off + n) except those inside the bound region
 * [roff, roff + rlen), which are written last, all at once. Returns 0 or -errno. */
static int file_write_outside(int fd, const unsigned char *buf, size_t n, uint64_t off, uint64_t roff, uint64_t rlen)
{
	uint64_t end = off + n, rend = roff + rlen;
	int rc;

	if (rlen == 0 || end <= roff || off >= rend)
		return file_write(fd, buf, n, off);
	if (off < roff && (rc = file_write(fd, buf, (size_t)(roff - off), off)) != 0)
		return rc;
	if (end > rend)
		return file_write(fd, buf + (rend - off), (size_t)(end - rend), rend);
	return 0;
}

/* Where HDF5 looks for the superblock: 0, then 512 and every power of two above. Sets *at and
 * returns 1 when the signature is at one of them below `bound`, else 0; or -errno. */
static int find_superblock(int fd, uint64_t bound, uint64_t *at)
{
	static const unsigned char sig[8] = { 0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n' };
	unsigned char got[8];

	for (uint64_t off = 0; off <= bound && bound - off >= sizeof(sig); off = off ? off * 2 : 512) {
		ssize_t r = pread_full(fd, got, sizeof(got), off);

		if (r < 0)
			return (int)r;
		if (r == (ssize_t)sizeof(got) && memcmp(got, sig, sizeof(sig)) == 0) {
			*at = off;
			return 1;
		}
	}
	return 0;
}

/* Pushes an HDF5 error record for a failed system call (e = errno). */
static void push_err(const char *func, unsigned line, hid_t min, int e, const char *what, const char *path)
{
	H5Epush2(H5E_DEFAULT, __FILE__, func, line, H5E_ERR_CLS, H5E_VFL, min, "%s '%s': %s (errno = %d)", what,
		 path ? path : "", strerror(e), e);
}

#define PUSH_ERR(min, e, what, path) push_err(__func__, __LINE__, (min), (e), (what), (path))

/* Whether [addr, addr + size) fits below JV_MAXADDR; pushes an HDF5 error when it does not. */
static bool region_ok(haddr_t addr, size_t size)
{
	if (addr != HADDR_UNDEF && addr <= JV_MAXADDR && (uint64_t)size <= JV_MAXADDR - addr)
		return true;
	H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_ARGS, H5E_OVERFLOW,
		 "addr overflow, addr = %llu, size = %zu", (unsigned long long)addr, size);
	return false;
}

/* ---------------------------------------------------------------------------------------- */
/* The overlay: a treap of disjoint extents keyed by addr. Expected O(log n) per operation. */

static uint32_t next_prio(struct jv_file *f)
{
	uint64_t x = f->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	f->rng = x;
	return (uint32_t)(x >> 32);
}

/* Joins two treaps where every key of a is below every key of b. */
static struct jv_ext *join(struct jv_ext *a, struct jv_ext *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (a->prio > b->prio) {
		a->right = join(a->right, b);
		return a;
	}
	b->left = join(a, b->left);
	return b;
}

/* Splits t into extents starting below key (*lt) and the others (*ge). */
static void split(struct jv_ext *t, uint64_t key, struct jv_ext **lt, struct jv_ext **ge)
{
	if (!t) {
		*lt = *ge = NULL;
	} else if (t->addr < key) {
		split(t->right, key, &t->right, ge);
		*lt = t;
	} else {
		split(t->left, key, lt, &t->left);
		*ge = t;
	}
}

/* Detaches and returns the last extent of the non-empty treap *t. */
static struct jv_ext *pop_last(struct jv_ext **t)
{
	struct jv_ext *n;

	while ((*t)->right)
		t = &(*t)->right;
	n = *t;
	*t = n->left;
	n->left = NULL;
	return n;
}

static void ext_free(struct jv_file *f, struct jv_ext *e)
{
	f->held -= e->len;
	f->nexts--;
	free(e->buf);
	free(e);
}

static void free_tree(struct jv_file *f, struct jv_ext *t)
{
	while (t) {
		struct jv_ext *right = t->right;

		free_tree(f, t->left);
		ext_free(f, t);
		t = right;
	}
}

static void drop_overlay(struct jv_file *f)
{
	free_tree(f, f->root);
	f->root = NULL;
	f->held_end = 0;
}

/* Holds len bytes of src at addr, replacing whatever was held there. Extends the extent that
 * ends at or overlaps addr in place (with geometric growth, so appends stay linear), trims
 * extents that stick out past the end, frees those inside. Returns 0 or -ENOMEM, with the
 * overlay unchanged on failure. */
static int hold(struct jv_file *f, uint64_t addr, const unsigned char *src, size_t len)
{
	uint64_t end = addr + len;
	struct jv_ext *a, *m, *c, *l = NULL, *n = NULL;

	split(f->root, addr, &a, &m);
	split(m, end, &m, &c);
	if (a)
		l = pop_last(&a);
	if (l && l->addr + l->len < addr) {
		a = join(a, l); /* not touching: stays as it is */
		l = NULL;
	}
	if (l && l->addr + l->len >= end) {
		/* Inside one extent: overwrite in place (m is empty: extents are disjoint). */
		memcpy(l->buf + l->skip + (addr - l->addr), src, len);
		f->root = join(join(a, l), c);
		return 0;
	}
	if (l) {
		size_t need = l->skip + (size_t)(end - l->addr);

		if (need > l->cap) {
			size_t cap = need + need / 4;
			unsigned char *buf = realloc(l->buf, cap);

			if (!buf) {
				f->root = join(join(join(a, l), m), c);
				return -ENOMEM;
			}
			l->buf = buf;
			l->cap = cap;
		}
		memcpy(l->buf + l->skip + (addr - l->addr), src, len);
		f->held += end - (l->addr + l->len);
		l->len = (size_t)(end - l->addr);
		a = join(a, l);
	} else {
		n = malloc(sizeof(*n));
		if (n)
			n->buf = malloc(len);
		if (!n || !n->buf) {
			free(n);
			f->root = join(join(a, m), c);
			return -ENOMEM;
		}
		memcpy(n->buf, src, len);
		n->addr = addr;
		n->len = n->cap = len;
		n->skip = 0;
		n->prio = next_prio(f);
		n->left = n->right = NULL;
		f->held += len;
		f->nexts++;
		a = join(a, n);
	}
	/* Extents starting inside [addr, end): the last may stick out past end; trim its head. */
	if (m) {
		struct jv_ext *last = pop_last(&m);

		if (last->addr + last->len > end) {
			size_t k = (size_t)(end - last->addr);

			last->skip += k;
			last->len -= k;
			last->addr = end;
			f->held -= k;
			c = join(last, c);
		} else {
			ext_free(f, last);
		}
		free_tree(f, m);
	}
	f->root = join(a, c);
	if (end > f->held_end)
		f->held_end = end;
	return 0;
}

/* Drops held bytes at or past size. */
static void clip(struct jv_file *f, uint64_t size)
{
	struct jv_ext *a, *c;

	split(f->root, size, &a, &c);
	free_tree(f, c);
	if (a) {
		struct jv_ext *last = pop_last(&a);

		if (last->addr + last->len > size) {
			f->held -= last->addr + last->len - size;
			last->len = (size_t)(size - last->addr);
		}
		a = join(a, last);
	}
	f->root = a;
	if (f->held_end > size)
		f->held_end = size;
}

/* Copies the held bytes that fall in [lo, hi) into dst (which holds byte lo at dst[0]). */
static void overlay(const struct jv_ext *t, uint64_t lo, uint64_t hi, unsigned char *dst)
{
	while (t) {
		if (t->addr > lo)
			overlay(t->left, lo, hi, dst);
		if (t->addr >= hi)
			return;
		if (t->addr + t->len > lo) {
			uint64_t from = t->addr > lo ? t->addr : lo;
			uint64_t to = t->addr + t->len < hi ? t->addr + t->len : hi;

			memcpy(dst + (from - lo), t->buf + t->skip + (from - t->addr), (size_t)(to - from));
		}
		t = t->right;
	}
}

/* Calls fn on every extent in address order; stops at the first non-zero return. */
static int walk(const struct jv_ext *t, int (*fn)(const struct jv_ext *, void *), void *ctx)
{
	while (t) {
		int rc = walk(t->left, fn, ctx);

		if (rc)
			return rc;
		if ((rc = fn(t, ctx)) != 0)
			return rc;
		t = t->right;
	}
	return 0;
}

static uint64_t virtual_eof(const struct jv_file *f)
{
	uint64_t end = f->held_end > f->base ? f->held_end : f->base;

	return f->direct_end > end ? f->direct_end : end;
}

static bool pending(const struct jv_file *f)
{
	return f->root || f->cut != f->disk_eof || f->base != f->disk_eof || f->direct_end;
}

/* Whether a write at addr can go straight into the file: it lies past the committed end, no
 * truncation below that end is pending (a replay cuts the file there first), and no held
 * extent reaches it (held bytes would shadow it). */
static bool direct_ok(const struct jv_file *f, uint64_t addr)
{
	return f->cut == f->disk_eof && addr >= f->disk_eof && addr >= f->held_end;
}

/* ---------------------------------------------------------------------------------------- */
/* Commit */

/* A commit's bound region (see the header comment): [off, off + len) of the file, and its
 * bytes after the commit. */
struct region {
	uint64_t off, len;
	uint64_t pre, post;            /* checksums of its bytes before and after the commit */
	bool changed;                  /* the commit changes them: img is written last */
	unsigned char img[JV_REGION];  /* its bytes after the commit */
};

static uint64_t region_sum(const unsigned char *p, uint64_t len)
{
	struct jsum s;

	jsum_init(&s);
	jsum_update(&s, p, (size_t)len);
	return jsum_final(&s);
}

/* Fills *rg for a commit of f, whose file on disk is `size` bytes long: the page of the
 * superblock below min(cut, size), as it is now and as the overlay leaves it. Bytes below the
 * cut lie below disk_eof, where nothing is written straight into the file, so only the commit
 * changes them. An empty region (a file whose superblock is not on disk yet) binds by
 * st_dev/st_ino alone. Returns 0 or -errno. */
static int bind_region(struct jv_file *f, uint64_t size, struct region *rg)
{
	uint64_t bound = f->cut < size ? f->cut : size;
	unsigned char pre[JV_REGION];
	ssize_t got;

	rg->off = rg->len = 0;
	if (!f->sb_known) {
		int rc = find_superblock(f->fd, bound, &f->sb_off);

		if (rc < 0)
			return rc;
		f->sb_known = rc == 1; /* HDF5 never moves it */
	}
	if (f->sb_known) {
		rg->off = f->sb_off & ~(uint64_t)(JV_REGION - 1);
		if (bound > rg->off)
			rg->len = bound - rg->off < JV_REGION ? bound - rg->off : JV_REGION;
	}
	got = pread_full(f->fd, pre, (size_t)rg->len, rg->off);
	if (got < 0)
		return (int)got;
	if ((uint64_t)got != rg->len)
		return -EIO; /* shorter than fstat said a moment ago */
	memcpy(rg->img, pre, (size_t)rg->len);
	overlay(f->root, rg->off, rg->off + rg->len, rg->img);
	rg->pre = region_sum(pre, rg->len);
	rg->post = region_sum(rg->img, rg->len);
	rg->changed = memcmp(pre, rg->img, (size_t)rg->len) != 0;
	return 0;
}

/* A buffered, checksummed writer of a fresh journal file. */
struct jwriter {
	int fd;
	unsigned char *buf; /* JV_WBUF bytes */
	size_t n;           /* bytes buffered */
	uint64_t off;       /* file offset of buf[0] */
	struct jsum sum;    /* checksum of everything put so far */
	uint64_t limit;     /* extents are journaled only below this address */
};

static int jw_drain(struct jwriter *w)
{
	int rc = pwrite_all(w->fd, w->buf, w->n, w->off);

	w->off += w->n;
	w->n = 0;
	return rc;
}

static int jw_put(struct jwriter *w, const void *p, size_t len)
{
	int rc;

	jsum_update(&w->sum, p, len);
	if (w->n + len <= JV_WBUF) {
		memcpy(w->buf + w->n, p, len);
		w->n += len;
		return 0;
	}
	if ((rc = jw_drain(w)) != 0)
		return rc;
	if (len >= JV_WBUF) {
		rc = pwrite_all(w->fd, p, len, w->off);
		w->off += len;
		return rc;
	}
	memcpy(w->buf, p, len);
	w->n = len;
	return 0;
}

/* Bytes of extent e below `limit` (the part that goes through the journal). */
static size_t below(const struct jv_ext *e, uint64_t limit)
{
	if (e->addr >= limit)
		return 0;
	return e->addr + e->len <= limit ? e->len : (size_t)(limit - e->addr);
}

static int jw_extent(const struct jv_ext *e, void *ctx)
{
	struct jwriter *w = ctx;
	unsigned char rec[JV_REC];
	size_t len = below(e, w->limit);
	int rc;

	if (len == 0)
		return 0;
	put64(rec, e->addr);
	put64(rec + 8, len);
	if ((rc = jw_put(w, rec, sizeof(rec))) != 0)
		return rc;
	return jw_put(w, e->buf + e->skip, len);
}

struct count_ctx {
	uint64_t limit, n;
};

static int count_below(const struct jv_ext *e, void *ctx)
{
	struct count_ctx *c = ctx;

	c->n += below(e, c->limit) > 0;
	return 0;
}

struct direct_ctx {
	int fd;
	uint64_t limit;
};

/* Writes the part of e at or above the limit straight into the file. */
static int direct_extent(const struct jv_ext *e, void *ctx)
{
	struct direct_ctx *d = ctx;
	size_t skip = below(e, d->limit);

	if (skip == e->len)
		return 0;
	return pwrite_all(d->fd, e->buf + e->skip + skip, e->len - skip, e->addr + skip);
}

/* Writes the whole overlay as a journal to jtmp, bound to the file's st_dev/st_ino, its size
 * `size` and the region rg, then renames it over jpath (fsync'ing the
 * journal before and its directory after the rename when durable). Returns the journal's fd
 * (>= 0), or -errno with *what set. On a failure before the rename, jtmp is removed and any
 * older journal is left as it was, so a complete journal is never destroyed before its
 * successor is complete. */
static int write_journal(struct jv_file *f, uint64_t eof, uint64_t limit, uint64_t size, const struct region *rg,
			 mode_t mode, const char **what)
{
	struct jwriter w = { .fd = -1, .limit = limit };
	unsigned char head[JV_HEAD], trail[JV_TRAIL];
	int rc;

	*what = "cannot write journal";
	jsum_init(&w.sum);
	w.buf = malloc(JV_WBUF);
	if (!w.buf)
		return -ENOMEM;
	w.fd = open(f->jtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (w.fd < 0) {
		rc = -errno;
		goto fail;
	}
	memcpy(head, JV_MAGIC, 8);
	put32(head + 8, JV_VERSION);
	put32(head + 12, 0);
	{
		struct count_ctx c = { .limit = limit };

		walk(f->root, count_below, &c);
		put64(head + 16, c.n);
	}
	/* With direct bytes past the old end, a replay must not cut the file below the end. */
	put64(head + 24, limit == UINT64_MAX ? f->cut : eof);
	put64(head + 32, eof);
	put64(head + 40, (uint64_t)f->dev);
	put64(head + 48, (uint64_t)f->ino);
	put64(head + 56, size);
	put64(head + 64, rg->off);
	put64(head + 72, rg->len);
	put64(head + 80, rg->pre);
	put64(head + 88, rg->post);
	if ((rc = jw_put(&w, head, sizeof(head))) != 0 || (rc = walk(f->root, jw_extent, &w)) != 0)
		goto fail;
	put64(trail, w.off + w.n);
	put64(trail + 8, jsum_final(&w.sum));
	memcpy(trail + 16, JV_END, 8);
	if ((rc = jw_put(&w, trail, sizeof(trail))) != 0 || (rc = jw_drain(&w)) != 0)
		goto fail;
	if ((f->durable && fsync(w.fd) < 0) || rename(f->jtmp, f->jpath) < 0) {
		rc = -errno;
		goto fail;
	}
	f->journal_ours = true;
	free(w.buf);
	if (f->durable && (rc = fsync_dir(f->dir)) != 0) {
		*what = "cannot fsync the directory of";
		close(w.fd);
		return rc;
	}
	return w.fd;
fail:
	if (w.fd >= 0)
		close(w.fd);
	unlink(f->jtmp);
	free(w.buf);
	return rc;
}

struct apply_ctx {
	int fd;
	uint64_t limit; /* parts at or above it were written directly before the journal */
	uint64_t end;   /* end of the last extent */
	const struct region *rg;
};

static int apply_extent(const struct jv_ext *e, void *ctx)
{
	struct apply_ctx *a = ctx;
	size_t len = below(e, a->limit);

	a->end = e->addr + e->len;
	return len ? file_write_outside(a->fd, e->buf + e->skip, len, e->addr, a->rg->off, a->rg->len) : 0;
}

/* Applies the journaled part of the overlay (below `limit`) to the HDF5 file, whose size is now
 * disk_size: size to cut, extents outside the region rg, then rg at once, size to eof, fsync if
 * durable. Returns 0 or -errno. */
static int apply(struct jv_file *f, uint64_t disk_size, uint64_t eof, uint64_t limit, const struct region *rg)
{
	struct apply_ctx a = { .fd = f->fd, .limit = limit, .end = 0, .rg = rg };
	int rc;

	if (limit == UINT64_MAX && disk_size != f->cut && ftruncate(f->fd, (off_t)f->cut) < 0)
		return -errno;
	if ((rc = walk(f->root, apply_extent, &a)) != 0)
		return rc;
	if (rg->changed && (rc = file_write(f->fd, rg->img, (size_t)rg->len, rg->off)) != 0)
		return rc;
	if (limit == UINT64_MAX) {
		if (eof > f->cut && eof > a.end && ftruncate(f->fd, (off_t)eof) < 0)
			return -errno;
	} else if (ftruncate(f->fd, (off_t)eof) < 0) {
		/* Direct bytes are in place already: nothing was cut, only the final size is set
		 * (dropping what a failed earlier attempt may have left past it). */
		return -errno;
	}
	if (f->durable && fsync(f->fd) < 0)
		return -errno;
	return 0;
}

/* The driver's commit (see jvfd.h). Returns 0 or -errno (also kept in f->err) with *what
 * naming the failed step; on failure the overlay stays, and so does the file's previous
 * committed state or a complete journal.
 *
 * Bytes past the committed end of file are referenced by no committed metadata, so unless the
 * commit shrinks the file they are written straight into it first (appended chunks, mostly)
 * and only the rest goes through the journal: appends are written once, not twice. */
static int commit(struct jv_file *f, const char **what)
{
	uint64_t eof = virtual_eof(f), need, limit;
	struct region rg;
	struct stat st;
	int jfd = -1, rc;

	if (!pending(f))
		return 0;
	*what = "cannot stat";
	if (fstat(f->fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	/* Reserve the space the file grows into before changing a byte of it: on a full disk the
	 * commit then fails with the file in its previous committed state, not half applied. */
	*what = "cannot reserve space in";
	need = eof > (uint64_t)st.st_size ? eof : (uint64_t)st.st_size;
	if (need > (uint64_t)st.st_size &&
	    fallocate(f->fd, FALLOC_FL_KEEP_SIZE, st.st_size, (off_t)(need - (uint64_t)st.st_size)) < 0 &&
	    errno != EOPNOTSUPP && errno != ENOSYS) {
		rc = -errno;
		goto out;
	}
	limit = f->cut >= f->disk_eof ? f->disk_eof : UINT64_MAX;
	if (limit != UINT64_MAX) {
		struct direct_ctx d = { .fd = f->fd, .limit = limit };

		*what = "cannot write";
		if ((rc = walk(f->root, direct_extent, &d)) != 0)
			goto out;
		/* Durable: the direct bytes are on disk before the journal that points at them. */
		if (f->durable && fsync(f->fd) < 0) {
			rc = -errno;
			goto out;
		}
	}
	*what = "cannot read the superblock region of";
	if ((rc = bind_region(f, (uint64_t)st.st_size, &rg)) != 0)
		goto out;
	jfd = write_journal(f, eof, limit, (uint64_t)st.st_size, &rg, st.st_mode & 0666, what);
	if (jfd < 0) {
		rc = jfd;
		goto out;
	}
	if (crash_after_journal)
		_exit(86);
	*what = "cannot write";
	if ((rc = apply(f, (uint64_t)st.st_size, eof, limit, &rg)) != 0)
		goto out;
	*what = "cannot empty the journal of";
	if (ftruncate(jfd, 0) < 0 || (f->durable && fsync(jfd) < 0)) {
		rc = -errno;
		goto out;
	}
	drop_overlay(f);
	f->disk_eof = f->cut = f->base = eof;
	f->direct_end = 0;
out:
	if (jfd >= 0)
		close(jfd);
	if (rc)
		f->err = -rc;
	return rc;
}

/* A commit while HDF5 closes the file. Its failure is logged, never returned: HDF5 1.10.8 frees
 * the file even when closing fails but keeps its id, and then crashes at exit closing it again
 * (HDFGroup/hdf5#2257, CVE-2020-10812). Nothing is lost by not failing: the file keeps its last
 * commit, or a complete journal that h5m_jvfd_recover replays. Returns 0 or -errno. */
static int commit_closing(struct jv_file *f, bool last)
{
	const char *what = "cannot commit";
	int rc = commit(f, &what);

	if (rc && last)
		h5m_log(H5M_LOG_ERR, "h5m-journal: %s '%s' at close: %s; changes since the last commit are lost",
			what, f->path, strerror(-rc));
	return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* HDF5 callbacks */

static herr_t jv_term(void)
{
	jv_id = H5I_INVALID_HID;
	return 0;
}

static void jv_free(struct jv_file *f)
{
	f->magic = 0;
	free(f->path);
	free(f->jpath);
	free(f->jtmp);
	free(f->dir);
	free(f);
}

static int show_journal(struct jv_file *f, const char **what);

static H5FD_t *jv_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
	struct jv_file *f = NULL;
	struct stat st;
	hbool_t use_locks = 1, best_effort = 1;
	int o = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;

	if (!name || !*name || maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > JV_MAXADDR) {
		H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_ARGS, H5E_BADVALUE,
			 "invalid file name or maxaddr");
		return NULL;
	}
	if (flags & H5F_ACC_TRUNC)
		o |= O_TRUNC;
	if (flags & H5F_ACC_CREAT)
		o |= O_CREAT;
	if (flags & H5F_ACC_EXCL)
		o |= O_EXCL;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = absolute(name)) || !(f->jpath = concat(f->path, H5M_JVFD_SUFFIX)) ||
	    !(f->jtmp = concat(f->jpath, JV_TMP)) || !(f->dir = dir_of(f->path))) {
		PUSH_ERR(H5E_CANTALLOC, ENOMEM, "cannot open", name);
		goto fail;
	}
	f->fd = -1;
	/* A journal left by a crash must be replayed (h5m_jvfd_recover) before the file is written:
	 * the file may hold half of that commit. Truncating the file makes it moot; a read-only
	 * open shows it (show_journal). */
	if ((flags & H5F_ACC_RDWR) && !(flags & H5F_ACC_TRUNC) && stat(f->jpath, &st) == 0 && st.st_size > 0) {
		PUSH_ERR(H5E_CANTOPENFILE, EEXIST, "unrecovered journal (call h5m_jvfd_recover first)", f->jpath);
		goto fail;
	}
	f->fd = open(name, o | O_CLOEXEC, 0666);
	if (f->fd < 0) {
		PUSH_ERR(H5E_CANTOPENFILE, errno, "cannot open", name);
		goto fail;
	}
	if (fstat(f->fd, &st) < 0) {
		PUSH_ERR(H5E_CANTOPENFILE, errno, "cannot stat", name);
		goto fail;
	}
	if ((flags & H5F_ACC_TRUNC) && (unlink_if_present(f->jpath) < 0 || unlink_if_present(f->jtmp) < 0)) {
		PUSH_ERR(H5E_CANTOPENFILE, errno, "cannot remove stale journal", f->jpath);
		goto fail;
	}
	if (H5Pget_file_locking(fapl, &use_locks, &best_effort) < 0)
		best_effort = 1;
	f->magic = JV_FILE_MAGIC;
	f->writable = (flags & H5F_ACC_RDWR) != 0;
	f->durable = true; /* the safe default; h5m_jvfd_set_durable(fid, false) to only order writes */
	f->lock_best_effort = best_effort;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->disk_eof = f->cut = f->base = (uint64_t)st.st_size;
	f->rng = ((uint64_t)(uintptr_t)f * 0x9e3779b97f4a7c15ull) ^ (uint64_t)st.st_ino ^ 0x2545f4914f6cdd1dull;
	if (!f->rng)
		f->rng = 1;
	if (!f->writable) {
		const char *what = "cannot open";
		int rc = show_journal(f, &what);

		if (rc < 0) {
			PUSH_ERR(H5E_CANTOPENFILE, -rc, what, f->jpath);
			goto fail;
		}
	}
	return &f->pub;
fail:
	if (f) {
		if (f->fd >= 0)
			close(f->fd);
		jv_free(f);
	}
	return NULL;
}

static herr_t jv_close(H5FD_t *file)
{
	struct jv_file *f = (struct jv_file *)file;
	struct stat st;

	if (f->writable)
		commit_closing(f, true);
	drop_overlay(f);
	/* Still holding the lock: an empty journal of ours is only clutter. */
	if (f->journal_ours && stat(f->jpath, &st) == 0 && st.st_size == 0)
		unlink(f->jpath);
	if (close(f->fd) < 0) /* not returned: see commit_closing */
		h5m_log(H5M_LOG_ERR, "h5m-journal: cannot close '%s': %s", f->path, strerror(errno));
	jv_free(f);
	return 0;
}

static int jv_cmp(const H5FD_t *a, const H5FD_t *b)
{
	const struct jv_file *f = (const struct jv_file *)a, *g = (const struct jv_file *)b;

	if (f->dev != g->dev)
		return f->dev < g->dev ? -1 : 1;
	if (f->ino != g->ino)
		return f->ino < g->ino ? -1 : 1;
	return 0;
}

static herr_t jv_query(const H5FD_t *file, unsigned long *flags)
{
	(void)file;
	if (flags)
		*flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
			 H5FD_FEAT_AGGREGATE_SMALLDATA;
	return 0;
}

static haddr_t jv_get_eoa(const H5FD_t *file, H5FD_mem_t type)
{
	(void)type;
	return ((const struct jv_file *)file)->eoa;
}

static herr_t jv_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr)
{
	(void)type;
	((struct jv_file *)file)->eoa = addr;
	return 0;
}

static haddr_t jv_get_eof(const H5FD_t *file, H5FD_mem_t type)
{
	(void)type;
	return virtual_eof((const struct jv_file *)file);
}

static herr_t jv_get_handle(H5FD_t *file, hid_t fapl, void **handle)
{
	(void)fapl;
	if (!handle) {
		H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, H5E_ARGS, H5E_BADVALUE,
			 "file handle not valid");
		return -1;
	}
	*handle = file;
	return 0;
}

static herr_t jv_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf)
{
	struct jv_file *f = (struct jv_file *)file;
	unsigned char *p = buf;
	uint64_t disk_end, at = addr, stop;

	(void)type;
	(void)dxpl;
	if (!region_ok(addr, size))
		return -1;
	/* Disk bytes still visible: those below a pending cut, else also the direct ones. */
	if (f->cut < f->disk_eof)
		disk_end = f->cut;
	else
		disk_end = f->direct_end > f->disk_eof ? f->direct_end : f->disk_eof;
	stop = addr + size < disk_end ? addr + size : disk_end;
	while (at < stop) {
		ssize_t r = pread(f->fd, p + (at - addr), (size_t)(stop - at), (off_t)at);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			PUSH_ERR(H5E_READERROR, errno, "cannot read", f->path);
			return -1;
		}
		if (r == 0)
			break;
		at += (uint64_t)r;
	}
	if (at < addr + size)
		memset(p + (at - addr), 0, (size_t)(addr + size - at));
	overlay(f->root, addr, addr + size, p);
	return 0;
}

static herr_t jv_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf)
{
	struct jv_file *f = (struct jv_file *)file;
	int rc;

	(void)type;
	(void)dxpl;
	if (!region_ok(addr, size))
		return -1;
	if (!f->writable) {
		PUSH_ERR(H5E_WRITEERROR, EBADF, "cannot write a read-only file", f->path);
		return -1;
	}
	if (size == 0)
		return 0;
	if (direct_ok(f, addr)) {
		/* On failure (a full disk, say) the bytes are held instead: the commit then fails
		 * cleanly before touching the file, rather than HDF5 failing midway through a write. */
		if (pwrite_all(f->fd, buf, size, addr) == 0) {
			if (addr + size > f->direct_end)
				f->direct_end = addr + size;
			return 0;
		}
	}
	if ((rc = hold(f, addr, buf, size)) != 0) {
		f->err = -rc;
		PUSH_ERR(H5E_WRITEERROR, -rc, "cannot hold a write", f->path);
		return -1;
	}
	return 0;
}

static herr_t jv_flush(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
	struct jv_file *f = (struct jv_file *)file;
	const char *what = "cannot commit";
	int rc;

	(void)dxpl;
	if (!f->writable)
		return 0;
	if (closing) {
		commit_closing(f, false); /* the close callback retries, and logs */
		return 0;
	}
	if ((rc = commit(f, &what)) != 0) {
		PUSH_ERR(H5E_WRITEERROR, -rc, what, f->path);
		return -1;
	}
	return 0;
}

/* HDF5 asks for EOF == EOA; the new size is applied at the next commit. */
static herr_t jv_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
	struct jv_file *f = (struct jv_file *)file;
	uint64_t size = f->eoa;

	(void)dxpl;
	if (!f->writable || size == virtual_eof(f))
		return 0;
	if (size > JV_MAXADDR) {
		f->err = EFBIG;
		if (closing)
			return 0; /* see commit_closing */
		PUSH_ERR(H5E_OVERFLOW, EFBIG, "cannot truncate", f->path);
		return -1;
	}
	if (f->cut == f->disk_eof && size >= f->disk_eof) {
		/* Uncommitted bytes past the new end are in the file, held or direct: cut them off
		 * so that growing again reads zeros. Below disk_eof nothing changes until the commit. */
		struct stat st;

		if (fstat(f->fd, &st) < 0 || ((uint64_t)st.st_size > size && ftruncate(f->fd, (off_t)size) < 0)) {
			int e = errno;

			f->err = e;
			if (closing)
				return 0; /* the commit sets the final size anyway */
			PUSH_ERR(H5E_WRITEERROR, e, "cannot truncate", f->path);
			return -1;
		}
		if (f->direct_end > size)
			f->direct_end = size > f->disk_eof ? size : 0;
	} else {
		f->direct_end = 0; /* a replay cuts the file below them: they are gone */
	}
	clip(f, size);
	f->base = size;
	if (size < f->cut)
		f->cut = size;
	return 0;
}

static herr_t jv_lock(H5FD_t *file, hbool_t rw)
{
	struct jv_file *f = (struct jv_file *)file;

	if (flock(f->fd, (rw ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		if (errno == ENOSYS && f->lock_best_effort)
			return 0;
		PUSH_ERR(H5E_CANTLOCKFILE, errno, "unable to lock file", f->path);
		return -1;
	}
	return 0;
}

static herr_t jv_unlock(H5FD_t *file)
{
	struct jv_file *f = (struct jv_file *)file;

	if (flock(f->fd, LOCK_UN) < 0) {
		if (errno == ENOSYS && f->lock_best_effort)
			return 0;
		PUSH_ERR(H5E_CANTLOCKFILE, errno, "unable to unlock file", f->path);
		return -1;
	}
	return 0;
}

static const H5FD_class_t jv_class = {
	.name = JV_NAME,
	.maxaddr = JV_MAXADDR,
	.fc_degree = H5F_CLOSE_WEAK,
	.terminate = jv_term,
	.open = jv_open,
	.close = jv_close,
	.cmp = jv_cmp,
	.query = jv_query,
	.get_eoa = jv_get_eoa,
	.set_eoa = jv_set_eoa,
	.get_eof = jv_get_eof,
	.get_handle = jv_get_handle,
	.read = jv_read,
	.write = jv_write,
	.flush = jv_flush,
	.truncate = jv_truncate,
	.lock = jv_lock,
	.unlock = jv_unlock,
	.fl_map = H5FD_FLMAP_DICHOTOMY,
};

/* ---------------------------------------------------------------------------------------- */
/* Public API */

hid_t h5m_jvfd_register(void)
{
	if (jv_id < 0 || H5Iget_type(jv_id) != H5I_VFL)
		jv_id = H5FDregister(&jv_class);
	return jv_id < 0 ? H5I_INVALID_HID : jv_id;
}

int h5m_jvfd_set_fapl(hid_t fapl)
{
	hid_t id = h5m_jvfd_register();

	if (id < 0 || H5Pset_driver(fapl, id, NULL) < 0)
		return -EIO;
	return 0;
}

/* Returns the driver's struct for fid, or NULL if fid is not an open file using the driver. */
static struct jv_file *file_of(hid_t fid)
{
	hid_t fapl, drv;
	void *h = NULL;
	struct jv_file *f;

	if (jv_id < 0 || H5Iget_type(fid) != H5I_FILE)
		return NULL;
	fapl = H5Fget_access_plist(fid);
	if (fapl < 0)
		return NULL;
	drv = H5Pget_driver(fapl);
	H5Pclose(fapl);
	if (drv < 0 || drv != jv_id)
		return NULL;
	if (H5Fget_vfd_handle(fid, H5P_DEFAULT, &h) < 0 || !h)
		return NULL;
	f = h;
	return f->magic == JV_FILE_MAGIC ? f : NULL;
}

int h5m_jvfd_set_durable(hid_t fid, bool durable)
{
	struct jv_file *f = file_of(fid);

	if (!f)
		return -EINVAL;
	f->durable = durable;
	return 0;
}

int h5m_jvfd_take_error(hid_t fid)
{
	struct jv_file *f = file_of(fid);
	int e;

	if (!f)
		return -EINVAL;
	e = f->err;
	f->err = 0;
	return e;
}

size_t h5m_jvfd_held_bytes(hid_t fid)
{
	struct jv_file *f = file_of(fid);

	return f ? (size_t)f->held : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Recovery */

/* A journal's header, of either version. */
struct jhead {
	uint32_t version;
	uint64_t head;              /* header bytes: where the first extent record starts */
	uint64_t count, cut, eof;
	uint64_t dev, ino, size;    /* version 2: the binding (see the header comment) */
	uint64_t roff, rlen, pre, post;
};

/* Whether the n-byte journal at j is complete; on success fills *h. Returns 1 (complete),
 * 0 (incomplete or corrupt) or -EPROTO (a version this code does not know). */
static int journal_check(const unsigned char *j, uint64_t n, struct jhead *h)
{
	struct jsum sum;
	uint64_t off, body;

	if (n < JV_HEAD_V1 + JV_TRAIL || memcmp(j, JV_MAGIC, 8) != 0)
		return 0;
	h->version = get32(j + 8);
	if (h->version != 1 && h->version != JV_VERSION)
		return -EPROTO;
	h->head = h->version == 1 ? JV_HEAD_V1 : JV_HEAD;
	if (n < h->head + JV_TRAIL)
		return 0;
	h->count = get64(j + 16);
	h->cut = get64(j + 24);
	h->eof = get64(j + 32);
	if (h->cut > h->eof || h->eof > JV_MAXADDR)
		return 0;
	if (h->version >= 2) {
		uint64_t bound;

		h->dev = get64(j + 40);
		h->ino = get64(j + 48);
		h->size = get64(j + 56);
		h->roff = get64(j + 64);
		h->rlen = get64(j + 72);
		h->pre = get64(j + 80);
		h->post = get64(j + 88);
		bound = h->cut < h->size ? h->cut : h->size;
		if (h->rlen > JV_REGION || h->roff > bound || h->rlen > bound - h->roff)
			return 0; /* no step of the apply may touch the region but its own write */
	}
	off = h->head;
	body = n - JV_TRAIL;
	for (uint64_t i = 0; i < h->count; i++) {
		uint64_t addr, len;

		if (body - off < JV_REC)
			return 0;
		addr = get64(j + off);
		len = get64(j + off + 8);
		off += JV_REC;
		if (len > body - off || addr > h->eof || len > h->eof - addr)
			return 0;
		off += len;
	}
	if (off != body || get64(j + body) != body || memcmp(j + body + 16, JV_END, 8) != 0)
		return 0;
	jsum_init(&sum);
	jsum_update(&sum, j, body);
	return get64(j + body + 8) == jsum_final(&sum) ? 1 : 0;
}

/* A journal file mapped into memory. */
struct jmap {
	unsigned char *p; /* MAP_FAILED when not mapped */
	size_t n;
};

static void jmap_free(struct jmap *m)
{
	if (m->p != MAP_FAILED)
		munmap(m->p, m->n);
	m->p = MAP_FAILED;
}

/* Maps and checks the journal at jpath; *found says whether the file exists. Returns 1 when it
 * is complete (*h filled, *m mapped: jmap_free it), 0 when it is missing, empty or incomplete
 * (nothing mapped), or -errno / -EPROTO (an unknown version) with *what naming the step. */
static int journal_load(const char *jpath, struct jmap *m, struct jhead *h, bool *found, const char **what)
{
	struct stat st;
	int fd, rc = 0;

	m->p = MAP_FAILED;
	m->n = 0;
	*found = false;
	*what = "cannot open";
	fd = open(jpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	*found = true;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size < JV_HEAD_V1 + JV_TRAIL)
		goto out;
	*what = "cannot map";
	m->p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m->p == MAP_FAILED) {
		rc = -errno;
		goto out;
	}
	m->n = (size_t)st.st_size;
	rc = journal_check(m->p, m->n, h);
	if (rc < 0)
		*what = "unknown journal version in";
	if (rc <= 0)
		jmap_free(m);
out:
	close(fd);
	return rc;
}

/* Whether the file open at fd is in a state the version-2 journal h was written against (see
 * the header comment). Reads the bound region into img (JV_REGION bytes). Returns 0, -ESTALE
 * with *why saying what differs, or -errno. */
static int journal_bound(int fd, const struct jhead *h, unsigned char *img, const char **why)
{
	uint64_t floor = h->cut < h->size ? h->cut : h->size, sum;
	struct stat st;
	ssize_t got;

	if (fstat(fd, &st) < 0)
		return -errno;
	*why = "it is another inode: it was replaced";
	if ((uint64_t)st.st_dev != h->dev || (uint64_t)st.st_ino != h->ino)
		return -ESTALE;
	*why = "it is shorter than that commit ever leaves it: it was truncated or replaced";
	if ((uint64_t)st.st_size < floor)
		return -ESTALE;
	got = pread_full(fd, img, (size_t)h->rlen, h->roff);
	if (got < 0)
		return (int)got;
	sum = region_sum(img, (uint64_t)got);
	*why = "its superblock region differs: it was replaced or changed";
	if ((uint64_t)got != h->rlen || (sum != h->pre && sum != h->post))
		return -ESTALE;
	return 0;
}

/* The one-line refusal of a journal that is not shown to belong to the file. */
static void refusal(char *err, size_t cap, const char *jpath, const char *path, const struct jhead *h,
		    const char *why)
{
	if (!err || !cap)
		return;
	if (h->version < 2)
		snprintf(err, cap,
			 "'%s' was left by an older h5mount and does not say which state of '%s' it belongs to; "
			 "the file is left as it is: replay it with that h5mount, or move the journal away to mount it",
			 jpath, path);
	else
		snprintf(err, cap,
			 "'%s' belongs to another state of '%s' (%s); the file is left as it is: "
			 "move the journal away to mount it", jpath, path, why);
}

/* Applies a checked version-2 journal to path and fsyncs it, after checking under the file's
 * lock that it belongs to the file (-ESTALE, *why set, nothing touched). Returns 0 or -errno,
 * *what saying which step. */
static int journal_apply(const char *path, const unsigned char *j, const struct jhead *h, const char **what,
			 const char **why)
{
	unsigned char img[JV_REGION];
	uint64_t off = h->head, end = h->cut;
	struct stat st;
	int fd, rc = 0;

	*what = "cannot open";
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*what = "cannot lock";
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 && errno != ENOSYS) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno; /* open elsewhere */
		goto out;
	}
	*what = "cannot read";
	if ((rc = journal_bound(fd, h, img, why)) != 0)
		goto out;
	*what = "cannot write";
	if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size != h->cut && ftruncate(fd, (off_t)h->cut) < 0)) {
		rc = -errno;
		goto out;
	}
	for (uint64_t i = 0; i < h->count; i++) {
		uint64_t addr = get64(j + off), len = get64(j + off + 8);
		const unsigned char *data = j + off + JV_REC;
		uint64_t lo = addr > h->roff ? addr : h->roff;
		uint64_t hi = addr + len < h->roff + h->rlen ? addr + len : h->roff + h->rlen;

		if (lo < hi)
			memcpy(img + (lo - h->roff), data + (lo - addr), (size_t)(hi - lo));
		if ((rc = file_write_outside(fd, data, (size_t)len, addr, h->roff, h->rlen)) != 0)
			goto out;
		off += JV_REC + len;
		if (addr + len > end)
			end = addr + len;
	}
	/* The bound region last, at once: until here it is as before the commit. */
	if (h->rlen && (rc = file_write(fd, img, (size_t)h->rlen, h->roff)) != 0)
		goto out;
	if ((h->eof != end && ftruncate(fd, (off_t)h->eof) < 0) || fsync(fd) < 0)
		rc = -errno;
out:
	close(fd);
	return rc;
}

int h5m_jvfd_recover(const char *path, char *err, size_t cap)
{
	char *jpath = concat(path, H5M_JVFD_SUFFIX), *jtmp = jpath ? concat(jpath, JV_TMP) : NULL;
	char *dir = dir_of(path);
	const char *what = "cannot recover", *whom = path, *why = "";
	struct jmap m = { .p = MAP_FAILED };
	struct jhead h = { 0 };
	bool found = false;
	int rc = 0, ok = 0;

	if (!jpath || !jtmp || !dir) {
		rc = -ENOMEM;
		goto out;
	}
	whom = jpath;
	ok = journal_load(jpath, &m, &h, &found, &what);
	if (ok < 0) {
		rc = ok;
		goto out; /* kept: it may be complete, for a newer h5mount */
	}
	if (ok && h.version < JV_VERSION) {
		rc = -ESTALE;
		refusal(err, cap, jpath, path, &h, why);
		goto out;
	}
	if (ok) {
		whom = path;
		rc = journal_apply(path, m.p, &h, &what, &why);
		if (rc == -ESTALE)
			refusal(err, cap, jpath, path, &h, why);
		if (rc)
			goto out;
	}
	/* Replayed, or incomplete (that commit never touched the file), or empty (it finished). A
	 * .tmp journal was never renamed into place: its commit never touched the file either. */
	what = "cannot remove";
	whom = jtmp;
	if ((rc = unlink_if_present(jtmp)) != 0)
		goto out;
	if (found) {
		whom = jpath;
		if ((rc = unlink_if_present(jpath)) != 0)
			goto out;
		fsync_dir(dir); /* best effort: a replay that comes back is harmless */
	}
	rc = ok;
out:
	jmap_free(&m);
	if (rc < 0 && rc != -ESTALE && err && cap)
		snprintf(err, cap, "%s '%s': %s", what, whom, strerror(-rc));
	free(dir);
	free(jtmp);
	free(jpath);
	return rc;
}

int h5m_jvfd_inspect(const char *path, char *err, size_t cap)
{
	char *jpath = concat(path, H5M_JVFD_SUFFIX);
	const char *what = "cannot inspect", *whom = path, *why = "";
	unsigned char img[JV_REGION];
	struct jmap m = { .p = MAP_FAILED };
	struct jhead h = { 0 };
	bool found;
	int fd = -1, rc;

	if (!jpath) {
		rc = -ENOMEM;
		goto out;
	}
	whom = jpath;
	rc = journal_load(jpath, &m, &h, &found, &what);
	if (rc <= 0)
		goto out;
	if (h.version < JV_VERSION) {
		rc = -ESTALE;
		refusal(err, cap, jpath, path, &h, why);
		goto out;
	}
	what = "cannot open";
	whom = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	what = "cannot read";
	rc = journal_bound(fd, &h, img, &why);
	if (rc == -ESTALE)
		refusal(err, cap, jpath, path, &h, why);
	if (rc == 0)
		rc = 1;
out:
	if (fd >= 0)
		close(fd);
	jmap_free(&m);
	if (rc < 0 && rc != -ESTALE && err && cap)
		snprintf(err, cap, "%s '%s': %s", what, whom, strerror(-rc));
	free(jpath);
	return rc;
}

/* For a read-only open of f: holds the extents of a complete journal that belongs to the file
 * as if just written, so that the file reads as a replay would leave it; touches neither the
 * file nor the journal, and ignores an incomplete one. Returns 0, or -ESTALE (another state of
 * the file, or a version-1 journal), -EPROTO, -errno, with *what naming the reason. */
static int show_journal(struct jv_file *f, const char **what)
{
	unsigned char img[JV_REGION];
	struct jmap m;
	struct jhead h;
	const char *why;
	bool found;
	uint64_t off;
	int rc = journal_load(f->jpath, &m, &h, &found, what);

	if (rc <= 0)
		return rc;
	*what = "a journal of an older h5mount (replay it with that h5mount) in";
	if (h.version < JV_VERSION) {
		rc = -ESTALE;
		goto out;
	}
	*what = "a journal that belongs to another state of the file in";
	if ((rc = journal_bound(f->fd, &h, img, &why)) != 0)
		goto out;
	*what = "cannot hold the journal";
	off = h.head;
	for (uint64_t i = 0; i < h.count; i++) {
		uint64_t addr = get64(m.p + off), len = get64(m.p + off + 8);

		if (len && (rc = hold(f, addr, m.p + off + JV_REC, (size_t)len)) != 0) {
			drop_overlay(f);
			goto out;
		}
		off += JV_REC + len;
	}
	if (h.cut < f->cut)
		f->cut = h.cut;
	f->base = h.eof;
out:
	jmap_free(&m);
	return rc;
}

void h5m_jvfd_crash_after_journal(bool on)
{
	crash_after_journal = on;
}

void h5m_jvfd_crash_after_file_writes(unsigned n)
{
	crash_after_writes = n;
}
