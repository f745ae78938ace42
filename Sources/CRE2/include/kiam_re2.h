// A C face on RE2 (Debian's libre2-dev) for Swift: compile a pattern with Go's regexp syntax,
// ask whether it matches. RE2 is the engine Go's regexp package descends from: linear in the
// input, no backtracking, and it rejects what Go rejects (lookaround, backreferences).
#ifndef KIAM_RE2_H
#define KIAM_RE2_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A compiled expression. Immutable and safe to use from many threads at once.
typedef struct kiam_re2 kiam_re2;

/// Compiles `pattern` (UTF-8, `length` bytes). On success returns the expression; on failure
/// returns NULL, sets `*error_code` to RE2's error code and copies the offending part of the
/// pattern (NUL-terminated, truncated to fit) into `error_arg`.
kiam_re2 *kiam_re2_compile(const char *pattern, size_t length, int *error_code, char *error_arg,
                           size_t error_arg_capacity);

/// 1 when `text` matches: anywhere in it (`anchored` 0, Go's MatchString), or as a whole
/// (`anchored` 1); else 0.
int kiam_re2_match(const kiam_re2 *expression, const char *text, size_t length, int anchored);

/// Frees an expression.
void kiam_re2_free(kiam_re2 *expression);

#ifdef __cplusplus
}
#endif

#endif
