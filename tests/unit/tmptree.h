/* tmptree.h: removal of a test's temporary directory tree, shared by the unit tests that write
 * files. Test support only; nothing of the daemon uses it. */
#ifndef H5MOUNT_TESTS_TMPTREE_H
#define H5MOUNT_TESTS_TMPTREE_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int tmptree_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(path);
}

/* Removes dir and everything below it, without following symlinks. Returns 0, or -1 when
 * something could not be removed. */
static inline int tmptree_remove(const char *dir)
{
	return nftw(dir, tmptree_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
