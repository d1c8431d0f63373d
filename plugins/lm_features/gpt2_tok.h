/*
 * gpt2_tok.h — GPT-2's byte-level BPE tokenizer.
 *
 * Loads the two files every GPT-2 family checkpoint ships: the vocabulary
 * (vocab.json, or encoder.json in OpenAI's release: token string -> id) and
 * the merges (merges.txt, or vocab.bpe: one "a b" pair per line, by rank).
 * Encoding follows OpenAI's encoder.py exactly: the text is split by GPT-2's
 * pre-tokenization pattern
 *
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * (PCRE2 in UTF + UCP mode, with \s spelt as Unicode's White_Space set, which
 * is what Python's `regex` module matches), each piece's UTF-8 bytes are
 * mapped to the printable characters of bytes_to_unicode(), and BPE merges
 * the lowest-ranked adjacent pair, all its occurrences left to right, until
 * no pair has a rank.
 */
#ifndef MYELIN_GPT2_TOK_H
#define MYELIN_GPT2_TOK_H

#include <stddef.h>
#include <stdint.h>

typedef struct gpt2_tok gpt2_tok;

/* vocab: vocab.json / encoder.json; merges: merges.txt / vocab.bpe. NULL
 * with a reason (naming the file, and the line for merges) in err. */
gpt2_tok *gpt2_tok_load(const char *vocab, const char *merges, char *err, size_t errlen);
void gpt2_tok_free(gpt2_tok *t);
size_t gpt2_tok_vocab_size(const gpt2_tok *t);

/* Appends the ids of text[0..len) to *ids (grown with realloc; *n and *cap
 * updated). Returns 0, or -1 with a reason in err (invalid UTF-8, a piece
 * whose BPE symbols are not in the vocabulary, out of memory). */
int gpt2_tok_encode(gpt2_tok *t, const char *text, size_t len, int32_t **ids, size_t *n, size_t *cap,
                    char *err, size_t errlen);

#endif
