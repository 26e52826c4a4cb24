// glibc's malloc knobs and page-aligned buffers, which Node does not expose.
//   hold(mmapThreshold, trimThreshold): allocations up to mmapThreshold come from the heap
//     (not a fresh mmap each), and the heap keeps up to trimThreshold of free memory at its
//     top instead of giving it back at once; returns false where malloc is not glibc's.
//   trim(): gives free heap memory back to the system now (malloc_trim(0)); true if any was.
//   alignedBuffer(length): an ArrayBuffer of length rounded up to 4 KiB whose memory starts on
//     a 4 KiB boundary (posix_memalign), so it can be written with O_DIRECT as it is; not
//     zeroed. Freed when the GC collects it; its size is reported to V8 as external memory.
#include <stdint.h>
#include <stdlib.h>
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define ALIGN 4096

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
      napi_get_value_int64(env, args[1], &trim_threshold) != napi_ok || mmap_threshold <= 0 || trim_threshold <= 0 ||
      mmap_threshold > INT32_MAX || trim_threshold > INT32_MAX) {
    napi_throw_type_error(env, "EINVAL", "hold(mmapThreshold, trimThreshold) takes two positive byte counts below 2 GiB");
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

static void FreeAligned(napi_env env, void* data, void* hint) {
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)(uintptr_t)hint, &ignored);
  free(data);
}

static napi_value AlignedBuffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  int64_t length = 0;
  napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
  if (argc < 1 || napi_get_value_int64(env, arg, &length) != napi_ok || length < 0 || length > ((int64_t)1 << 40)) {
    napi_throw_type_error(env, "EINVAL", "alignedBuffer(length) takes a byte count");
    return NULL;
  }
  size_t size = length == 0 ? ALIGN : ((size_t)length + ALIGN - 1) / ALIGN * ALIGN;
  void* data = NULL;
  if (posix_memalign(&data, ALIGN, size) != 0) {
    napi_throw_error(env, "ENOMEM", "alignedBuffer: out of memory");
    return NULL;
  }
  if (napi_create_external_arraybuffer(env, data, size, FreeAligned, (void*)(uintptr_t)size, &out) != napi_ok) {
    free(data);
    napi_throw_error(env, "EINVAL", "alignedBuffer: external ArrayBuffers are not allowed here");
    return NULL;
  }
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)size, &ignored);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "hold", NAPI_AUTO_LENGTH, Hold, NULL, &fn);
  napi_set_named_property(env, exports, "hold", fn);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn);
  napi_set_named_property(env, exports, "trim", fn);
  napi_create_function(env, "alignedBuffer", NAPI_AUTO_LENGTH, AlignedBuffer, NULL, &fn);
  napi_set_named_property(env, exports, "alignedBuffer", fn);
  return exports;
}
