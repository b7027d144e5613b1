/* vdataset.c: the views' per-dataset state (logical dims, geometry, held row, write-back
 * error, mtime) and the exclusion of reads and resizes; no HDF5, no cache, no FUSE. */
#include "h5mount/vdataset.h"

#include <stdlib.h>
#include <string.h>

struct h5m_vds *h5m_vds_peek(struct h5m_dataset *ds)
{
	return __atomic_load_n(&ds->vds, __ATOMIC_ACQUIRE);
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
	pthread_mutex_init(&vs->wlock, NULL);
	pthread_mutex_init(&vs->meta, NULL);
	pthread_cond_init(&vs->resize_cv, NULL);
	memcpy(vs->dims, ds->dims, sizeof(vs->dims));
	vs->blocks = ds->blocks;
	vs->row_bytes = ds->dt.elem_size;
	for (unsigned i = 1; i < ds->rank; i++)
		vs->row_bytes *= ds->dims[i]; /* cannot overflow: the store checked the total */
	if (!__atomic_compare_exchange_n(&ds->vds, &none, vs, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* another first user won: use its state */
		pthread_cond_destroy(&vs->resize_cv);
		pthread_mutex_destroy(&vs->meta);
		pthread_mutex_destroy(&vs->wlock);
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
	pthread_cond_destroy(&vs->resize_cv);
	pthread_mutex_destroy(&vs->meta);
	pthread_mutex_destroy(&vs->wlock);
	free(vs->tail);
	free(vs);
}

void h5m_vds_snapshot(struct h5m_vds *vs, struct h5m_vsnap *sn)
{
	pthread_mutex_lock(&vs->meta);
	sn->b = vs->blocks;
	sn->tail_len = vs->tail_len;
	pthread_mutex_unlock(&vs->meta);
}

static bool read_start(struct h5m_vds *vs, struct h5m_vsnap *sn, bool wait)
{
	pthread_mutex_lock(&vs->meta);
	while (vs->resizing && wait)
		pthread_cond_wait(&vs->resize_cv, &vs->meta);
	if (vs->resizing) {
		pthread_mutex_unlock(&vs->meta);
		return false;
	}
	sn->b = vs->blocks;
	sn->tail_len = vs->tail_len;
	vs->readers++;
	pthread_mutex_unlock(&vs->meta);
	return true;
}

void h5m_vds_read_begin(struct h5m_vds *vs, struct h5m_vsnap *sn)
{
	read_start(vs, sn, true);
}

bool h5m_vds_read_try_begin(struct h5m_vds *vs, struct h5m_vsnap *sn)
{
	return read_start(vs, sn, false);
}

void h5m_vds_read_end(struct h5m_vds *vs)
{
	pthread_mutex_lock(&vs->meta);
	if (--vs->readers == 0 && vs->resizing)
		pthread_cond_broadcast(&vs->resize_cv);
	pthread_mutex_unlock(&vs->meta);
}

void h5m_vds_resize_begin(struct h5m_vds *vs)
{
	pthread_mutex_lock(&vs->meta);
	vs->resizing = true;
	while (vs->readers)
		pthread_cond_wait(&vs->resize_cv, &vs->meta);
	pthread_mutex_unlock(&vs->meta);
}

void h5m_vds_resize_end(struct h5m_vds *vs)
{
	pthread_mutex_lock(&vs->meta);
	vs->resizing = false;
	pthread_cond_broadcast(&vs->resize_cv);
	pthread_mutex_unlock(&vs->meta);
}

int h5m_vds_take_wb_error(struct h5m_vds *vs)
{
	int rc;

	pthread_mutex_lock(&vs->meta);
	rc = vs->wb_error;
	vs->wb_error = 0;
	pthread_mutex_unlock(&vs->meta);
	return rc;
}

void h5m_vds_set_wb_error(struct h5m_vds *vs, int rc)
{
	pthread_mutex_lock(&vs->meta);
	vs->wb_error = rc;
	pthread_mutex_unlock(&vs->meta);
}

void h5m_vds_set_pending(struct h5m_vds *vs, bool pending)
{
	pthread_mutex_lock(&vs->meta);
	vs->pending = pending;
	pthread_mutex_unlock(&vs->meta);
}
