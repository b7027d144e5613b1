/* opts.h: h5mount's command line: its own options table and their validation. FUSE's generic
 * options (-f, -d, -s, -o allow_other, ...) are left in the fuse_args for libfuse. */
#ifndef H5MOUNT_OPTS_H
#define H5MOUNT_OPTS_H

#include <fuse_opt.h>
#include <stdbool.h>
#include <stddef.h>

#include "h5mount/create.h"

struct h5m_config {
	char *file;             /* HDF5 file as given (owned) */
	char *mountpoint;       /* mountpoint as given (owned; also left in args for libfuse) */
	char *cache_size_text;  /* -o cache_size= as given (owned by fuse_opt) */
	size_t cache_size;      /* validated bytes */
	char *dirty_limit_text; /* -o dirty_limit= as given (owned by fuse_opt) */
	size_t dirty_limit;     /* validated bytes */
	char *flush_interval_text; /* -o flush_interval= as given (owned by fuse_opt) */
	unsigned flush_interval;   /* seconds; 0: no periodic write-back */
	char *external_links_text; /* -o external_links= as given (owned by fuse_opt) */
	bool host_elinks;          /* external_links=host: external links point at host paths */
	char *chunk_size_text;  /* -o chunk_size= as given (owned by fuse_opt) */
	char *compress_text;    /* -o compress= as given (owned by fuse_opt) */
	struct h5m_layout layout; /* validated layout of new datasets: chunk_bytes (0: heuristic),
	                           * compression and level */
	char *endpoint;         /* -o endpoint= (owned by fuse_opt): S3-compatible store for s3:// URLs */
	bool read_only;         /* -o ro given */
	bool nocheck;           /* -o nocheck: no check of the file before mounting */
	char *check_timeout_text;  /* -o check_timeout= as given (owned by fuse_opt) */
	unsigned check_timeout;    /* seconds the check may take */
	char *check_memory_text;   /* -o check_memory= as given (owned by fuse_opt) */
	size_t check_memory;       /* resident bytes the check may use */
	bool show_help, show_version;
	char *views_text;       /* -o views= as given (owned by fuse_opt) */
	unsigned views_shown;   /* bit (1 << enum h5m_view) per dataset view shown; default all */
	char *log_path;         /* -o log= as given (owned by fuse_opt): log to this file */
	bool unmount;           /* -u: `file` is the mount point to unmount (unmount.h) */
	char *unknown;          /* the first unknown dash argument (owned), refused after parsing */
	int nonopts;            /* plain arguments seen so far (parsing state) */
};

/* Parses argv into cfg and leaves the remaining arguments (FUSE options, the mountpoint) in
 * args. Returns 0, or -EINVAL with a one-line message (no prefix) in err[cap]. */
int h5m_opts_parse(struct fuse_args *args, struct h5m_config *cfg, char *err, size_t cap);

/* Frees what h5m_opts_parse allocated in cfg. */
void h5m_opts_destroy(struct h5m_config *cfg);

/* Prints --help to stdout: the usage and every option, h5mount's and the FUSE ones that
 * matter, generated from the manual page (doc/h5mount.1.in). */
void h5m_opts_help(void);

/* Parses a size with an optional K/M/G/T suffix (powers of 1024, "KiB"/"KB" accepted).
 * Returns 0 or -EINVAL. */
int h5m_opts_parse_size(const char *text, size_t *out);

#endif
