/*
 * peerCred(fd): the credentials (pid, uid, gid) the kernel recorded for the peer of a
 * connected Unix stream socket, read with getsockopt(SO_PEERCRED). Node has no API
 * for it; the control socket needs it to tell who is asking for a switchover.
 *
 * The values are those at connect() time (socket(7)), so they cannot be forged by
 * the client. Throws an Error carrying strerror(errno) when getsockopt fails.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <node_api.h>

/* Throws a pending JS exception if a Node-API call failed; returns NULL from the caller. */
#define NAPI_CALL(env, call)                                          \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      bool pending = false;                                           \
      napi_is_exception_pending((env), &pending);                     \
      if (!pending) napi_throw_error((env), NULL, "Node-API call failed: " #call); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static napi_value set_number(napi_env env, napi_value object, const char *name, double value) {
  napi_value number;
  NAPI_CALL(env, napi_create_double(env, value, &number));
  NAPI_CALL(env, napi_set_named_property(env, object, name, number));
  return object;
}

static napi_value peer_cred(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "peerCred(fd): fd is required");
    return NULL;
  }
  napi_valuetype type;
  NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_number) {
    napi_throw_type_error(env, NULL, "peerCred(fd): fd must be a number");
    return NULL;
  }
  int32_t fd;
  NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));

  struct ucred cred;
  socklen_t len = sizeof(cred);
  memset(&cred, 0, sizeof(cred));
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    char message[256];
    int saved = errno;
    snprintf(message, sizeof(message), "getsockopt(SO_PEERCRED) on fd %d failed: %s", (int)fd, strerror(saved));
    napi_throw_error(env, NULL, message);
    return NULL;
  }

  napi_value result;
  NAPI_CALL(env, napi_create_object(env, &result));
  if (set_number(env, result, "pid", (double)cred.pid) == NULL) return NULL;
  if (set_number(env, result, "uid", (double)cred.uid) == NULL) return NULL;
  if (set_number(env, result, "gid", (double)cred.gid) == NULL) return NULL;
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "peerCred", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
