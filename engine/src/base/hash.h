/* hash: SHA-256 as lowercase hex, for the audit chain and pinned sources.
 *
 * The only module that includes OpenSSL headers (libcrypto's EVP interface).
 * Hashing cannot fail short of memory exhaustion inside libcrypto, which is
 * treated like any other out-of-memory: a message and exit
 * RBK_EXIT_INTERRUPTED, so callers need no error path. libcrypto allocates
 * its digest contexts itself, outside mem.h. */
#ifndef RBK_HASH_H
#define RBK_HASH_H

#include <stddef.h>

/* SHA-256 of len bytes at data, as 64 lowercase hex digits and a NUL. */
void rbk_hash_sha256_hex(const void *data, size_t len, char out[65]);

/* Incremental: h = rbk_hash_sha256_init(); rbk_hash_sha256_update(h, ...)
 * any number of times; rbk_hash_sha256_final(h, out) writes the hex digest
 * and frees h. */
typedef struct rbk_hash_sha256 rbk_hash_sha256;

rbk_hash_sha256 *rbk_hash_sha256_init(void);
void rbk_hash_sha256_update(rbk_hash_sha256 *h, const void *data, size_t len);
void rbk_hash_sha256_final(rbk_hash_sha256 *h, char out[65]);

#endif
