{
  "targets": [
    {
      "target_name": "pidwatch",
      "sources": [
        "native/addon.cc",
        "native/sys.cc",
        "native/spawn.cc",
        "native/process.cc",
        "native/probe.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-fvisibility=hidden"]
    },
    {
      "target_name": "pidwatch-guardian",
      "type": "executable",
      "sources": ["native/guardian.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-std=gnu11", "-O2"]
    },
    {
      "target_name": "seccomp-launch",
      "type": "executable",
      "sources": ["native/tools/seccomp-launch.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-std=gnu11"]
    }
  ]
}
