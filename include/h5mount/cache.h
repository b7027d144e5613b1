/* cache.h: a bounded, thread-safe LRU cache of decoded dataset blocks, keyed by
 * (owner, block). It holds bytes only: it never calls HDF5 and never decides what a block is. */
#ifndef H5MOUNT_CACHE_H
#define H5MOUNT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h5m_cache;
struct h5m_cache_ent;

/* Creates a cache that keeps at most `capacity` bytes of unreferenced blocks (referenced ones
 * can push it above that until released). Returns NULL on allocation failure. */
struct h5m_cache *h5m_cache_new(size_t capacity);

/* Frees the cache and every block. No entry may still be referenced. */
void h5m_cache_free(struct h5m_cache *c);

/* Returns `len` bytes for a block to put into c, or NULL when out of memory. *zeroed says
 * whether they read as zeros (fresh pages, which cost nothing to have zeroed); otherwise their
 * bytes are unspecified (reused memory is not cleared: a block read from the file overwrites
 * it anyway). Blocks of 64 KiB and more are pages of their own: freed ones are kept for reuse
 * (see h5m_cache_set_spare) and the rest go back to the system. Hand the memory to
 * h5m_cache_put, which takes it over, or back with h5m_cache_discard. Takes the cache lock
 * briefly. */
void *h5m_cache_alloc(struct h5m_cache *c, size_t len, bool *zeroed);

/* Frees memory from h5m_cache_alloc(c, len, ...) that was not put. Takes the cache lock. */
void h5m_cache_discard(struct h5m_cache *c, void *data, size_t len);

/* Lets the cache keep freed block memory for reuse while its blocks (clean and dirty) and the
 * kept memory together stay within capacity + spare (without spare, up to 8 MiB). The views
 * pass the dirty limit, so streaming writes reuse the blocks that write-back made clean and
 * eviction freed. Default 0. */
void h5m_cache_set_spare(struct h5m_cache *c, size_t spare);

/* Bytes of freed block memory kept for reuse. */
size_t h5m_cache_pooled(struct h5m_cache *c);

/* Finds block (owner, block) and returns it referenced (release with h5m_cache_release), or
 * NULL. Takes the cache lock briefly; never blocks on I/O. */
struct h5m_cache_ent *h5m_cache_get(struct h5m_cache *c, uint64_t owner, uint64_t block);

/* Inserts `data` (from h5m_cache_alloc(c, len, ...); ownership passes to the cache, even on failure) as
 * block (owner, block) and returns it referenced. If the block is already present, `data` is
 * freed and the present entry is returned. Returns NULL only when out of memory, after freeing
 * `data`. The cache never judges staleness: the caller inserts only blocks of the owner's
 * current geometry (the views hold a read of the dataset, or its write lock, while loading).
 * Evicts least recently used unreferenced blocks to stay within capacity. */
struct h5m_cache_ent *h5m_cache_put(struct h5m_cache *c, uint64_t owner, uint64_t block, void *data, size_t len);

/* Drops one reference taken by get/put. */
void h5m_cache_release(struct h5m_cache *c, struct h5m_cache_ent *e);

/* Drops one reference after a reader took `bytes` of the entry. Once readers have taken as
 * many bytes as the block holds (counted since it was loaded or last made dirty or clean), a
 * clean block is forgotten at its last release (by this or h5m_cache_release) and its memory
 * reused for the next block: the reader's side (the kernel's page cache) normally holds those
 * bytes now, and a sequential reader never comes back for them. Overlapping reads, and reads
 * through another view or with O_DIRECT, count too: at worst a block is forgotten early and
 * decoded again. */
void h5m_cache_release_delivered(struct h5m_cache *c, struct h5m_cache_ent *e, size_t bytes);

/* The bytes of a referenced entry; valid until released. */
const void *h5m_cache_data(const struct h5m_cache_ent *e, size_t *len);

/* Forgets every block of `owner`, dirty ones included (referenced ones are freed at their last
 * release). Other owners' blocks are untouched. Takes the cache lock. */
void h5m_cache_invalidate(struct h5m_cache *c, uint64_t owner);

/* Bytes currently held (referenced or not, clean or dirty). */
size_t h5m_cache_bytes(struct h5m_cache *c);

/* The bytes of a referenced entry, for a writer that holds the owner's write lock. */
void *h5m_cache_data_mut(struct h5m_cache_ent *e);

/* Marks a referenced entry dirty (pinned: never evicted, not counted against capacity) or
 * clean again (evictable). Dirty bytes are counted in h5m_cache_dirty_bytes(). */
void h5m_cache_set_dirty(struct h5m_cache *c, struct h5m_cache_ent *e, bool dirty);

/* Total bytes of dirty entries. */
size_t h5m_cache_dirty_bytes(struct h5m_cache *c);

/* The block id of an entry. */
uint64_t h5m_cache_block(const struct h5m_cache_ent *e);

/* Collects the dirty entries of `owner`, referenced, sorted by block id, into a malloc'd array
 * (*out, *n; release each and free the array). Returns 0 or -ENOMEM. */
int h5m_cache_dirty_list(struct h5m_cache *c, uint64_t owner, struct h5m_cache_ent ***out, size_t *n);

#endif
