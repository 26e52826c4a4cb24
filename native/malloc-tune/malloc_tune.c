// glibc's malloc knobs that Node does not expose.
//   hold(mmapThreshold, trimThreshold): allocations up to mmapThreshold come from the heap
//     (not a fresh mmap each), and the heap keeps up to trimThreshold of free memory at its
//     top instead of giving it back at once; returns false where malloc is not glibc's.
//   trim(): gives free heap memory back to the system now (malloc_trim(0)); true if any was.
//   discard(arrayBuffer, offset, length): madvise(MADV_DONTNEED) on the whole pages inside
//     the range: their memory goes back to the system and they read as zeros when next
//     touched (for an idle arena's free slices; the caller knows nothing there is in use).
//   adviseHugePages(arrayBuffer): madvise(MADV_HUGEPAGE) on the buffer's whole pages, so a
//     first touch maps 2 MiB at a time where transparent huge pages are on "madvise".
#include <node_api.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
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

/** The whole pages of [data + offset, data + offset + length), advised with `advice`; 0 if none. */
static int advise(void* data, size_t offset, size_t length, int advice) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)data + offset + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)data + offset + length) & ~(page - 1);
  if (end <= start) return 0;
  return madvise((void*)start, end - start, advice) == 0;
}

/** Reads the ArrayBuffer `arg` into data and length; 0 after throwing a TypeError when it is none. */
static int arraybuffer_arg(napi_env env, napi_value arg, void** data, size_t* length) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, arg, &is_ab) != napi_ok || !is_ab ||
      napi_get_arraybuffer_info(env, arg, data, length) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected an ArrayBuffer");
    return 0;
  }
  return 1;
}

static napi_value Discard(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3];
  void* data = NULL;
  size_t byte_length = 0;
  int64_t offset = -1, length = -1;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 3) {
    napi_throw_type_error(env, "EINVAL", "discard(arrayBuffer, offset, length)");
    return NULL;
  }
  if (!arraybuffer_arg(env, args[0], &data, &byte_length)) return NULL;
  if (napi_get_value_int64(env, args[1], &offset) != napi_ok || napi_get_value_int64(env, args[2], &length) != napi_ok ||
      offset < 0 || length < 0 || (uint64_t)offset + (uint64_t)length > byte_length) {
    napi_throw_range_error(env, "ERANGE", "discard: the range must lie inside the buffer");
    return NULL;
  }
#if defined(__linux__)
  return boolean(env, advise(data, (size_t)offset, (size_t)length, MADV_DONTNEED));
#else
  return boolean(env, 0);
#endif
}

static napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  void* data = NULL;
  size_t byte_length = 0;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  if (argc < 1 || !arraybuffer_arg(env, args[0], &data, &byte_length)) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  return boolean(env, advise(data, 0, byte_length, MADV_HUGEPAGE));
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
  napi_create_function(env, "discard", NAPI_AUTO_LENGTH, Discard, NULL, &fn);
  napi_set_named_property(env, exports, "discard", fn);
  napi_create_function(env, "adviseHugePages", NAPI_AUTO_LENGTH, AdviseHugePages, NULL, &fn);
  napi_set_named_property(env, exports, "adviseHugePages", fn);
  return exports;
}
