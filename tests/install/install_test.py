#!/usr/bin/python3
"""The installed package, as a bot's own build uses it. Everything happens in
a temporary directory: `cmake --install` into a prefix there; the layout
(binary, headers, libraries with their soname, CMake package, pkg-config
file, manual page); no wolfSSL name exported by either library; then
tools/example/example_bot.cc, copied out of the source tree, built three ways
against the prefix only: CMake's find_package(shardring) with shardring::engine
(shared) and shardring::engine_static, and `pkg-config --cflags --libs
shardring`. Each bot runs 1 shard against the installed `shardring gateway`
and must see READY and events and exit 0.

`cmake --install` also writes install_manifest.txt into the build directory;
the test puts back what was there before, so it leaves nothing behind.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("SHARDRING_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE = os.environ.get("SHARDRING_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
CMAKE = os.environ.get("SHARDRING_CMAKE", "cmake")
CXX = os.environ.get("SHARDRING_CXX", "c++")
GENERATOR = os.environ.get("SHARDRING_GENERATOR", "Ninja")
MAKE_PROGRAM = os.environ.get("SHARDRING_MAKE_PROGRAM", "")
VERSION = os.environ.get("SHARDRING_VERSION", "0.1.0")
SOVERSION = os.environ.get("SHARDRING_SOVERSION", "0.1")
WOLFSSL_INSIDE = os.environ.get("SHARDRING_WOLFSSL_STATIC", "ON").upper() in ("ON", "1", "TRUE")
BOT_SECONDS = 7  # the bot prints its table at 5 s

# Names wolfSSL defines (its API and its internal, generic ones).
WOLFSSL_NAME = re.compile(r"^(wolfSSL|wolfTLS|wc_|sp_|fe_|ge_|Transform|AES_|ecc_|mp_|TLSX_)")


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def defined_globals(args):
    out = run(["nm", "--defined-only", "--format=posix", *args])
    names = []
    for line in out.splitlines():
        parts = line.split()
        # "name type value [size]": upper-case types are global (u, v, w too).
        if len(parts) >= 2 and len(parts[1]) == 1 and (parts[1].isupper() or parts[1] in "uvw"):
            names.append(parts[0])
    return names


class InstalledPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="shardring-install-")
        cls.prefix = os.path.join(cls.tmp.name, "prefix")
        manifest = os.path.join(BUILD, "install_manifest.txt")
        before = open(manifest, "rb").read() if os.path.exists(manifest) else None
        try:
            run([CMAKE, "--install", BUILD, "--prefix", cls.prefix])
        finally:
            if before is None:
                if os.path.exists(manifest):
                    os.remove(manifest)
            else:
                with open(manifest, "wb") as f:
                    f.write(before)
        cls.lib = os.path.join(cls.prefix, "lib")
        # The example, out of the source tree: it sees nothing but the prefix.
        cls.src = os.path.join(cls.tmp.name, "bot")
        os.makedirs(cls.src)
        shutil.copy(os.path.join(SOURCE, "tools/example/example_bot.cc"), cls.src)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, rel):
        return os.path.join(self.prefix, rel)

    def test_1_layout(self):
        for rel in ["bin/shardring",
                    "include/shardring/engine/engine.h",
                    "include/shardring/engine/session_store.h",
                    "include/shardring/gateway/payloads.h",
                    "include/shardring/parse/compression.h",
                    "lib/libshardring.a",
                    f"lib/libshardring.so.{VERSION}",
                    "lib/cmake/shardring/shardringConfig.cmake",
                    "lib/cmake/shardring/shardringConfigVersion.cmake",
                    "lib/cmake/shardring/shardringTargets.cmake",
                    "lib/pkgconfig/shardring.pc",
                    "share/man/man1/shardring.1"]:
            self.assertTrue(os.path.isfile(self.path(rel)), rel)
        self.assertEqual(os.readlink(self.path(f"lib/libshardring.so.{SOVERSION}")),
                         f"libshardring.so.{VERSION}")
        self.assertEqual(os.readlink(self.path("lib/libshardring.so")),
                         f"libshardring.so.{SOVERSION}")
        soname = run(["objdump", "-p", self.path(f"lib/libshardring.so.{VERSION}")])
        self.assertRegex(soname, rf"SONAME\s+libshardring\.so\.{re.escape(SOVERSION)}\n")
        # The installed program works on its own.
        out = run([self.path("bin/shardring"), "--version"])
        self.assertTrue(out.startswith(f"shardring {VERSION}\n"), out)

    def test_2_wolfssl_is_hidden(self):
        if not WOLFSSL_INSIDE:
            self.skipTest("built with the system's libwolfssl, a dependency")
        shared = defined_globals(["-D", self.path(f"lib/libshardring.so.{VERSION}")])
        static = defined_globals([self.path("lib/libshardring.a")])
        self.assertTrue(any("Engine" in n for n in shared))  # nm reads them at all
        self.assertTrue(any("Engine" in n for n in static))
        for what, names in (("libshardring.so", shared), ("libshardring.a", static)):
            leaked = [n for n in names if WOLFSSL_NAME.match(n)]
            self.assertEqual(leaked, [], f"{what} exports wolfSSL's names")
        needed = run(["objdump", "-p", self.path(f"lib/libshardring.so.{VERSION}")])
        self.assertNotIn("libwolfssl", needed)

    def test_3_bots_built_against_the_prefix_run(self):
        bots = self.build_with_cmake() + [self.build_with_pkg_config()]
        with Gateway(self.path("bin/shardring"), self.tmp.name) as gw:
            procs = [(bot, subprocess.Popen([bot, gw.url, "1", str(BOT_SECONDS)],
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            text=True, env=self.bot_env()))
                     for bot in bots]
            for bot, p in procs:
                out, err = p.communicate(timeout=BOT_SECONDS + 60)
                name = os.path.basename(bot)
                self.assertEqual(p.returncode, 0, f"{name}:\n{err}")
                self.assertRegex(err, r"after \d+ s: [1-9]\d* events, 1/1 shards ready", name)
                self.assertRegex(err, r"\n  READY +1\n", name)
        stats = gw.stats()
        self.assertEqual(stats["identifies"], len(bots), stats)
        self.assertGreater(stats["events_sent"], 10 * len(bots), stats)

    def bot_env(self):
        env = dict(os.environ)
        env.pop("DISCORD_TOKEN", None)
        env.pop("LD_LIBRARY_PATH", None)  # the rpath finds libshardring.so
        return env

    def build_with_cmake(self):
        with open(os.path.join(self.src, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.25)\n"
                    "project(example_bot CXX)\n"
                    f"find_package(shardring {VERSION} REQUIRED)\n"
                    "add_executable(example_bot example_bot.cc)\n"
                    "target_link_libraries(example_bot PRIVATE shardring::engine)\n"
                    "add_executable(example_bot_static example_bot.cc)\n"
                    "target_link_libraries(example_bot_static PRIVATE shardring::engine_static)\n")
        build = os.path.join(self.tmp.name, "bot-build")
        cmd = [CMAKE, "-S", self.src, "-B", build, "-G", GENERATOR, "-DCMAKE_BUILD_TYPE=Release",
               f"-DCMAKE_CXX_COMPILER={CXX}", f"-DCMAKE_PREFIX_PATH={self.prefix}"]
        if MAKE_PROGRAM:
            cmd.append(f"-DCMAKE_MAKE_PROGRAM={MAKE_PROGRAM}")
        run(cmd)
        run([CMAKE, "--build", build, "-j2"])
        shared, static = os.path.join(build, "example_bot"), os.path.join(build, "example_bot_static")
        ldd = run(["ldd", shared])
        self.assertIn(os.path.join(self.lib, f"libshardring.so.{SOVERSION}"), ldd)
        self.assertNotIn("libshardring", run(["ldd", static]))
        return [shared, static]

    def build_with_pkg_config(self):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.lib, "pkgconfig"))
        flags = run(["pkg-config", "--cflags", "--libs", "shardring"], env=env).split()
        self.assertIn("-I" + os.path.join(self.prefix, "include/shardring"),
                      [os.path.normpath(f) if f.startswith("-I") else f for f in flags])
        self.assertEqual(run(["pkg-config", "--modversion", "shardring"], env=env).strip(),
                         VERSION)
        out = os.path.join(self.tmp.name, "example_bot_pkg_config")
        run([CXX, "-std=c++20", "-O2", os.path.join(self.src, "example_bot.cc"), "-o", out,
             *flags, f"-Wl,-rpath,{self.lib}"])
        return out


class Gateway:
    """`shardring gateway` on a free loopback port, stopped on exit."""

    def __init__(self, shardring, tmp):
        self.shardring, self.tmp = shardring, tmp
        self.stats_path = os.path.join(tmp, "gateway-stats.json")

    def __enter__(self):
        self.log = open(os.path.join(self.tmp, "gateway.log"), "w+b")
        # Every bot identifies shard 0 at once: no identify window.
        self.proc = subprocess.Popen(
            [self.shardring, "gateway", "--listen", "127.0.0.1:0", "--threads", "1",
             "--shards", "1", "--rate", "50", "--identify-window-ms", "0",
             "--stats-json", self.stats_path],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 10
        port = None
        while port is None and time.time() < deadline and self.proc.poll() is None:
            self.log.seek(0)
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", self.log.read())
            if m:
                port = int(m.group(1))
            else:
                time.sleep(0.02)
        if port is None:
            self.__exit__(None, None, None)
            raise AssertionError("the gateway did not start")
        self.url = f"ws://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def stats(self):
        with open(self.stats_path) as f:
            return json.load(f)


if __name__ == "__main__":
    unittest.main(verbosity=2)
