/*
 * Functions shared inside the data area only (not part of its public contract).
 */
#ifndef FM_DATA_INTERNAL_H
#define FM_DATA_INTERNAL_H

#include "data/data.h"

/*
 * Stops csv from hashing what it reads, for readers whose digest nobody asks for (a second pass
 * over a file already hashed, chunked reading). Call before the first fm_csv_next;
 * fm_csv_digest then reports the digest of nothing.
 */
void fm_csv_skip_digest(fm_csv_t *csv);

/*
 * Checks that n bytes at s are a number in fm_value_parse_number's grammar without computing
 * it: FM_OK, FM_ERANGE for the infinity words, else FM_EPARSE. An overflowing number such as
 * 1e999 is FM_OK here; fm_value_parse_number reports it.
 */
int fm_value_check_number(const char *s, size_t n);

#endif
