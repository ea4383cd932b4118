/* hash: SHA-256 through OpenSSL's EVP interface, rendered as hex. */
#include "base/hash.h"
#include "base/exitcode.h"

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

void rbk_hash_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		crypto_fatal();
	to_hex(md, out);
}

rbk_hash_sha256 *rbk_hash_sha256_init(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL))
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
