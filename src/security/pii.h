/*
 * Personal data masking. A bank's logs, audit trail, error messages and exports must never hold
 * personal data in clear:
 * - card numbers (13 to 19 digits, optionally separated by spaces or dashes, passing the Luhn
 *   check) keep at most the first 6 and last 4 digits (PCI DSS): "4111 1111 1111 1111" ->
 *   "411111******1111";
 * - e-mail addresses and the values of columns marked PII become a keyed hash token
 *   "pii:" + 16 hex (BLAKE2b keyed with the home's PII key), the same for the same value, so
 *   records can still be joined without revealing the value.
 *
 * fm_pii_t holds the key. All functions are thread-safe on a shared fm_pii_t.
 */
#ifndef FM_SECURITY_PII_H
#define FM_SECURITY_PII_H

#include "core/buf.h"
#include "core/error.h"

#include <stddef.h>

typedef struct fm_pii fm_pii_t;

/* Loads <home>/pii.key (32 bytes, mode 0600), creating it when absent. */
int fm_pii_open(const char *home, fm_pii_t **out, fm_error_t *err);
/* A masker with a given key (tests; tools). */
int fm_pii_new_with_key(const unsigned char key[32], fm_pii_t **out);
void fm_pii_free(fm_pii_t *pii);

/* 1 when the n bytes at s are a Luhn-valid card number (13-19 digits, spaces/dashes allowed). */
int fm_pii_is_card(const char *s, size_t n);
/* 1 when s is an e-mail address (local@domain.tld, no spaces). */
int fm_pii_is_email(const char *s, size_t n);

/* Appends the token of a value: "pii:" + 16 hex of its keyed hash. */
int fm_pii_token(const fm_pii_t *pii, const char *s, size_t n, fm_buf_t *out);
/* Appends a whole value masked: card -> first 6 + '*' + last 4; anything else -> its token. */
int fm_pii_mask_value(const fm_pii_t *pii, const char *s, size_t n, fm_buf_t *out);
/*
 * Appends free text (a message, a log line) with every card number and e-mail address found in
 * it masked, and everything else unchanged. pii may be NULL: cards are still masked, e-mails
 * become "<email>".
 */
int fm_pii_scrub(const fm_pii_t *pii, const char *s, size_t n, fm_buf_t *out);
/*
 * A cheap test for the hot path: 0 when fm_pii_scrub would certainly change nothing in the n bytes
 * at s (no '@', no run of 13 or more digits among spaces and dashes); 1 when it might.
 */
int fm_pii_suspect(const char *s, size_t n);
/*
 * Scrubs the NUL-terminated text in the buffer of size bytes in place (truncated to fit) when
 * fm_pii_suspect says it might hold PII. Returns 0, or FM_ENOMEM (text then replaced by "").
 */
int fm_pii_scrub_in_place(const fm_pii_t *pii, char *text, size_t size);

#endif
