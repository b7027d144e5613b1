/* fs.c: FUSE low-level callbacks for h5mount; the only place that speaks FUSE. It maps inode
 * numbers to (node, view), replies, and turns negative errno into fuse_reply_err once. */
#include "fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "h5mount/log.h"

/* Inode numbers: node index * H5M_NVIEWS + view + 1, so the root group (node 0) is FUSE_ROOT_ID. */
static fuse_ino_t ino_of(uint32_t node, enum h5m_view view)
{
	return (fuse_ino_t)node * H5M_NVIEWS + (fuse_ino_t)view + 1;
}

static struct h5m_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Resolves ino to a node and view that exist. Returns 0 or -ENOENT. */
static int resolve(struct h5m_fs *fs, fuse_ino_t ino, struct h5m_node **n, enum h5m_view *view)
{
	uint64_t idx;

	if (ino < 1)
		return -ENOENT;
	idx = (ino - 1) / H5M_NVIEWS;
	*view = (enum h5m_view)((ino - 1) % H5M_NVIEWS);
	*n = h5m_store_node(fs->store, idx);
	if (!*n)
		return -ENOENT;
	if (*view != H5M_VIEW_OBJ && (*n)->type != H5M_NODE_DATASET)
		return -ENOENT;
	if (*view == H5M_VIEW_OFFSETS && (*n)->ds->dt.kind == H5M_DT_FIXED)
		return -ENOENT;
	return 0;
}

static int fill_stat(struct h5m_fs *fs, struct h5m_node *n, enum h5m_view view, struct stat *st)
{
	uint64_t size = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino_of(n->idx, view);
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = fs->mtime;
	st->st_blksize = 1 << 17;
	switch (n->type) {
	case H5M_NODE_GROUP:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	case H5M_NODE_SOFTLINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(n->target);
		return 0;
	case H5M_NODE_DATASET:
		rc = h5m_view_size(fs->views, n, view, &size);
		if (rc)
			return rc;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blocks = (blkcnt_t)((size + 511) / 512);
		return 0;
	}
	return -EIO;
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : EIO);
}

static void h5m_fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct h5m_fs *fs = fs_of(req);
	struct fuse_entry_param e;
	const struct h5m_dirent *d;
	struct h5m_node *dir, *n;
	enum h5m_view view;
	int rc;

	rc = resolve(fs, parent, &dir, &view);
	if (rc)
		goto fail;
	d = h5m_store_lookup(fs->store, dir, name, &rc);
	if (!d)
		goto fail;
	n = h5m_store_node(fs->store, d->node);
	memset(&e, 0, sizeof(e));
	rc = fill_stat(fs, n, d->view, &e.attr);
	if (rc)
		goto fail;
	e.ino = e.attr.st_ino;
	e.attr_timeout = fs->timeout;
	e.entry_timeout = fs->timeout;
	fuse_reply_entry(req, &e);
	return;
fail:
	reply_err(req, rc);
}

static void h5m_fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	struct stat st;
	int rc;

	(void)fi;
	rc = resolve(fs, ino, &n, &view);
	if (!rc)
		rc = fill_stat(fs, n, view, &st);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, fs->timeout);
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
	const struct h5m_dirent *ents;
	struct h5m_node *n;
	enum h5m_view view;
	size_t count;
	int rc = resolve(fs, ino, &n, &view);

	if (!rc)
		rc = h5m_store_list(fs->store, n, &ents, &count);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void h5m_fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	const struct h5m_dirent *ents;
	struct h5m_node *n;
	enum h5m_view view;
	size_t count, used = 0;
	char *buf;
	int rc = resolve(fs, ino, &n, &view);

	(void)fi;
	if (!rc)
		rc = h5m_store_list(fs->store, n, &ents, &count);
	if (rc) {
		reply_err(req, rc);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2 + i the i-th entry; each entry carries the next offset. */
	for (off_t i = off; i < (off_t)count + 2; i++) {
		struct stat st = { 0 };
		const char *name;
		size_t need;

		if (i < 2) {
			name = i == 0 ? "." : "..";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
		} else {
			const struct h5m_dirent *d = &ents[i - 2];
			struct h5m_node *c = h5m_store_node(fs->store, d->node);

			name = d->name;
			st.st_ino = ino_of(d->node, d->view);
			st.st_mode = c->type == H5M_NODE_GROUP ? S_IFDIR : c->type == H5M_NODE_SOFTLINK ? S_IFLNK : S_IFREG;
		}
		need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void h5m_fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	int rc = resolve(fs, ino, &n, &view);

	if (rc) {
		reply_err(req, rc);
		return;
	}
	if (n->type == H5M_NODE_GROUP) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* Nothing changes while mounted read-only: keep the kernel's page cache across opens. */
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* Each loop thread keeps one reply buffer: a fresh malloc of 128 KiB..1 MiB per request costs
 * an mmap and a page fault per 4 KiB, more than the copy itself. Freed at thread exit. */
static pthread_key_t reply_key;
static pthread_once_t reply_once = PTHREAD_ONCE_INIT;

struct reply_buf {
	size_t cap;
	char data[];
};

static void reply_key_init(void)
{
	pthread_key_create(&reply_key, free);
}

static char *reply_buffer(size_t size)
{
	struct reply_buf *b;

	pthread_once(&reply_once, reply_key_init);
	b = pthread_getspecific(reply_key);
	if (!b || b->cap < size) {
		struct reply_buf *nb = malloc(sizeof(*nb) + (size ? size : 1));

		if (!nb)
			return NULL;
		nb->cap = size;
		free(b);
		pthread_setspecific(reply_key, nb);
		b = nb;
	}
	return b->data;
}

static void h5m_fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	ssize_t got;
	char *buf;
	int rc = resolve(fs, ino, &n, &view);

	(void)fi;
	if (rc || off < 0) {
		reply_err(req, rc ? rc : -EINVAL);
		return;
	}
	if (n->type != H5M_NODE_DATASET) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	buf = reply_buffer(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	got = h5m_view_read(fs->views, n, view, buf, size, (uint64_t)off);
	if (got < 0)
		reply_err(req, (int)got);
	else
		fuse_reply_buf(req, buf, (size_t)got);
}

static void h5m_fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* xattrs: HDF5 attributes of groups and of datasets (on the raw view) as "user.<name>". */
static void h5m_fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct h5m_fs *fs = fs_of(req);
	struct h5m_node *n;
	enum h5m_view view;
	char *list = NULL;
	size_t len = 0;
	int rc = resolve(fs, ino, &n, &view);

	if (!rc && view == H5M_VIEW_OBJ)
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

	if (!rc && (view != H5M_VIEW_OBJ || strncmp(name, "user.", 5) != 0))
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

static void h5m_fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Reads only: no O_TRUNC handling, no writeback cache (see platform notes). */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
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
	.read = h5m_fs_read,
	.statfs = h5m_fs_statfs,
	.listxattr = h5m_fs_listxattr,
	.getxattr = h5m_fs_getxattr,
};

const struct fuse_lowlevel_ops *h5m_fs_ops(void)
{
	return &h5m_ops;
}
