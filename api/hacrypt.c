/* hacrypt.c - see hacrypt.h. OpenSSL does the cryptography; nothing here is hand-made but the
 * header's form. */
#include "hacrypt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void derive(const char *secret, size_t secret_len, const char *label, unsigned char out[32])
{
	unsigned n = 32;
	HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)label, strlen(label), out, &n);
}

void ha_hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

void ha_request_mac(const char *secret, size_t secret_len, const char *t, const char *nonce, const char *origin,
		    long long gen, char out[65])
{
	unsigned char key[32], md[32];
	unsigned n = 32;
	char msg[160];
	int len = snprintf(msg, sizeof(msg), "%s\n%s\n%s\n%lld", t, nonce, origin, gen);

	derive(secret, secret_len, "pgw-ha auth v1", key);
	HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, (size_t)len, md, &n);
	ha_hex(md, 32, out);
	OPENSSL_cleanse(key, sizeof(key));
}

int ha_seal(const char *secret, size_t secret_len, const char *aad, const char *pt, size_t len, unsigned char **out,
	    size_t *outlen)
{
	unsigned char key[32], *o = malloc(IV_LEN + len + TAG_LEN);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, ok = 0;

	derive(secret, secret_len, "pgw-ha enc v1", key);
	if (o && c && RAND_bytes(o, IV_LEN) == 1 && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, o) == 1 &&
	    EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
	    EVP_EncryptUpdate(c, o + IV_LEN, &n, (const unsigned char *)pt, (int)len) == 1 &&
	    EVP_EncryptFinal_ex(c, o + IV_LEN + n, &n) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, o + IV_LEN + len) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok) {
		free(o);
		return -1;
	}
	*out = o;
	*outlen = IV_LEN + len + TAG_LEN;
	return 0;
}

char *ha_unseal(const char *secret, size_t secret_len, const char *aad, const unsigned char *in, size_t len)
{
	unsigned char key[32];
	EVP_CIPHER_CTX *c;
	char *pt;
	int n = 0, ok = 0;

	if (len < IV_LEN + TAG_LEN || len - IV_LEN - TAG_LEN > INT32_MAX)
		return NULL;
	if (!(pt = malloc(len - IV_LEN - TAG_LEN + 1)))
		return NULL;
	c = EVP_CIPHER_CTX_new();
	derive(secret, secret_len, "pgw-ha enc v1", key);
	if (c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
	    EVP_DecryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
	    EVP_DecryptUpdate(c, (unsigned char *)pt, &n, in + IV_LEN, (int)(len - IV_LEN - TAG_LEN)) == 1 &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(in + len - TAG_LEN)) == 1 &&
	    EVP_DecryptFinal_ex(c, (unsigned char *)pt + n, &n) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(key, sizeof(key));
	if (!ok) {
		free(pt);
		return NULL;
	}
	pt[len - IV_LEN - TAG_LEN] = '\0';
	return pt;
}

int ha_header_parse(const char *h, char t[24], char nonce[33], char mac[65], long long *ts)
{
	int end = -1;

	if (sscanf(h, "t=%20[0-9],n=%32[0-9a-f],m=%64[0-9a-f]%n", t, nonce, mac, &end) != 3 || end < 0 || h[end] ||
	    strlen(t) > 18 || strlen(nonce) != 32 || strlen(mac) != 64)
		return -1;
	*ts = atoll(t);
	return 0;
}
