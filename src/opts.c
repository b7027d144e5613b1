/* opts.c: h5mount's option table, size parsing and validation; one-line errors, no exits. */
#include "opts.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5m_help.h"

#define DEFAULT_CACHE_SIZE ((size_t)256 << 20)
#define MIN_CACHE_SIZE ((size_t)1 << 20)
#define DEFAULT_DIRTY_LIMIT ((size_t)64 << 20)
#define MIN_DIRTY_LIMIT ((size_t)1 << 20)
#define DEFAULT_FLUSH_INTERVAL 5u
#define MAX_FLUSH_INTERVAL 86400u
#define DEFAULT_CHECK_TIMEOUT 60u
#define MAX_CHECK_TIMEOUT 86400u
#define DEFAULT_CHECK_MEMORY ((size_t)1 << 30)
#define MIN_CHECK_MEMORY ((size_t)64 << 20)

enum { KEY_HELP, KEY_VERSION, KEY_RO, KEY_NOCHECK, KEY_FUSE_FLAG, KEY_UNMOUNT };

/* Options mount(8) and fstab lines pass that mean nothing to a FUSE mount (mount.fuse3 drops
 * some of them itself; a direct `h5mount ... -o nofail` gets the same treatment). "x-..." and
 * "comment=..." (fstab annotations) are dropped in opt_proc. */
#define H5M_IGNORED(t) FUSE_OPT_KEY(t, FUSE_OPT_KEY_DISCARD)

#define H5M_OPT(t, p) { t, offsetof(struct h5m_config, p), 1 }
static const struct fuse_opt h5m_opt_table[] = {
	H5M_OPT("cache_size=%s", cache_size_text),
	H5M_OPT("dirty_limit=%s", dirty_limit_text),
	H5M_OPT("flush_interval=%s", flush_interval_text),
	H5M_OPT("external_links=%s", external_links_text),
	H5M_OPT("check_timeout=%s", check_timeout_text),
	H5M_OPT("check_memory=%s", check_memory_text),
	H5M_OPT("log=%s", log_path),
	H5M_OPT("views=%s", views_text),
	H5M_OPT("chunk_size=%s", chunk_size_text),
	H5M_OPT("compress=%s", compress_text),
	H5M_OPT("endpoint=%s", endpoint),
	FUSE_OPT_KEY("nocheck", KEY_NOCHECK),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-u", KEY_UNMOUNT),
	FUSE_OPT_KEY("ro", KEY_RO),
	/* The dash options libfuse's fuse_parse_cmdline knows; any other dash argument is refused
	 * before a file name is looked at. */
	FUSE_OPT_KEY("-f", KEY_FUSE_FLAG),
	FUSE_OPT_KEY("-d", KEY_FUSE_FLAG),
	FUSE_OPT_KEY("-s", KEY_FUSE_FLAG),
	FUSE_OPT_KEY("--debug", KEY_FUSE_FLAG),
	H5M_IGNORED("nofail"),
	H5M_IGNORED("auto"),
	H5M_IGNORED("noauto"),
	H5M_IGNORED("user"),
	H5M_IGNORED("nouser"),
	H5M_IGNORED("users"),
	H5M_IGNORED("owner"),
	H5M_IGNORED("group"),
	H5M_IGNORED("defaults"),
	H5M_IGNORED("_netdev"),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct h5m_config *cfg = data;

	(void)outargs;
	switch (key) {
	case KEY_HELP:
		cfg->show_help = true;
		return 0;
	case KEY_VERSION:
		cfg->show_version = true;
		return 0;
	case KEY_RO:
		cfg->read_only = true;
		return 1; /* also for the kernel mount */
	case KEY_NOCHECK:
		cfg->nocheck = true;
		return 0;
	case KEY_UNMOUNT:
		cfg->unmount = true;
		return 0;
	case KEY_FUSE_FLAG:
		return 1; /* for fuse_parse_cmdline */
	case FUSE_OPT_KEY_OPT:
		/* A dash argument not in the table (--cache-size, -x): refused here, so that its
		 * value is not taken for the file name. Unknown -o options go to libfuse, which
		 * names them. */
		if (arg[0] == '-') {
			if (!cfg->unknown)
				cfg->unknown = strdup(arg);
			return cfg->unknown ? 0 : -1;
		}
		if (!strncmp(arg, "x-", 2) || !strncmp(arg, "comment=", 8))
			return 0;
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		/* The first plain argument is the HDF5 file; the next is the mountpoint (kept for libfuse). */
		if (cfg->nonopts++ == 0) {
			cfg->file = strdup(arg);
			return cfg->file ? 0 : -1;
		}
		if (cfg->nonopts == 2) {
			cfg->mountpoint = strdup(arg);
			if (!cfg->mountpoint)
				return -1;
		}
		return 1;
	default:
		return 1;
	}
}

/* Parses -o views=: names of dataset views (raw npy shape offsets, in enum h5m_view's order)
 * separated by ':', '+' or an escaped ','. Returns 0 with *bits, or -EINVAL (none, or unknown). */
static int parse_views(const char *text, unsigned *bits)
{
	static const char *const names[] = { "raw", "npy", "shape", "offsets" };
	const char *p = text;

	*bits = 0;
	while (*p) {
		size_t len = strcspn(p, ":+,");
		unsigned i = 0;

		while (i < 4 && (strlen(names[i]) != len || strncmp(p, names[i], len)))
			i++;
		if (i == 4)
			return -EINVAL;
		*bits |= 1u << i;
		p += len;
		if (*p && !*++p)
			return -EINVAL; /* a trailing separator */
	}
	return *bits ? 0 : -EINVAL;
}

int h5m_opts_parse_size(const char *text, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!text || !*text || *text == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (shift && v > (SIZE_MAX >> shift))
		return -EINVAL;
	*out = (size_t)(v << shift);
	return 0;
}

int h5m_opts_parse(struct fuse_args *args, struct h5m_config *cfg, char *err, size_t cap)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cache_size = DEFAULT_CACHE_SIZE;
	if (fuse_opt_parse(args, cfg, h5m_opt_table, opt_proc) < 0) {
		snprintf(err, cap, "cannot parse the command line");
		return -EINVAL;
	}
	if (cfg->unknown) {
		snprintf(err, cap, "unknown option '%s' (see --help)", cfg->unknown);
		return -EINVAL;
	}
	cfg->dirty_limit = DEFAULT_DIRTY_LIMIT;
	cfg->flush_interval = DEFAULT_FLUSH_INTERVAL;
	cfg->check_timeout = DEFAULT_CHECK_TIMEOUT;
	cfg->check_memory = DEFAULT_CHECK_MEMORY;
	if (cfg->check_timeout_text) {
		char *end;
		unsigned long sec;

		errno = 0;
		sec = strtoul(cfg->check_timeout_text, &end, 10);
		if (errno || end == cfg->check_timeout_text || *end || *cfg->check_timeout_text == '-' || sec < 1 ||
		    sec > MAX_CHECK_TIMEOUT) {
			snprintf(err, cap, "invalid check_timeout '%s' (expected seconds, 1 to %u)", cfg->check_timeout_text,
			         MAX_CHECK_TIMEOUT);
			return -EINVAL;
		}
		cfg->check_timeout = (unsigned)sec;
	}
	if (cfg->check_memory_text) {
		if (h5m_opts_parse_size(cfg->check_memory_text, &cfg->check_memory) < 0) {
			snprintf(err, cap, "invalid check_memory '%s' (expected a size such as 1G)", cfg->check_memory_text);
			return -EINVAL;
		}
		if (cfg->check_memory < MIN_CHECK_MEMORY) {
			snprintf(err, cap, "check_memory '%s' is too small (at least 64M)", cfg->check_memory_text);
			return -EINVAL;
		}
	}
	if (cfg->dirty_limit_text) {
		if (h5m_opts_parse_size(cfg->dirty_limit_text, &cfg->dirty_limit) < 0) {
			snprintf(err, cap, "invalid dirty_limit '%s' (expected a size such as 64M)", cfg->dirty_limit_text);
			return -EINVAL;
		}
		if (cfg->dirty_limit < MIN_DIRTY_LIMIT) {
			snprintf(err, cap, "dirty_limit '%s' is too small (at least 1M)", cfg->dirty_limit_text);
			return -EINVAL;
		}
	}
	if (cfg->flush_interval_text) {
		char *end;
		unsigned long sec;

		errno = 0;
		sec = strtoul(cfg->flush_interval_text, &end, 10);
		if (errno || end == cfg->flush_interval_text || *end || *cfg->flush_interval_text == '-' ||
		    sec > MAX_FLUSH_INTERVAL) {
			snprintf(err, cap, "invalid flush_interval '%s' (expected seconds, 0 to %u)", cfg->flush_interval_text,
			         MAX_FLUSH_INTERVAL);
			return -EINVAL;
		}
		cfg->flush_interval = (unsigned)sec;
	}
	if (cfg->external_links_text) {
		if (!strcmp(cfg->external_links_text, "host")) {
			cfg->host_elinks = true;
		} else if (strcmp(cfg->external_links_text, "dangling")) {
			snprintf(err, cap, "invalid external_links '%s' (expected dangling or host)", cfg->external_links_text);
			return -EINVAL;
		}
	}
	cfg->views_shown = 0xf; /* raw, npy, shape, offsets: enum h5m_view's order */
	if (cfg->views_text && parse_views(cfg->views_text, &cfg->views_shown) < 0) {
		snprintf(err, cap, "invalid views '%s' (expected one or more of raw, npy, shape, offsets, "
		         "separated by ':' or '+')", cfg->views_text);
		return -EINVAL;
	}
	if (cfg->log_path && !*cfg->log_path) {
		snprintf(err, cap, "invalid log '' (expected a file name)");
		return -EINVAL;
	}
	if (cfg->chunk_size_text) {
		if (h5m_opts_parse_size(cfg->chunk_size_text, &cfg->layout.chunk_bytes) < 0 ||
		    cfg->layout.chunk_bytes < H5M_CREATE_CHUNK_MIN || cfg->layout.chunk_bytes > H5M_CREATE_CHUNK_MAX) {
			snprintf(err, cap, "invalid chunk_size '%s' (expected a size from 1K to 64M, such as 256K)",
			         cfg->chunk_size_text);
			return -EINVAL;
		}
	}
	if (cfg->compress_text) {
		char why[160];

		if (h5m_create_parse_compress(cfg->compress_text, &cfg->layout, why, sizeof(why)) < 0) {
			snprintf(err, cap, "invalid compress '%s': %s", cfg->compress_text, why);
			return -EINVAL;
		}
	}
	if (cfg->cache_size_text) {
		if (h5m_opts_parse_size(cfg->cache_size_text, &cfg->cache_size) < 0) {
			snprintf(err, cap, "invalid cache_size '%s' (expected a size such as 256M)", cfg->cache_size_text);
			return -EINVAL;
		}
		if (cfg->cache_size < MIN_CACHE_SIZE) {
			snprintf(err, cap, "cache_size '%s' is too small (at least 1M)", cfg->cache_size_text);
			return -EINVAL;
		}
	}
	return 0;
}

void h5m_opts_destroy(struct h5m_config *cfg)
{
	free(cfg->file);
	free(cfg->mountpoint);
	free(cfg->cache_size_text);
	free(cfg->dirty_limit_text);
	free(cfg->flush_interval_text);
	free(cfg->external_links_text);
	free(cfg->check_timeout_text);
	free(cfg->check_memory_text);
	free(cfg->chunk_size_text);
	free(cfg->compress_text);
	cfg->chunk_size_text = cfg->compress_text = NULL;
	free(cfg->unknown);
	free(cfg->log_path);
	free(cfg->views_text);
	cfg->views_text = NULL;
	cfg->unknown = cfg->log_path = NULL;
	free(cfg->endpoint);
	cfg->endpoint = NULL;
	cfg->check_timeout_text = cfg->check_memory_text = NULL;
	cfg->file = cfg->mountpoint = cfg->cache_size_text = cfg->dirty_limit_text = cfg->flush_interval_text = NULL;
	cfg->external_links_text = NULL;
}

void h5m_opts_help(void)
{
	for (const char *const *l = h5m_help_lines; *l; l++)
		printf("%s\n", *l);
}
