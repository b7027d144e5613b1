/* remote.h: HDF5 files on HTTP(S) servers and S3-compatible stores, read-only: URL forms,
 * credentials from the environment, and a libcurl fetcher of byte ranges (parallel ranged GETs,
 * adjacent ranges coalesced, bounded retries with backoff). HDF5's ROS3 driver reads the
 * metadata (store.c); this module reads chunk and contiguous data bytes outside the HDF5 lock.
 * Knows nothing of HDF5 or FUSE: errors are negative errno values.
 *
 * Secrets: keys come from the environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), are
 * kept here and handed to the ROS3 driver and to libcurl's SigV4 signer, and never logged. URLs
 * with user:password@ are refused, so that no secret reaches ps or /proc/mounts.
 *
 * Locking: an h5m_remote is shared by all threads; its idle handle pool and its failure state
 * have their own mutex (a leaf: no other lock is taken under it). Each h5m_remote_read(v) call
 * runs its transfers in the calling thread. */
#ifndef H5MOUNT_REMOTE_H
#define H5MOUNT_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h5m_remote;

/* One byte range to fetch: `len` bytes at file offset `off` into buf. */
struct h5m_remote_range {
	uint64_t off;
	size_t len;
	void *buf;
};

/* Whether `name` is a URL h5m_remote_open takes (http://, https://, s3://), not a host path.
 * Pure. */
bool h5m_remote_is_url(const char *name);

/* Initialises libcurl once per process (before threads). Returns 0 or -EIO. */
int h5m_remote_global_init(void);

/* Resolves `url` (s3://BUCKET/KEY: path style under `endpoint` when given, else
 * https://BUCKET.s3.REGION.amazonaws.com/KEY; http(s):// as is; endpoint must be NULL then),
 * reads the credentials from the environment (signed requests when both keys are set for an
 * s3:// URL, anonymous otherwise) and fetches byte 0 to learn the size, the modification time
 * and that the server honours Range, with the retries of the fetcher. On success *out owns it
 * all (h5m_remote_free). Returns 0 or -errno with a one-line reason in err[cap]: -EINVAL (a
 * URL that cannot be used), -ENOENT (404), -EACCES (401, 403), -EOPNOTSUPP (no Range support),
 * -EIO (server errors, network failures), -ENOMEM. */
int h5m_remote_open(const char *url, const char *endpoint, struct h5m_remote **out, char *err, size_t cap);

/* Frees r and its idle connections. NULL is fine. */
void h5m_remote_free(struct h5m_remote *r);

/* Drops (without closing) the idle connections a forked child inherited, so that the child
 * never talks on sockets its parent will reuse. Call in the child only. */
void h5m_remote_forget_connections(struct h5m_remote *r);

/* The http(s) URL the bytes come from (owned by r). */
const char *h5m_remote_http_url(const struct h5m_remote *r);

/* The name given at open (owned by r), for log lines and the mount's fsname. */
const char *h5m_remote_name(const struct h5m_remote *r);

/* Whether requests are signed (AWS SigV4); when so, points the three strings (owned by r) at
 * the region and the key pair, for the ROS3 driver. */
bool h5m_remote_auth(const struct h5m_remote *r, const char **region, const char **id, const char **key);

/* The object's size and modification time (seconds, 0 when the server gave none), fixed at open. */
uint64_t h5m_remote_size(const struct h5m_remote *r);
int64_t h5m_remote_mtime(const struct h5m_remote *r);

/* Fetches the n ranges (each within the object), adjacent ones in one request, up to 8
 * requests at once; 5xx answers and broken connections are retried (4 attempts in all,
 * backoff 100 ms doubling). Returns 0, or -EIO when one range could not be had (all buffers
 * undefined then), with one log line per cause (not repeated while the same cause lasts; a
 * line again once a fetch succeeds), or -ENOMEM. Counts requests in h5m_remote_requests. */
int h5m_remote_readv(struct h5m_remote *r, struct h5m_remote_range *rg, size_t n);

/* h5m_remote_readv of one range. */
int h5m_remote_read(struct h5m_remote *r, void *buf, size_t len, uint64_t off);

/* HTTP requests made so far by this fetcher (not ROS3's). Relaxed atomic read. */
uint64_t h5m_remote_requests(const struct h5m_remote *r);

#endif
