# Node-API addon: SO_PEERCRED and SO_PEERGROUPS (src/adapters/peer-cred.ts) and Unix datagrams (src/adapters/sd-notify.ts), Linux.
# Built by `npm run build:native`; output in build/Release/peercred.node.
{
  "targets": [
    {
      "target_name": "peercred",
      "sources": ["peercred.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra"]
    }
  ]
}
