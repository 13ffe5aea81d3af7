/*
 * The Unix-socket calls Node has no API for:
 *
 * peerCred(fd): the credentials (pid, uid, gid) the kernel recorded for the peer of a
 * connected Unix stream socket, read with getsockopt(SO_PEERCRED); the control socket
 * needs it to tell who is asking for a switchover. The values are those at connect()
 * time (socket(7)), so they cannot be forged by the client.
 *
 * peerGroups(fd): the peer's supplementary groups, recorded at connect() like the above,
 * read with getsockopt(SO_PEERGROUPS) (Linux 4.13). null when the kernel (ENOPROTOOPT)
 * or the headers this was built with lack it: the caller then falls back to
 * /proc/<pid>/status, which is read after connect() and only while the client lives.
 *
 * sendDatagram(path, buffer): one datagram to a Unix datagram socket, as sd_notify(3)
 * sends to $NOTIFY_SOCKET; a path starting with '@' is in the abstract namespace.
 * Node's dgram module only speaks UDP.
 *
 * Both throw an Error carrying strerror(errno) when the system call fails.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>
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

/*
 * Reads the one argument of `fn(fd)` into *fd. Returns 0, or -1 with a JavaScript
 * exception pending (the caller returns NULL).
 */
static int fd_argument(napi_env env, napi_callback_info info, const char *fn, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  char message[64];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "napi_get_cb_info failed");
    return -1;
  }
  if (argc < 1) {
    snprintf(message, sizeof(message), "%s(fd): fd is required", fn);
    napi_throw_type_error(env, NULL, message);
    return -1;
  }
  napi_valuetype type;
  if (napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number) {
    snprintf(message, sizeof(message), "%s(fd): fd must be a number", fn);
    napi_throw_type_error(env, NULL, message);
    return -1;
  }
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_error(env, NULL, "napi_get_value_int32 failed");
    return -1;
  }
  return 0;
}

static napi_value peer_cred(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (fd_argument(env, info, "peerCred", &fd) != 0) return NULL;

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

static napi_value peer_groups(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (fd_argument(env, info, "peerGroups", &fd) != 0) return NULL;

  napi_value result;
#ifdef SO_PEERGROUPS
  /* Most users are in a few groups; the kernel says how much room it needs (ERANGE). */
  socklen_t len = 64 * sizeof(gid_t);
  gid_t *groups = malloc(len);
  if (groups == NULL) {
    napi_throw_error(env, NULL, "peerGroups: out of memory");
    return NULL;
  }
  for (;;) {
    socklen_t room = len;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) break;
    int saved = errno;
    if (saved == ERANGE && len > room) {
      gid_t *bigger = realloc(groups, len);
      if (bigger == NULL) {
        free(groups);
        napi_throw_error(env, NULL, "peerGroups: out of memory");
        return NULL;
      }
      groups = bigger;
      continue;
    }
    free(groups);
    if (saved == ENOPROTOOPT) {
      NAPI_CALL(env, napi_get_null(env, &result));
      return result;
    }
    char message[256];
    snprintf(message, sizeof(message), "getsockopt(SO_PEERGROUPS) on fd %d failed: %s", (int)fd, strerror(saved));
    napi_throw_error(env, NULL, message);
    return NULL;
  }
  size_t count = len / sizeof(gid_t);
  if (napi_create_array_with_length(env, count, &result) != napi_ok) {
    free(groups);
    napi_throw_error(env, NULL, "peerGroups: napi_create_array_with_length failed");
    return NULL;
  }
  for (size_t i = 0; i < count; i++) {
    napi_value gid;
    if (napi_create_double(env, (double)groups[i], &gid) != napi_ok || napi_set_element(env, result, (uint32_t)i, gid) != napi_ok) {
      free(groups);
      napi_throw_error(env, NULL, "peerGroups: building the result failed");
      return NULL;
    }
  }
  free(groups);
  return result;
#else
  (void)fd;
  NAPI_CALL(env, napi_get_null(env, &result));
  return result;
#endif
}

static napi_value throw_errno(napi_env env, const char *what, int saved) {
  char message[256];
  snprintf(message, sizeof(message), "%s failed: %s", what, strerror(saved));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value send_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "sendDatagram(path, buffer): both are required");
    return NULL;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t path_len = 0;
  /* sun_path holds 108 bytes; no terminating NUL is needed with an explicit length. */
  if (napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof(addr.sun_path), &path_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "sendDatagram: path must be a string");
    return NULL;
  }
  if (path_len == 0 || path_len >= sizeof(addr.sun_path) - 1) {
    napi_throw_range_error(env, NULL, "sendDatagram: path is empty or longer than a Unix socket address allows");
    return NULL;
  }
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  bool is_buffer = false;
  NAPI_CALL(env, napi_is_buffer(env, argv[1], &is_buffer));
  if (!is_buffer) {
    napi_throw_type_error(env, NULL, "sendDatagram: buffer must be a Buffer");
    return NULL;
  }
  void *data = NULL;
  size_t length = 0;
  NAPI_CALL(env, napi_get_buffer_info(env, argv[1], &data, &length));

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_UNIX, SOCK_DGRAM)", errno);
  socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
  ssize_t sent = sendto(fd, data, length, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
  int saved = errno;
  close(fd);
  if (sent < 0) return throw_errno(env, "sendto(NOTIFY_SOCKET)", saved);
  napi_value result;
  NAPI_CALL(env, napi_create_double(env, (double)sent, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  NAPI_CALL(env, napi_create_function(env, "peerCred", NAPI_AUTO_LENGTH, peer_cred, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "peerCred", fn));
  NAPI_CALL(env, napi_create_function(env, "peerGroups", NAPI_AUTO_LENGTH, peer_groups, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "peerGroups", fn));
  NAPI_CALL(env, napi_create_function(env, "sendDatagram", NAPI_AUTO_LENGTH, send_datagram, NULL, &fn));
  NAPI_CALL(env, napi_set_named_property(env, exports, "sendDatagram", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
