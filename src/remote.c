/* remote.c: read-only remote HDF5 files: URL resolution, credentials from the environment and a
 * libcurl fetcher of byte ranges (curl multi, coalescing, bounded retries). No HDF5, no FUSE. */
#include "h5mount/remote.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "h5mount/log.h"

#define MAX_PARALLEL 8            /* requests in flight per h5m_remote_readv */
#define MAX_IDLE 16               /* idle easy handles (each keeps its connection) */
#define ATTEMPTS 4                /* tries per request: 5xx and broken connections */
#define BACKOFF_MS 100            /* first wait between tries, doubled each time */
#define MAX_REQUEST ((uint64_t)64 << 20) /* coalesced requests stop growing here */
#define CONNECT_TIMEOUT 10L       /* seconds */
#define STALL_SECONDS 30L         /* a transfer under 1 byte/s for this long is abandoned */
#define DROP_MAX 65536            /* bytes of an unwanted body (error page, whole object) read
                                   * before the transfer is cut: the status alone decides */

struct h5m_remote {
	char *name;                   /* as given (immutable) */
	char *url;                    /* http(s) URL of the object (immutable) */
	bool sign;                    /* SigV4 (immutable) */
	char region[64], id[160], key[160]; /* credentials when signing (immutable; never logged) */
	char *sigv4;                  /* "aws:amz:REGION:s3" (immutable) */
	uint64_t size;                /* immutable */
	int64_t mtime;                /* immutable */
	uint64_t requests;            /* atomic */
	pthread_mutex_t lock;         /* guards idle, nidle, cause: a leaf lock */
	CURL *idle[MAX_IDLE];
	size_t nidle;
	char cause[200];              /* the failure last logged; empty while fetches succeed */
};

/* One destination of a request: part of a caller's range. */
struct piece {
	uint64_t off;                 /* file offset */
	size_t len;
	unsigned char *buf;
};

/* One HTTP request: the bytes [off, off + len) of the object, into its pieces. */
struct request {
	uint64_t off, len, got;
	struct piece *pieces;         /* sorted by off; they tile [off, off + len) */
	size_t npieces;
	CURL *h;
	unsigned attempt;
	bool active;                  /* added to the multi handle */
	bool done;
	long status;
	char errbuf[CURL_ERROR_SIZE];
	uint64_t retry_at_ms;         /* not started again before this time (0: at once) */
};

bool h5m_remote_is_url(const char *name)
{
	return !strncmp(name, "http://", 7) || !strncmp(name, "https://", 8) || !strncmp(name, "s3://", 5);
}

int h5m_remote_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Copies the environment variable `name` into buf[cap]. Returns 1 when set and not empty, 0
 * when unset, -EINVAL when too long. */
static int env_copy(const char *name, char *buf, size_t cap)
{
	const char *v = getenv(name);

	buf[0] = 0;
	if (!v || !*v)
		return 0;
	if (strlen(v) >= cap)
		return -EINVAL;
	strcpy(buf, v);
	return 1;
}

/* Resolves r->url from `url` and `endpoint`, and the credentials. Returns 0 or -errno with err. */
static int resolve(struct h5m_remote *r, const char *url, const char *endpoint, char *err, size_t cap)
{
	const char *host = strstr(url, "://") + 3, *slash = strchr(host, '/'), *at = strchr(host, '@');
	bool s3 = !strncmp(url, "s3://", 5);
	int hid, hkey;

	if (at && (!slash || at < slash)) {
		snprintf(err, cap, "credentials in the URL are refused (ps and /proc/mounts would show them): "
		         "use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
		return -EINVAL;
	}
	if (!slash || slash == host || !slash[1]) {
		snprintf(err, cap, "the URL names no %s", s3 ? "bucket and key (s3://BUCKET/KEY)" : "file (http(s)://HOST/PATH)");
		return -EINVAL;
	}
	if (strpbrk(url, "?#")) {
		snprintf(err, cap, "URLs with a query or a fragment are not supported");
		return -EINVAL;
	}
	if (!s3) {
		if (endpoint) {
			snprintf(err, cap, "-o endpoint= is for s3:// URLs only");
			return -EINVAL;
		}
		r->url = strdup(url);
		return r->url ? 0 : -ENOMEM;
	}
	if (env_copy("AWS_REGION", r->region, sizeof(r->region)) < 0) {
		snprintf(err, cap, "AWS_REGION is too long");
		return -EINVAL;
	}
	if (!r->region[0])
		strcpy(r->region, "us-east-1");
	/* ROS3 (HDF5 1.10.8) keeps at most 128 bytes of each key. */
	hid = env_copy("AWS_ACCESS_KEY_ID", r->id, 129);
	hkey = env_copy("AWS_SECRET_ACCESS_KEY", r->key, 129);
	if (hid < 0 || hkey < 0) {
		snprintf(err, cap, "AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is longer than 128 bytes");
		return -EINVAL;
	}
	if (hid != hkey) {
		snprintf(err, cap, "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set");
		return -EINVAL;
	}
	r->sign = hid == 1;
	if (r->sign && getenv("AWS_SESSION_TOKEN") && *getenv("AWS_SESSION_TOKEN")) {
		snprintf(err, cap, "AWS_SESSION_TOKEN is set, but HDF5 1.10.8's S3 driver cannot send session tokens: "
		         "use long-term keys or anonymous access");
		return -EINVAL;
	}
	if (r->sign && asprintf(&r->sigv4, "aws:amz:%s:s3", r->region) < 0) {
		r->sigv4 = NULL;
		return -ENOMEM;
	}
	if (endpoint) {
		size_t n = strlen(endpoint);

		while (n && endpoint[n - 1] == '/')
			n--;
		if (strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8)) {
			snprintf(err, cap, "endpoint '%s' is not an http:// or https:// URL", endpoint);
			return -EINVAL;
		}
		if (asprintf(&r->url, "%.*s/%s", (int)n, endpoint, host) < 0)
			r->url = NULL;
	} else if (asprintf(&r->url, "https://%.*s.s3.%s.amazonaws.com%s", (int)(slash - host), host, r->region, slash) < 0) {
		r->url = NULL;
	}
	return r->url ? 0 : -ENOMEM;
}

/* An easy handle for r's URL: an idle one (its connection kept alive) or a new one. */
static CURL *handle_get(struct h5m_remote *r)
{
	CURL *h = NULL;

	pthread_mutex_lock(&r->lock);
	if (r->nidle)
		h = r->idle[--r->nidle];
	pthread_mutex_unlock(&r->lock);
	if (h)
		return h;
	h = curl_easy_init();
	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (r->sign) {
		curl_easy_setopt(h, CURLOPT_AWS_SIGV4, r->sigv4);
		curl_easy_setopt(h, CURLOPT_USERNAME, r->id);
		curl_easy_setopt(h, CURLOPT_PASSWORD, r->key);
	}
	return h;
}

/* Returns h to the idle pool, or frees it when the pool is full. */
static void handle_put(struct h5m_remote *r, CURL *h)
{
	if (!h)
		return;
	/* No pointers into a finished request's memory stay behind. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	pthread_mutex_lock(&r->lock);
	if (r->nidle < MAX_IDLE) {
		r->idle[r->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* Logs `cause` unless it is the one logged last (a failure that lasts gives one line). */
static void failed(struct h5m_remote *r, const char *cause)
{
	bool say;

	pthread_mutex_lock(&r->lock);
	say = strcmp(r->cause, cause) != 0;
	if (say)
		snprintf(r->cause, sizeof(r->cause), "%s", cause);
	pthread_mutex_unlock(&r->lock);
	if (say)
		h5m_log(H5M_LOG_ERR, "%s: read failed (EIO): %s", r->name, cause);
}

/* A fetch succeeded: a failure logged before is over. */
static void succeeded(struct h5m_remote *r)
{
	bool was = false;

	pthread_mutex_lock(&r->lock);
	if (r->cause[0]) {
		was = true;
		r->cause[0] = 0;
	}
	pthread_mutex_unlock(&r->lock);
	if (was)
		h5m_log(H5M_LOG_INFO, "%s: the server answers again", r->name);
}

/* libcurl write callback: spreads the bytes over the request's pieces. */
static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct request *q = arg;
	size_t n = size * nmemb, used = 0;

	if (q->status == 0)
		curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &q->status);
	if (q->status != 206) {
		/* An error page (or a whole object): dropped, the status decides; q->got counts the
		 * dropped bytes, and an endless body is cut (request_judge then reads the status). */
		q->got += n;
		return q->got > DROP_MAX ? 0 : n;
	}
	while (used < n) {
		uint64_t pos = q->off + q->got;
		size_t i = 0, take;

		if (q->got >= q->len)
			return 0; /* more than asked for: abort */
		while (i < q->npieces && q->pieces[i].off + q->pieces[i].len <= pos)
			i++;
		take = (size_t)(q->pieces[i].off + q->pieces[i].len - pos);
		if (take > n - used)
			take = n - used;
		memcpy(q->pieces[i].buf + (pos - q->pieces[i].off), data + used, take);
		used += take;
		q->got += take;
	}
	return n;
}

/* Prepares q->h for a try of request q. Returns 0 or -ENOMEM. */
static int request_start(struct h5m_remote *r, struct request *q)
{
	char range[64];

	if (!q->h && !(q->h = handle_get(r)))
		return -ENOMEM;
	snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)q->off, (unsigned long long)(q->off + q->len - 1));
	q->got = 0;
	q->status = 0;
	q->errbuf[0] = 0;
	curl_easy_setopt(q->h, CURLOPT_RANGE, range);
	curl_easy_setopt(q->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(q->h, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->h, CURLOPT_ERRORBUFFER, q->errbuf);
	__atomic_add_fetch(&r->requests, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Judges a finished try of q (curl result `res`): 0 done, 1 try again, -EIO failed with
 * cause[cap] set. */
static int request_judge(struct request *q, CURLcode res, char *cause, size_t cap)
{
	long st = 0;

	curl_easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &st);
	if (res == CURLE_WRITE_ERROR && st != 206 && q->got > DROP_MAX)
		res = CURLE_OK; /* on_data cut an unwanted body: judged by its status */
	if (res == CURLE_OK && st == 206 && q->got == q->len)
		return 0;
	if (res != CURLE_OK) {
		snprintf(cause, cap, "%.150s", q->errbuf[0] ? q->errbuf : curl_easy_strerror(res));
		cause[strcspn(cause, "\n")] = 0;
		/* Retried: refused or reset connections, timeouts, truncated answers. */
		return res == CURLE_COULDNT_CONNECT || res == CURLE_RECV_ERROR || res == CURLE_SEND_ERROR ||
		       res == CURLE_GOT_NOTHING || res == CURLE_PARTIAL_FILE || res == CURLE_OPERATION_TIMEDOUT ||
		       res == CURLE_COULDNT_RESOLVE_HOST ? 1 : -EIO;
	}
	if (st == 206) {
		snprintf(cause, cap, "the server sent %llu of %llu bytes", (unsigned long long)q->got,
		         (unsigned long long)q->len);
		return 1;
	}
	if (st == 200)
		snprintf(cause, cap, "the server ignores Range requests (HTTP 200)");
	else
		snprintf(cause, cap, "HTTP %ld", st);
	return st >= 500 ? 1 : -EIO;
}

/* Runs the requests q[0..n) to completion, MAX_PARALLEL at a time. Returns 0, -EIO (logged)
 * or -ENOMEM. */
static int run_requests(struct h5m_remote *r, struct request *q, size_t n)
{
	CURLM *m = curl_multi_init();
	size_t active = 0, left = n;
	char cause[sizeof(r->cause)] = "";
	int rc = 0;

	if (!m)
		return -ENOMEM;
	while (left && !rc) {
		uint64_t now = now_ms(), wake = UINT64_MAX;
		int running, msgs, timeout;
		CURLMsg *msg;

		/* Start requests not yet started and retries that are due. */
		for (size_t i = 0; i < n && active < MAX_PARALLEL; i++) {
			if (q[i].done || q[i].active)
				continue;
			if (q[i].retry_at_ms > now) {
				wake = wake < q[i].retry_at_ms ? wake : q[i].retry_at_ms;
				continue;
			}
			if ((rc = request_start(r, &q[i])) != 0 || curl_multi_add_handle(m, q[i].h) != CURLM_OK) {
				rc = rc ? rc : -ENOMEM;
				break;
			}
			q[i].active = true;
			active++;
		}
		if (rc)
			break;
		if (curl_multi_perform(m, &running) != CURLM_OK) {
			rc = -EIO;
			snprintf(cause, sizeof(cause), "libcurl failed");
			break;
		}
		while ((msg = curl_multi_info_read(m, &msgs))) {
			struct request *d = NULL;
			int v;

			if (msg->msg != CURLMSG_DONE)
				continue;
			for (size_t i = 0; i < n && !d; i++)
				if (q[i].active && q[i].h == msg->easy_handle)
					d = &q[i];
			curl_multi_remove_handle(m, msg->easy_handle);
			active--;
			if (!d)
				continue;
			d->active = false;
			v = request_judge(d, msg->data.result, cause, sizeof(cause));
			if (v == 0) {
				d->done = true;
				left--;
			} else if (v == 1 && ++d->attempt < ATTEMPTS) {
				d->retry_at_ms = now_ms() + ((uint64_t)BACKOFF_MS << (d->attempt - 1));
			} else {
				rc = -EIO;
				if (v == 1)
					snprintf(cause + strlen(cause), sizeof(cause) - strlen(cause), " (after %d tries)", ATTEMPTS);
			}
		}
		if (rc || !left)
			break;
		/* The earliest retry, including those the answers above just scheduled. */
		timeout = 1000;
		now = now_ms();
		for (size_t i = 0; i < n; i++)
			if (!q[i].done && !q[i].active && q[i].retry_at_ms && q[i].retry_at_ms < wake)
				wake = q[i].retry_at_ms;
		if (wake != UINT64_MAX)
			timeout = wake <= now ? 0 : (int)(wake - now < 1000 ? wake - now : 1000);
		if (active)
			curl_multi_poll(m, NULL, 0, timeout, NULL);
		else if (timeout > 0)
			nanosleep(&(struct timespec){ .tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000 }, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		if (!q[i].h)
			continue;
		curl_multi_remove_handle(m, q[i].h); /* harmless when not added */
		if (q[i].done)
			handle_put(r, q[i].h);
		else
			curl_easy_cleanup(q[i].h); /* its connection may be in any state */
		q[i].h = NULL;
	}
	curl_multi_cleanup(m);
	if (rc == -EIO)
		failed(r, cause);
	else if (!rc)
		succeeded(r);
	return rc;
}

static int range_cmp(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

int h5m_remote_readv(struct h5m_remote *r, struct h5m_remote_range *rg, size_t n)
{
	struct piece *p = NULL;
	struct request *q = NULL;
	size_t np = 0, nq = 0;
	int rc = 0;

	if (!n)
		return 0;
	p = calloc(n, sizeof(*p));
	q = calloc(n, sizeof(*q));
	if (!p || !q) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!rg[i].len)
			continue;
		if (rg[i].off > r->size || rg[i].len > r->size - rg[i].off) {
			char cause[128];

			snprintf(cause, sizeof(cause), "bytes %llu-%llu lie beyond the object's %llu bytes",
			         (unsigned long long)rg[i].off, (unsigned long long)(rg[i].off + rg[i].len - 1),
			         (unsigned long long)r->size);
			failed(r, cause);
			rc = -EIO;
			goto out;
		}
		p[np++] = (struct piece){ .off = rg[i].off, .len = rg[i].len, .buf = rg[i].buf };
	}
	qsort(p, np, sizeof(*p), range_cmp);
	/* Coalesce runs of adjacent pieces; an overlapping piece is fetched on its own. */
	for (size_t i = 0; i < np;) {
		size_t j = i + 1;
		uint64_t end = p[i].off + p[i].len;

		while (j < np && p[j].off == end && end + p[j].len - p[i].off <= MAX_REQUEST)
			end += p[j++].len;
		q[nq++] = (struct request){ .off = p[i].off, .len = end - p[i].off, .pieces = &p[i], .npieces = j - i };
		i = j;
	}
	rc = run_requests(r, q, nq);
out:
	free(q);
	free(p);
	return rc;
}

int h5m_remote_read(struct h5m_remote *r, void *buf, size_t len, uint64_t off)
{
	struct h5m_remote_range one = { .off = off, .len = len, .buf = buf };

	return h5m_remote_readv(r, &one, 1);
}

/* Header callback of the open probe: the object's size from "Content-Range: bytes 0-0/SIZE". */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;
	uint64_t *total = arg;

	if (n > 14 && !strncasecmp(data, "content-range:", 14)) {
		char line[128];
		const char *slash;

		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), data);
		slash = strchr(line, '/');
		if (slash && slash[1] >= '0' && slash[1] <= '9')
			*total = strtoull(slash + 1, NULL, 10);
	}
	return n;
}

/* Write callback of the open probe: drops the body, counting it in *arg; an endless one (a
 * server ignoring Range, a hostile one) is cut after DROP_MAX bytes. */
static size_t drop_data(char *data, size_t size, size_t nmemb, void *arg)
{
	size_t *dropped = arg;

	(void)data;
	*dropped += size * nmemb;
	return *dropped > DROP_MAX ? 0 : size * nmemb;
}

/* Fetches byte 0 of r's object: size, mtime, Range support, with the fetcher's retries.
 * Returns 0 or -errno with err. */
static int probe(struct h5m_remote *r, char *err, size_t cap)
{
	CURL *h = handle_get(r);
	uint64_t total = UINT64_MAX;
	long st = 0, ft = -1;
	curl_off_t dl = -1;
	CURLcode res = CURLE_OK;
	char ebuf[CURL_ERROR_SIZE] = "";
	size_t dropped = 0;
	int rc = -EIO;

	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_RANGE, "0-0");
	curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &total);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drop_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &dropped);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	for (unsigned attempt = 0; attempt < ATTEMPTS; attempt++) {
		if (attempt)
			nanosleep(&(struct timespec){ .tv_nsec = (long)BACKOFF_MS * 1000000 << (attempt - 1) }, NULL);
		total = UINT64_MAX;
		ebuf[0] = 0;
		dropped = 0;
		__atomic_add_fetch(&r->requests, 1, __ATOMIC_RELAXED);
		res = curl_easy_perform(h);
		st = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
		if (res == CURLE_WRITE_ERROR && dropped > DROP_MAX)
			res = CURLE_OK; /* drop_data cut the body: judged by the status */
		if (res == CURLE_OK && st < 500)
			break;
		if (res != CURLE_OK && res != CURLE_COULDNT_CONNECT && res != CURLE_RECV_ERROR && res != CURLE_GOT_NOTHING &&
		    res != CURLE_SEND_ERROR && res != CURLE_OPERATION_TIMEDOUT)
			break;
	}
	if (res != CURLE_OK) {
		snprintf(err, cap, "%s", ebuf[0] ? ebuf : curl_easy_strerror(res));
		err[strcspn(err, "\n")] = 0;
	} else if (st == 404) {
		rc = -ENOENT;
		snprintf(err, cap, "HTTP 404 (no such object)");
	} else if (st == 401 || st == 403) {
		rc = -EACCES;
		snprintf(err, cap, "HTTP %ld (access denied%s)", st, r->sign ? " with the keys of AWS_ACCESS_KEY_ID" : "");
	} else if (st == 200 && curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &dl) == CURLE_OK && dl == 0) {
		rc = -EINVAL;
		snprintf(err, cap, "is not an HDF5 file (the object is empty)");
	} else if (st == 200) {
		rc = -EOPNOTSUPP;
		snprintf(err, cap, "the server ignores Range requests (HTTP 200 to a ranged GET)");
	} else if (st == 416) {
		rc = -EINVAL;
		snprintf(err, cap, "is not an HDF5 file (the object is empty)");
	} else if (st != 206 || total == UINT64_MAX) {
		snprintf(err, cap, "HTTP %ld%s", st, st == 206 ? " without the object's size" : "");
	} else {
		rc = 0;
		r->size = total;
		if (curl_easy_getinfo(h, CURLINFO_FILETIME, &ft) == CURLE_OK && ft > 0)
			r->mtime = ft;
	}
	/* The handle keeps its connection but not the probe's options. */
	curl_easy_setopt(h, CURLOPT_FILETIME, 0L);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, NULL);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
	if (rc == 0)
		handle_put(r, h);
	else
		curl_easy_cleanup(h);
	return rc;
}

int h5m_remote_open(const char *url, const char *endpoint, struct h5m_remote **out, char *err, size_t cap)
{
	struct h5m_remote *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r) {
		snprintf(err, cap, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->name = strdup(url);
	if (!r->name) {
		rc = -ENOMEM;
		snprintf(err, cap, "%s", strerror(ENOMEM));
		goto fail;
	}
	if (!h5m_remote_is_url(url)) {
		rc = -EINVAL;
		snprintf(err, cap, "is not an http://, https:// or s3:// URL");
		goto fail;
	}
	rc = resolve(r, url, endpoint, err, cap);
	if (rc == -ENOMEM)
		snprintf(err, cap, "%s", strerror(ENOMEM));
	if (rc)
		goto fail;
	rc = probe(r, err, cap);
	if (rc)
		goto fail;
	*out = r;
	return 0;
fail:
	h5m_remote_free(r);
	return rc;
}

void h5m_remote_free(struct h5m_remote *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nidle; i++)
		curl_easy_cleanup(r->idle[i]);
	pthread_mutex_destroy(&r->lock);
	explicit_bzero(r->key, sizeof(r->key));
	free(r->sigv4);
	free(r->url);
	free(r->name);
	free(r);
}

void h5m_remote_forget_connections(struct h5m_remote *r)
{
	r->nidle = 0; /* the handles stay allocated: the child exits without freeing */
}

const char *h5m_remote_http_url(const struct h5m_remote *r)
{
	return r->url;
}

const char *h5m_remote_name(const struct h5m_remote *r)
{
	return r->name;
}

bool h5m_remote_auth(const struct h5m_remote *r, const char **region, const char **id, const char **key)
{
	if (!r->sign)
		return false;
	*region = r->region;
	*id = r->id;
	*key = r->key;
	return true;
}

uint64_t h5m_remote_size(const struct h5m_remote *r)
{
	return r->size;
}

int64_t h5m_remote_mtime(const struct h5m_remote *r)
{
	return r->mtime;
}

uint64_t h5m_remote_requests(const struct h5m_remote *r)
{
	return __atomic_load_n(&r->requests, __ATOMIC_RELAXED);
}
