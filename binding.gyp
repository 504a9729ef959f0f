{
  # Build variables (node-gyp passes `--name=value` through to gyp):
  #   pidwatch_dev=1       development and CI build: warnings are errors, and the
  #                        seccomp test launcher is built. The build that `npm install`
  #                        runs for users leaves both out, so that a newer compiler or
  #                        an architecture the launcher does not know cannot fail it.
  #   pidwatch_portable=1  the prebuilt binaries (scripts/prebuild.mjs): glibc symbols
  #                        pinned to glibc 2.28 and libstdc++ symbols to GCC 8's
  #                        (native/compat/), -Os with unused sections dropped, stripped:
  #                        the tarball carries two of them.
  "variables": {
    "pidwatch_dev%": 0,
    "pidwatch_portable%": 0
  },
  "targets": [
    {
      "target_name": "pidwatch",
      "sources": [
        "native/addon.cc",
        "native/environ.cc",
        "native/exits.cc",
        "native/sys.cc",
        "native/spawn.cc",
        "native/spawner.cc",
        "native/process.cc",
        "native/reaper.cc",
        "native/probe.cc",
        "native/capture.cc",
        "native/sync.cc",
        "native/cgroup.cc",
        "native/tree.cc",
        "native/pump.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      # Never unloaded: the reaper and spawner threads may outlive the last environment
      # that loaded the addon (Node unloads an addon that only terminated workers used).
      "ldflags": ["-Wl,-z,nodelete"],
      "conditions": [
        ["pidwatch_dev==1", {
          "cflags": ["-Werror"],
          "cflags_cc": ["-Werror"]
        }],
        ["pidwatch_portable==1", {
          "sources": ["native/compat/libstdcxx.cc"],
          "cflags!": ["-O3"],
          "cflags_cc!": ["-O3"],
          "cflags": ["-Os", "-ffunction-sections", "-fdata-sections"],
          "cflags_cc": ["-include", "<(module_root_dir)/native/compat/glibc-2.28.h"],
          "ldflags": ["-s", "-Wl,--gc-sections"],
          "libraries": ["-Wl,--no-as-needed", "-l:libpthread.so.0", "-Wl,--as-needed"]
        }]
      ]
    },
    {
      # Kills the trees of a pidwatch process that dies (README: The guardian). Built
      # for users too: trees with killOnParentExit need it.
      "target_name": "pidwatch-guardian",
      "type": "executable",
      "sources": ["native/guardian.c"],
      "cflags": ["-Wall", "-Wextra", "-std=gnu11", "-O2"],
      "conditions": [
        ["pidwatch_dev==1", {"cflags": ["-Werror"]}],
        ["pidwatch_portable==1", {
          "sources": ["native/compat/start.c"],
          "ldflags": ["-s", "-Wl,--wrap=__libc_start_main"]
        }]
      ]
    }
  ],
  "conditions": [
    ["pidwatch_dev==1", {
      "targets": [
        {
          "target_name": "seccomp-launch",
          "type": "executable",
          "sources": ["native/tools/seccomp-launch.c"],
          "cflags": ["-Wall", "-Wextra", "-Werror", "-std=gnu11"]
        }
      ]
    }]
  ]
}
