/* vdataset.c: the views' per-dataset state (logical dims, geometry, held row, write-back
 * error, mtime) and the exclusion of reads and resizes; no HDF5, no cache, no FUSE. */
#include "h5mount/vdataset.h"

#include <stdlib.h>
#include <string.h>

struct h5m_vds *h5m_vds_peek(struct h5m_dataset *ds)
{
	return __atomic_load_n(&ds->vds, __ATOMIC_ACQUIRE);
}

/* A writer-preferring rwlock: a resize waiting for the reads under way is not starved by a
 * stream of new ones. */
static void resize_lock_init(pthread_rwlock_t *l)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(l, &attr);
	pthread_rwlockattr_destroy(&attr);
}

struct h5m_vds *h5m_vds_get(struct h5m_dataset *ds)
{
	struct h5m_vds *vs = h5m_vds_peek(ds), *none = NULL;

	if (vs)
		return vs;
	vs = calloc(1, sizeof(*vs));
	if (!vs)
		return NULL;
	vs->ds = ds;
	h5m_mutex_init(&vs->wlock);
	h5m_mutex_init(&vs->meta);
	resize_lock_init(&vs->resize);
	memcpy(vs->dims, ds->dims, sizeof(vs->dims));
	vs->blocks = ds->blocks;
	vs->row_bytes = ds->dt.elem_size;
	for (unsigned i = 1; i < ds->rank; i++)
		vs->row_bytes *= ds->dims[i]; /* cannot overflow: the store checked the total */
	if (!__atomic_compare_exchange_n(&ds->vds, &none, vs, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* another first user won: use its state */
		pthread_rwlock_destroy(&vs->resize);
		h5m_mutex_destroy(&vs->meta);
		h5m_mutex_destroy(&vs->wlock);
		free(vs);
		return none;
	}
	return vs;
}

void h5m_vds_free(struct h5m_dataset *ds)
{
	struct h5m_vds *vs = h5m_vds_peek(ds);

	if (!vs)
		return;
	__atomic_store_n(&ds->vds, NULL, __ATOMIC_RELEASE);
	pthread_rwlock_destroy(&vs->resize);
	h5m_mutex_destroy(&vs->meta);
	h5m_mutex_destroy(&vs->wlock);
	free(vs->tail);
	free(vs);
}

void h5m_vds_snapshot(struct h5m_vds *vs, struct h5m_vsnap *sn)
{
	h5m_mutex_lock(&vs->meta);
	sn->b = vs->blocks;
	sn->tail_len = vs->tail_len;
	sn->epoch = vs->epoch;
	h5m_mutex_unlock(&vs->meta);
}

void h5m_vds_read_begin(struct h5m_vds *vs, struct h5m_vsnap *sn)
{
	pthread_rwlock_rdlock(&vs->resize);
	h5m_vds_snapshot(vs, sn);
}

bool h5m_vds_read_try_begin(struct h5m_vds *vs, struct h5m_vsnap *sn)
{
	if (pthread_rwlock_tryrdlock(&vs->resize) != 0)
		return false;
	h5m_vds_snapshot(vs, sn);
	return true;
}

void h5m_vds_read_end(struct h5m_vds *vs)
{
	pthread_rwlock_unlock(&vs->resize);
}

void h5m_vds_resize_begin(struct h5m_vds *vs)
{
	assert(h5m_mutex_held(&vs->wlock));
	pthread_rwlock_wrlock(&vs->resize);
	h5m_mutex_lock(&vs->meta);
	vs->epoch++;
	h5m_mutex_unlock(&vs->meta);
}

void h5m_vds_resize_end(struct h5m_vds *vs)
{
	pthread_rwlock_unlock(&vs->resize);
}

int h5m_vds_take_wb_error(struct h5m_vds *vs)
{
	int rc;

	h5m_mutex_lock(&vs->meta);
	rc = vs->wb_error;
	vs->wb_error = 0;
	h5m_mutex_unlock(&vs->meta);
	return rc;
}

void h5m_vds_set_wb_error(struct h5m_vds *vs, int rc)
{
	h5m_mutex_lock(&vs->meta);
	vs->wb_error = rc;
	h5m_mutex_unlock(&vs->meta);
}

void h5m_vds_set_pending(struct h5m_vds *vs, bool pending)
{
	h5m_mutex_lock(&vs->meta);
	vs->pending = pending;
	h5m_mutex_unlock(&vs->meta);
}
