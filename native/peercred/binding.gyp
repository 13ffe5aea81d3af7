# Node-API addon exposing SO_PEERCRED (Linux) to src/adapters/peer-cred.ts.
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
