#include "kiam_re2.h"

#include <re2/re2.h>

#include <algorithm>
#include <cstring>
#include <new>

struct kiam_re2 {
  re2::RE2 *expression;
};

extern "C" kiam_re2 *kiam_re2_compile(const char *pattern, size_t length, int *error_code, char *error_arg,
                                      size_t error_arg_capacity) {
  // Go's syntax is RE2's default (Perl-like) syntax: UTF-8, `.` not matching newline, `^`/`$` at
  // the text's ends unless (?m), \d \w \s \b, (?i) (?s) (?m) (?U).
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_encoding(re2::RE2::Options::EncodingUTF8);
  re2::RE2 *expression = new (std::nothrow) re2::RE2(re2::StringPiece(pattern, length), options);
  if (expression == nullptr) {
    *error_code = re2::RE2::ErrorInternal;
    if (error_arg_capacity > 0) error_arg[0] = 0;
    return nullptr;
  }
  if (!expression->ok()) {
    *error_code = expression->error_code();
    if (error_arg_capacity > 0) {
      const std::string &arg = expression->error_arg();
      size_t count = std::min(arg.size(), error_arg_capacity - 1);
      std::memcpy(error_arg, arg.data(), count);
      error_arg[count] = 0;
    }
    delete expression;
    return nullptr;
  }
  kiam_re2 *result = new (std::nothrow) kiam_re2{expression};
  if (result == nullptr) {
    delete expression;
    *error_code = re2::RE2::ErrorInternal;
  }
  return result;
}

extern "C" int kiam_re2_match(const kiam_re2 *expression, const char *text, size_t length, int anchored) {
  re2::StringPiece input(text, length);
  return expression->expression->Match(input, 0, length, anchored ? re2::RE2::ANCHOR_BOTH : re2::RE2::UNANCHORED,
                                       nullptr, 0)
             ? 1
             : 0;
}

extern "C" void kiam_re2_free(kiam_re2 *expression) {
  if (expression == nullptr) return;
  delete expression->expression;
  delete expression;
}
