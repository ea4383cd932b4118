/* hash: SHA-256 through OpenSSL's EVP interface, rendered as hex. */
#include "base/hash.h"
#include "base/exitcode.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

/* rbk_hash_sha256 is never defined: the handle is libcrypto's own context,
 * so the incremental API costs no allocation of ours. */
static EVP_MD_CTX *ctx_of(rbk_hash_sha256 *h) { return (EVP_MD_CTX *)(void *)h; }

/* EVP fails only when libcrypto cannot allocate: the same policy as mem.h. */
static void crypto_fatal(void)
{
	fputs("rbk: error: out of memory (libcrypto sha-256)\n", stderr);
	exit(RBK_EXIT_INTERRUPTED);
}

static void to_hex(const unsigned char md[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = '\0';
}

/* The digest, fetched once: EVP_sha256() looks it up again at every use.
 * libcrypto is told not to read the system's openssl.cnf, which has
 * nothing to say about a plain SHA-256 and costs every start a file's
 * parse. */
static const EVP_MD *sha256(void)
{
	static EVP_MD *md;
	if (!md) {
		OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (!md)
			crypto_fatal();
	}
	return md;
}

void rbk_hash_sha256_hex(const void *data, size_t len, char out[65])
{
	/* One context for every one-shot digest (the engine hashes on one
	 * thread): no allocation per event. */
	static EVP_MD_CTX *c;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!c && !(c = EVP_MD_CTX_new()))
		crypto_fatal();
	if (!EVP_DigestInit_ex(c, sha256(), NULL) || !EVP_DigestUpdate(c, data, len) ||
	    !EVP_DigestFinal_ex(c, md, &n) || n != 32)
		crypto_fatal();
	to_hex(md, out);
}

rbk_hash_sha256 *rbk_hash_sha256_init(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || !EVP_DigestInit_ex(c, sha256(), NULL))
		crypto_fatal();
	return (rbk_hash_sha256 *)(void *)c;
}

void rbk_hash_sha256_update(rbk_hash_sha256 *h, const void *data, size_t len)
{
	if (len && !EVP_DigestUpdate(ctx_of(h), data, len))
		crypto_fatal();
}

void rbk_hash_sha256_final(rbk_hash_sha256 *h, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_DigestFinal_ex(ctx_of(h), md, &n) || n != 32)
		crypto_fatal();
	EVP_MD_CTX_free(ctx_of(h));
	to_hex(md, out);
}
