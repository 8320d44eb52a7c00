{
  "target_defaults": {
    "defines": ["_GNU_SOURCE"],
    "cflags": ["-Wall", "-Wextra", "-Werror", "-O2", "-fno-strict-aliasing"],
    "cflags_c": ["-std=gnu11"]
  },
  "targets": [
    {
      "target_name": "hako_native",
      "sources": ["native/addon.cc", "native/planner_link.cc", "native/spawn.c", "native/child.c", "native/fdpass.c"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17"]
    },
    {
      "target_name": "hako-init",
      "type": "executable",
      "sources": ["native/init.c", "native/executor.c", "native/fdpass.c"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "hako-front",
      "type": "executable",
      "sources": [
        "native/front/main.c",
        "native/front/root.c",
        "native/front/connect.c",
        "native/front/message.c",
        "native/front/serve.c",
        "native/front/fallback.c",
        "native/spawn.c",
        "native/child.c"
      ],
      "defines": ["HAKO_NODE=\"<!(node -p process.execPath)\"", "HAKO_BIN_DIR=\"<(module_root_dir)/bin\""]
    },
    {
      "target_name": "hako-shim",
      "type": "shared_library",
      "product_prefix": "",
      "defines!": ["_LARGEFILE_SOURCE", "_FILE_OFFSET_BITS=64"],
      "sources": [
        "native/preload/init.c",
        "native/preload/config.c",
        "native/preload/report.c",
        "native/preload/memory.c",
        "native/preload/commit.c",
        "native/preload/processes.c",
        "native/preload/files.c",
        "native/preload/connect.c",
        "native/preload/exec.c"
      ],
      "cflags": ["-fPIC", "-fvisibility=hidden", "-ftls-model=initial-exec"],
      "ldflags": ["-Wl,-z,defs", "-Wl,-z,now"]
    }
  ]
}
