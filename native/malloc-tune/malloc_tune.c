// glibc's malloc knobs that Node does not expose.
//   hold(mmapThreshold, trimThreshold): allocations up to mmapThreshold come from the heap
//     (not a fresh mmap each), and the heap keeps up to trimThreshold of free memory at its
//     top instead of giving it back at once; returns false where malloc is not glibc's.
//   trim(): gives free heap memory back to the system now (malloc_trim(0)); true if any was.
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value boolean(napi_env env, int v) {
  napi_value out;
  napi_get_boolean(env, v != 0, &out);
  return out;
}

static napi_value Hold(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  int64_t mmap_threshold = 0, trim_threshold = 0;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 2 || napi_get_value_int64(env, args[0], &mmap_threshold) != napi_ok ||
      napi_get_value_int64(env, args[1], &trim_threshold) != napi_ok || mmap_threshold <= 0 || trim_threshold <= 0) {
    napi_throw_type_error(env, "EINVAL", "hold(mmapThreshold, trimThreshold) takes two positive byte counts");
    return NULL;
  }
#if defined(__GLIBC__)
  int ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
  return boolean(env, ok);
#else
  return boolean(env, 0);
#endif
}

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
#if defined(__GLIBC__)
  return boolean(env, malloc_trim(0));
#else
  return boolean(env, 0);
#endif
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "hold", NAPI_AUTO_LENGTH, Hold, NULL, &fn);
  napi_set_named_property(env, exports, "hold", fn);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  return exports;
}
