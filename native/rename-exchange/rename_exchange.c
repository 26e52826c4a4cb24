// exchange(a, b): atomically swaps two paths (Linux renameat2 RENAME_EXCHANGE).
// Throws an Error with the errno code (e.g. ENOSYS, EINVAL) when the kernel or the
// filesystem cannot do it; the caller then falls back.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <node_api.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static napi_value Exchange(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  char a[4096], b[4096];
  size_t la = 0, lb = 0;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 2 || napi_get_value_string_utf8(env, args[0], a, sizeof a, &la) != napi_ok ||
      napi_get_value_string_utf8(env, args[1], b, sizeof b, &lb) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "exchange(a, b) takes two path strings");
    return NULL;
  }
#ifdef SYS_renameat2
  long rc = syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
  long rc = -1;
  errno = ENOSYS;
#endif
  if (rc != 0) {
    char code[32];
    snprintf(code, sizeof code, "E%d", errno);
    const char* name = errno == ENOSYS ? "ENOSYS" : errno == EINVAL ? "EINVAL" : errno == ENOENT ? "ENOENT" : errno == EXDEV ? "EXDEV" : code;
    napi_throw_error(env, name, strerror(errno));
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "exchange", NAPI_AUTO_LENGTH, Exchange, NULL, &fn);
  napi_set_named_property(env, exports, "exchange", fn);
  return exports;
}
