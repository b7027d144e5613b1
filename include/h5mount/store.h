/* store.h: the HDF5 layer's object side. Opens a file, lists groups lazily as a table of nodes
 * (one per object, so hard links share a node; a group's names but its first are symlink
 * nodes), describes datasets, reads attributes, changes names (the namespace section),
 * commits. Raw data I/O is chunkio.h's,
 * variable-length reads vlen.h's. Knows nothing of FUSE: errors are negative errno values.
 *
 * Locking: every HDF5 call goes through one named mutex, taken with h5m_hdf5_lock() (declared
 * in src/store_priv.h) and held only inside the HDF5 layer (store.c, chunkio.c, vlen.c). Nodes
 * are never freed before h5m_store_close(), so node pointers stay valid. */
#ifndef H5MOUNT_STORE_H
#define H5MOUNT_STORE_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <hdf5.h>

#include "h5mount/blocks.h"
#include "h5mount/blosc.h"
#include "h5mount/create.h"
#include "h5mount/dtype.h"

enum h5m_node_type {
	H5M_NODE_GROUP,
	H5M_NODE_DATASET,
	H5M_NODE_SOFTLINK,   /* soft or external link: a symlink with `target` */
};

/* What a directory entry shows of a node. */
enum h5m_view {
	H5M_VIEW_OBJ = 0,     /* the group, the raw dataset bytes, or the symlink */
	H5M_VIEW_NPY = 1,     /* dataset behind a .npy header */
	H5M_VIEW_SHAPE = 2,   /* dataset shape text */
	H5M_VIEW_OFFSETS = 3, /* vlen datasets: int64 row offsets */
};
#define H5M_NVIEWS 4

struct h5m_dirent {
	char *name;
	uint32_t node;
	enum h5m_view view;
};

/* What the store knows of a dataset: what is fixed at open, plus the extent in the HDF5 file
 * (changed only by h5m_chunkio_set_extent) and what lives under the HDF5 lock. The views keep
 * their own state of it (logical dims, block geometry, held row...: struct h5m_vds in
 * vdataset.h) in the `vds` slot, which the store never reads. */
struct h5m_dataset {
	char *path;                /* HDF5 path (the first one found; a rename sets the new one
	                            * with an atomic store and keeps the old text until close, so
	                            * a reader without a lock sees one whole text), for log lines */
	struct h5m_dtype dt;       /* immutable after creation; dt.mem_type is the memory type of
	                            * every H5Dread/H5Dwrite of a fixed-size dataset */
	unsigned rank;             /* dataset rank (without array-type dims) */
	bool null_space;           /* an H5S_NULL dataspace: no elements and no shape. Shown as rank
	                            * 1 with no rows (`x` empty, read-only), `x.shape` empty, no
	                            * `x.npy` (no numpy shape says "no shape") */
	bool chunked;
	bool direct;               /* no filter, or only Blosc, and served as stored (not
	                            * dt.converted): chunks are read raw and decoded outside the
	                            * HDF5 lock, in parallel */
	bool blosc;                /* Blosc is the (only) filter */
	unsigned blosc_cd[H5M_BLOSC_CD_MAX]; /* its cd_values (blosc_ncd of them) */
	size_t blosc_ncd;
	size_t chunk_bytes;        /* bytes of one whole chunk (chunked datasets) */
	bool writable;             /* file opened for writing, a fixed-size type served as stored */
	uint64_t chunk[H5M_NPY_MAXDIMS];
	uint64_t maxdims[H5M_NPY_MAXDIMS]; /* UINT64_MAX for unlimited */
	unsigned char *fill;       /* one element of the fill value as served (dt.elem_size bytes) */
	bool fill_skipped;         /* fill time "never", or "if set" with no fill value: HDF5 leaves
	                            * the read buffer untouched where storage was never written
	                            * (contiguous: never allocated; chunked: missing chunks), so
	                            * reads fill it first */
	bool zero_fill;            /* the fill value is all zero bytes */
	size_t npy_header_len;     /* fixed .npy header length */
	int64_t contig_offset;     /* file offset (user block included) of raw contiguous data that
	                            * is allocated and served as stored, or -1 */
	bool raw_rows;             /* read-only mount, no filter, chunks of whole rows (all the
	                            * trailing dims): h5m_chunkio_pread_rows reads any byte range */
	uint64_t dims[H5M_NPY_MAXDIMS]; /* the extent in the HDF5 file: set at open, changed only by
	                            * h5m_chunkio_set_extent (W: views' wlock + HDF5 lock; R: either,
	                            * or none before the views' state of the dataset exists: the
	                            * views create it from these dims before any write can set them) */
	struct h5m_blocks blocks;  /* fixed-size: the block geometry of the dims at open (immutable);
	                            * the views start from it and keep the live one */
	uint64_t h5rows;           /* dims[0] in the HDF5 file (W: views' wlock + HDF5 lock, in
	                            * h5m_chunkio_set_extent; R: either) */
	uint64_t nrows;            /* vlen: number of rows (all elements, C order) */
	uint64_t *offsets;         /* vlen: nrows + 1 element offsets, or NULL until computed (HDF5 lock) */
	struct h5m_vds *vds;       /* the views' state of this dataset, or NULL: set once by the
	                            * views (release), read with acquire ordering, freed by the
	                            * views; the store never reads it */
	struct h5m_remote *remote; /* the store's fetcher when the file is remote (remote.h), else
	                            * NULL: chunk bytes come from it (immutable) */
	bool read_error_logged;    /* HDF5 lock */
	hid_t did;                 /* the open dataset, or H5I_INVALID_HID once a retype replaced
	                            * it (h5m_store_drop_replaced) (HDF5 lock) */
	hid_t ftype;               /* its stored element type (HDF5 lock) */
	uint64_t storage_bytes;    /* h5m_store_storage_size's last answer (atomic) ... */
	uint64_t storage_key;      /* ... for this state of the file (atomic; 0: none yet) */
};

struct h5m_node {
	enum h5m_node_type type;
	uint32_t idx;
	char *target;                   /* symlinks: link text (immutable) */
	struct h5m_dataset *ds;         /* datasets */
	haddr_t addr;                   /* object header address (groups, datasets) */
	/* Groups: the sorted entries, filled on first listing (under a read-held namespace lock
	 * plus the HDF5 lock, published with `listed`), then changed only by namespace operations
	 * (namespace lock write-held). R: namespace lock (read) after `listed` (acquire). */
	bool listed;
	struct h5m_dirent *ents;
	size_t nents;
	char *path;                     /* groups: the HDF5 path of its one directory (its first
	                                 * path: the one a breadth-first walk from the root in name
	                                 * order reaches first), by which it is opened (HDF5 1.10.8
	                                 * crashes in H5Lmove on a group opened by address) and
	                                 * logged; renames update it and every path below it
	                                 * (W: namespace lock write-held + HDF5 lock; R: HDF5 lock) */
	uint32_t parent;                /* groups: the node of the group whose directory holds it
	                                 * (the root: 0) (W: namespace write; R: namespace lock) */
	uint8_t shown;                  /* datasets: bit 1u << view for each of its names shown,
	                                 * set at listing from h5m_store_has_view; unlink clears
	                                 * one (W: namespace write, atomic store; R: atomic load) */
	bool untyped;                   /* datasets created through the mount (h5m_store_create) and
	                                 * not yet given a type: 1-D uint8 (ns-model rule 4)
	                                 * (immutable: typing makes a new node) */
	uint32_t successor;             /* datasets: the node that replaced this one when it was
	                                 * given a new type (h5m_store_retype), else 0. A retype never
	                                 * changes a struct h5m_dataset (readers hold none of our
	                                 * locks): the old node is gone with this set, its dataset
	                                 * lives on unchanged until close, and fs.c follows the
	                                 * successor for the old node's inodes (W: namespace write,
	                                 * release, before `gone`; R: acquire) */
	bool gone;                      /* removed from the namespace: no longer found by lookup,
	                                 * listing or h5m_store_shows; the node (and an open
	                                 * dataset's handle) lives on until close, its index is
	                                 * never reused (W: namespace write, atomic; R: atomic) */
};

struct h5m_store;
struct h5m_vds;

/* Registers Blosc, turns HDF5's automatic error printing off. Call once before any store. */
int h5m_store_global_init(void);

/* Flags of h5m_store_open. */
#define H5M_STORE_HOST_ELINKS 1u  /* external links become symlinks to host paths (FILE//PATH,
                                   * a relative FILE from the directory of `path`) instead of
                                   * dangling ones */

/* Opens `path` (for writing when `rw`; a file that cannot be opened for writing is refused
 * with -EACCES/-EROFS) and lists its root group. A complete journal left by a crash is
 * replayed first when `rw`, and shown from memory (file and journal unchanged) when not; one
 * that belongs to another state of the file is refused with -ESTALE and err saying so. On
 * failure returns -errno and writes a one-line reason to err[cap]: "No such file or
 * directory", "is not an HDF5 file", or (-EIO) the reason HDF5 gives. `block_target` is the
 * preferred cache block size; `flags` are H5M_STORE_* flags. HDF5's own chunk caches, which
 * datasets whose blocks cut their chunks need (each up to one stripe of chunks, at most 64 MiB),
 * take together at most `chunk_cache_budget` bytes, first opened first served; a dataset that
 * finds the budget used up reads without one (each block read decodes its chunks again).
 *
 * Symlink texts (soft and external links) never lead out of the mount: "../" at most as many
 * times as the link's group lies below the root on every path to it, then components that are
 * not empty, "." or ".."; links that cannot be shown so (a ".." component, an absolute target
 * in a group linked under several names, external links without H5M_STORE_HOST_ELINKS) get
 * the single component "h5mount-dangling:KIND:TARGET" ('/' and '%' as %2F and %25, at most
 * 255 bytes) and a log line.
 *
 * A group has one directory, at its first path (breadth-first from the root, members in name
 * order, through names that are shown; the same whatever order directories are listed in).
 * Each other hard link to it (a second name, a cycle back up) is a symlink node whose text
 * climbs from its directory to the root and descends along that path. Finding first paths
 * walks every group of the file once, when listing first meets a group of several links. */
int h5m_store_open(const char *path, bool rw, size_t block_target, size_t chunk_cache_budget, unsigned flags,
                   struct h5m_store **out, char *err, size_t cap);

struct h5m_remote;

/* h5m_store_open of the remote file r (remote.h), read-only: metadata through HDF5's ROS3
 * driver, data bytes through r's fetcher. The store borrows r: free it after h5m_store_close.
 * Returns as h5m_store_open ("is not an HDF5 file": -EINVAL; -EIO with HDF5's reason). */
int h5m_store_open_remote(struct h5m_remote *r, size_t block_target, size_t chunk_cache_budget,
                          struct h5m_store **out, char *err, size_t cap);

/* Whether the store was opened for writing. */
bool h5m_store_writable(struct h5m_store *s);

/* The preferred cache block size given at open. */
size_t h5m_store_block_target(struct h5m_store *s);

/* Closes every HDF5 handle and frees every node. */
void h5m_store_close(struct h5m_store *s);

/* The same, for a process about to exit, except that a read-only file is not closed: HDF5
 * 1.10.8 crashed evicting the metadata cache of damaged files at close, and a read-only file
 * has nothing to save. Its memory stays reachable from HDF5's globals until the exit. */
void h5m_store_close_at_exit(struct h5m_store *s);

/* The node with index `idx`, or NULL when there is none. Lock-free. */
struct h5m_node *h5m_store_node(struct h5m_store *s, uint64_t idx);

/* Lists group `dir` (its entries are filled on first use). Returns 0 with *ents and *n pointing at
 * the entries, -ENOTDIR, or -EIO when HDF5 cannot iterate it. The pointers are only safe while
 * no namespace operation can run (a read-only store, the check before mounting, unit tests):
 * a mounted read-write file system uses h5m_store_list_each and h5m_store_find. */
int h5m_store_list(struct h5m_store *s, struct h5m_node *dir, const struct h5m_dirent **ents, size_t *n);

/* Whether dataset node n shows view `view` (x.offsets only for variable-length datasets, x.npy
 * not for null dataspaces); true for the OBJ view of every node. Lock-free. */
bool h5m_store_has_view(const struct h5m_node *n, enum h5m_view view);

/* Finds `name` in group `dir`. Returns the entry or NULL (errno-style code in *err: -ENOENT,
 * -ENOTDIR, -EIO). Same caveat as h5m_store_list. */
const struct h5m_dirent *h5m_store_lookup(struct h5m_store *s, struct h5m_node *dir, const char *name, int *err);

/* ---- the namespace (issue 13; the rules are README's "Names: create, remove, rename, link") ----
 *
 * Locking: one namespace lock (a writer-preferring rwlock, lock.h) guards every group's
 * entries, each dataset's `shown` mask, `gone` flags, group paths and parents. Readers
 * (h5m_store_find, h5m_store_list_each) read-hold it only inside the call; each operation
 * below write-holds it, and the HDF5 lock inside it, for the HDF5 calls and the durable
 * commit that ends it. Nothing else is held across them, and callers hold no lock of ours.
 * Every operation returns 0 or -errno: -EROFS on a read-only store, -ENOTDIR when `dir` is
 * not a group, -ENOENT for a name not shown, -EINVAL/-ENAMETOOLONG for names a file or HDF5
 * cannot hold (logged), -EEXIST for a name shown or colliding with a generated view (logged),
 * -EIO/-ENOSPC when HDF5 or the commit fails (logged; the journal keeps the state before). */

/* Whether node n shows name `view` now: h5m_store_has_view, not gone, and (datasets) that
 * name not hidden by unlink. Lock-free. */
bool h5m_store_shows(const struct h5m_node *n, enum h5m_view view);

/* st_nlink of any name of n: datasets the number of names shown (0 once gone), groups 2,
 * symlinks 1. Lock-free. */
unsigned h5m_store_nlink(const struct h5m_node *n);

/* The suffix of view `view` ("", ".npy", ".shape", ".offsets"). */
const char *h5m_store_view_suffix(enum h5m_view view);

/* Finds `name` in group `dir` and copies its node index and view into *node and *view.
 * Returns 0, -ENOENT, -ENOTDIR or -EIO (listing failed). Read-holds the namespace lock. */
int h5m_store_find(struct h5m_store *s, struct h5m_node *dir, const char *name, uint32_t *node,
                   enum h5m_view *view);

/* Called by h5m_store_list_each for entry number `pos` (0 is the first, in name order): its
 * name (valid during the call only) and node. Returns 0 to go on, non-zero to stop. Runs
 * under the namespace lock (read): it must take no lock and call nothing of the store. */
typedef int (*h5m_store_list_fn)(void *ctx, size_t pos, const char *name, const struct h5m_node *n,
                                 enum h5m_view view);

/* Calls fn for the entries of group `dir` from number `from` on, in name order, until fn
 * returns non-zero (fn NULL: only makes sure the group is listed). Returns 0, -ENOTDIR, -EIO
 * or -ENOMEM. Read-holds the namespace lock. */
int h5m_store_list_each(struct h5m_store *s, struct h5m_node *dir, size_t from, h5m_store_list_fn fn, void *ctx);

/* Creates group `name` in `dir` (default creation properties, as h5py and PyTables make
 * them; UTF-8 link name) and commits. *node: the new group's node. -EEXIST when the name is
 * shown, or is NAME.npy/.shape/.offsets of a dataset NAME in dir. */
int h5m_store_mkdir(struct h5m_store *s, struct h5m_node *dir, const char *name, uint32_t *node);

/* Removes empty group `name` of `dir` (H5Ldelete) and commits; the node is gone. -ENOTEMPTY
 * when it shows any entry, -ENOTDIR when the name is not a group's directory. */
int h5m_store_rmdir(struct h5m_store *s, struct h5m_node *dir, const char *name);

/* What h5m_store_unlink did. */
struct h5m_unlinked {
	uint32_t node;     /* the node whose name was removed */
	enum h5m_view view;
	bool deleted;      /* that was its last name: its HDF5 link was deleted (the node is gone;
	                    * for a dataset, the caller drops its cached and dirty blocks) */
};

/* Removes name `name` of `dir`: a symlink's HDF5 link is deleted; a dataset's name is hidden
 * for the life of the store, and the last one deletes the dataset's link (then committed).
 * -EISDIR for a group's name; -EPERM (logged) for a dataset with several hard links. */
int h5m_store_unlink(struct h5m_store *s, struct h5m_node *dir, const char *name, struct h5m_unlinked *out);

/* Creates soft link `name` in `dir` showing `text` and commits. Relative texts that stay
 * inside the mount are kept as shown; HDF5 gets the path they name (relative when they never
 * climb, else absolute). Absolute texts, or texts climbing above the mount's root: -EPERM
 * (logged; a soft link names an object of the file). *node: the symlink's node. */
int h5m_store_symlink(struct h5m_store *s, struct h5m_node *dir, const char *name, const char *text,
                      uint32_t *node);

#define H5M_RENAME_NOREPLACE 1u

/* What h5m_store_rename did. */
struct h5m_renamed {
	uint32_t node;         /* the object moved */
	enum h5m_view view;    /* the view the old name was of (datasets; else OBJ) */
	int64_t replaced;      /* the node of the object it replaced (its link deleted, the node
	                        * gone when that was its last link), or -1 */
	bool replaced_deleted; /* the replaced object is gone (caller drops a dataset's blocks) */
};

/* Renames name `name` of `dir` to `newname` in `newdir` (H5Lmove; a dataset's views follow,
 * hidden names stay hidden), replacing what newname names, in one commit. A dataset's name
 * keeps its suffix (x.npy -> y.npy; x -> y.npy is -EINVAL). Onto a group: -EISDIR (a dataset
 * or symlink moved), -ENOTEMPTY (a group moved onto a group showing entries); a group onto a
 * non-group: -ENOTDIR; a group into itself or below: -EINVAL; with H5M_RENAME_NOREPLACE onto
 * anything: -EEXIST. A symlink to another directory: -EXDEV (its text is relative to its
 * directory; mv then copies it). Renaming a name onto another name of the same object: 0,
 * nothing changes. */
int h5m_store_rename(struct h5m_store *s, struct h5m_node *dir, const char *name, struct h5m_node *newdir,
                     const char *newname, unsigned flags, struct h5m_renamed *out);

/* How datasets created through the mount are laid out (-o chunk_size, -o compress); copied.
 * Call before serving requests. Zeroed (the heuristic, no compression) until then. */
void h5m_store_set_layout(struct h5m_store *s, const struct h5m_layout *lay);

/* What h5m_store_create did. */
struct h5m_created {
	uint32_t node;     /* the dataset node opened through the name */
	enum h5m_view view;
	bool existed;      /* the name was shown already (no O_EXCL): opened as it is */
	bool reshown;      /* the name was a hidden name of an existing dataset, shown again (the
	                    * caller opens it as if with O_TRUNC, deferred to the first write:
	                    * ns-model rule 3 amended) */
};

/* Creates name `name` in `dir` for a file (O_CREAT): NAME, NAME.npy or NAME.shape of dataset
 * NAME. A new dataset is an untyped 1-D uint8 dataset (node->untyped) made by
 * h5m_create_dataset with the layout of h5m_store_set_layout, shown only under `name`, and
 * committed durably. A hidden name of an existing dataset is shown again (reshown); a shown
 * name is -EEXIST with `excl`, else opened (existed). -EEXIST (logged) when NAME or one of its
 * views is another object's name (a group NAME, a group NAME.npy next to a new NAME) or an
 * HDF5 link not shown; -EINVAL (logged) for NAME.offsets (a view of variable-length data) and
 * names check_new_name refuses; -ENOTSUP (logged: Blosc not registered). Namespace lock
 * write-held, HDF5 lock inside. */
int h5m_store_create(struct h5m_store *s, struct h5m_node *dir, const char *name, bool excl,
                     struct h5m_created *out);

/* What h5m_store_retype did. */
struct h5m_retyped {
	uint32_t node;     /* the new dataset node, which now holds every shown name of the old */
	uint32_t dir;      /* the group node whose directory shows them */
	char *base;        /* the dataset's link name (malloc'd: the caller frees it) */
};

/* Replaces dataset node n by a new, empty dataset of the .npy descr `descr` with trailing
 * dims tdims[0..trank) under the same link name (h5m_create_replace: attributes kept, layout
 * chosen anew), in one durable commit (ns-model rules 4 and 5). The new node shows the names
 * the old one showed; the old node becomes gone with `successor` set, and its struct
 * h5m_dataset is left unchanged for requests that still hold it (freed at close). The caller
 * copies the bytes it keeps into the new one (which starts empty) and drops the old one's
 * blocks. `untyped`: the new node is untyped too (shape text gave an untyped dataset another
 * rank: a .npy header may still type it).
 * Returns 0, -ENOENT (n is gone), -EPERM (several hard links, logged), -ENOTSUP / -EINVAL (a
 * descr HDF5 cannot hold as the read path serves it, logged with why), -EROFS, -EIO/-ENOSPC.
 * Namespace lock write-held, HDF5 lock inside. */
int h5m_store_retype(struct h5m_store *s, struct h5m_node *n, const char *descr, unsigned trank,
                     const uint64_t *tdims, bool untyped, struct h5m_retyped *out);

/* Closes the HDF5 handle of dataset node n replaced by h5m_store_retype, once the caller took
 * what it keeps of it: HDF5 then frees the unlinked dataset's space (reused within the
 * session), so repeated replaces do not grow the file. The struct stays (a request in flight
 * may hold it: its HDF5 calls then fail with -EIO; fs.c sends every new request to the
 * successor). No-op for a node not replaced. Takes the HDF5 lock. */
void h5m_store_drop_replaced(struct h5m_store *s, struct h5m_node *n);

/* A dataset node, following successors (retypes) to the current one. Lock-free. */
struct h5m_node *h5m_store_current(struct h5m_store *s, struct h5m_node *n);

/* Bytes of the flat data of a variable-length dataset: total base elements * base size
 * (computes the offsets on first use). Returns 0, -EIO, or -EINVAL for fixed-size datasets,
 * whose size the views keep (they change it). Takes the HDF5 lock. */
int h5m_store_data_size(struct h5m_store *s, struct h5m_dataset *ds, uint64_t *bytes);

/* Bytes of the file that dataset ds's data occupies (HDF5's storage size: chunks as stored,
 * compressed; contiguous or compact data), as last committed; remembered until the file
 * changes (its size or mtime), so that a stat of a view costs no HDF5 call. Takes the HDF5
 * lock only to recompute. Returns 0 (with 0 bytes when HDF5 cannot say). */
int h5m_store_storage_size(struct h5m_store *s, struct h5m_dataset *ds, uint64_t *bytes);

/* Fills `len` bytes at buf with the fill value, starting at byte `phase` of an element. */
void h5m_store_fill(const struct h5m_dataset *ds, void *buf, size_t len, uint64_t phase);

/* Bytes written through HDF5 but not yet committed (held by the journal driver). */
size_t h5m_store_uncommitted(struct h5m_store *s);

/* Commits everything written so far (H5Fflush; the journal driver makes it atomic), fsyncing
 * when `durable`. Returns 0, -ENOSPC or -EIO (logged). Takes the HDF5 lock. */
int h5m_store_commit(struct h5m_store *s, bool durable);

/* Extended attributes of a group or dataset node: the NUL-separated "user.<name>" list
 * (malloc'd, *len bytes) or the text of one attribute named `name` (without "user.").
 * Return 0, -ENODATA (no such attribute, or a node with none: get), -EIO, -ENOMEM, or -E2BIG
 * (get: values stored in more than 16 MiB, refused before allocating; logged). Every view of a
 * dataset shows the same attributes (they are names of one object). */
int h5m_store_xattr_list(struct h5m_store *s, struct h5m_node *n, char **list, size_t *len);
int h5m_store_xattr_get(struct h5m_store *s, struct h5m_node *n, const char *name, char **val, size_t *len);

/* Flags of h5m_store_xattr_set (the values of setxattr(2)'s XATTR_CREATE and XATTR_REPLACE). */
#define H5M_XATTR_CREATE 1u   /* fail with -EEXIST when the attribute exists */
#define H5M_XATTR_REPLACE 2u  /* fail with -ENODATA when it does not */
/* The longest text written (the kernel's own bound on an xattr value, XATTR_SIZE_MAX). */
#define H5M_XATTR_MAX 65536

/* Writes attribute `name` (without "user.") of a group or dataset node from text val[0, len).
 * An existing attribute keeps its type and shape: the text is parsed as them (attrtext.h),
 * and text equal to the attribute's own text (what h5m_store_xattr_get gives) writes nothing.
 * A new attribute is a scalar string: variable-length UTF-8 (as h5py writes a str), or, when
 * the text is not UTF-8, fixed-length ASCII of its bytes (as h5py writes numpy.bytes_). A
 * change is committed at once, durably (one journaled commit: before or after, never half).
 * Returns 0, -EROFS (read-only store), -EEXIST / -ENODATA (flags), -EINVAL (text that does not
 * parse as the attribute's type, a NUL byte in a new one, an empty name or one that is not
 * UTF-8: nothing changes),
 * -E2BIG (more than H5M_XATTR_MAX bytes, or a non-UTF-8 text over 60 KiB), -ENOTSUP (a node
 * with no attributes), -EIO, -ENOSPC or -ENOMEM; each failure but the flags' is logged with the
 * attribute and why. If the commit fails (-EIO, -ENOSPC) the change stays held and the next
 * commit retries it. Takes the HDF5 lock. */
int h5m_store_xattr_set(struct h5m_store *s, struct h5m_node *n, const char *name, const char *val, size_t len,
                        unsigned flags);

/* Deletes attribute `name` of a group or dataset node and commits, durably. Returns 0,
 * -ENODATA (no such attribute, or a node with none), -EROFS, -EIO (logged) or -ENOSPC. Takes
 * the HDF5 lock. */
int h5m_store_xattr_remove(struct h5m_store *s, struct h5m_node *n, const char *name);

/* Modification time of the HDF5 file (seconds). */
int64_t h5m_store_mtime(struct h5m_store *s);

/* fstat of the HDF5 file (owner, group, mode for the views). Returns 0 or -errno. */
int h5m_store_stat(struct h5m_store *s, struct stat *st);

/* Owner, group and permission bits of the HDF5 file itself (the mount shows them on every
 * name): fchown to uid/gid ((uid_t)-1 / (gid_t)-1 keep one), then fchmod to mode & 0777
 * ((mode_t)-1: keep). The caller has checked the requester may (the kernel's
 * default_permissions). Returns 0, -EROFS (read-only store) or fchown/fchmod's -errno. No lock. */
int h5m_store_set_owner_mode(struct h5m_store *s, mode_t mode, uid_t uid, gid_t gid);

/* futimens(2) of the HDF5 file: access and modification times (UTIME_NOW / UTIME_OMIT as
 * there). The store keeps them until a commit writes to the file, and puts them back after
 * closing it (the close's commit of HDF5's open-for-write flags is no change of the data; a
 * read-write open keeps the file's own times the same way, so a mount that changes nothing
 * leaves them as they were).
 * Returns 0, -EROFS or -errno. Takes the HDF5 lock. */
int h5m_store_set_times(struct h5m_store *s, const struct timespec ts[2]);

#endif
