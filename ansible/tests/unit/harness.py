# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)
"""What the module tests share: the real baton, standalone, on loopback.

Each test gets a Master: a temporary directory holding a copy of bin/baton (the file the
modules compare with, and the one an upgrade starts the new master from), a config with
its control socket and two bin/hello workers on a free 127.0.0.1 port, and `baton run`
started from there. Modules run as Ansible runs them: a separate python3 process given a
file of arguments, importing the collection through a collections.sh directory.

The test process is a child subreaper (PR_SET_CHILD_SUBREAPER): masters retired by an
upgrade, and new masters re-parented when their parent exits, become its children, so
they are waited for here and a zombie counts as dead (PID 1 of this machine kind does not
reap).

BATON_BIN and HELLO_BIN name the binaries (default: the repository's bin/, `make build`).
"""

from __future__ import absolute_import, division, print_function

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION = os.path.dirname(os.path.dirname(HERE))  # ansible/
REPO = os.path.dirname(COLLECTION)
BATON_BIN = os.environ.get("BATON_BIN", os.path.join(REPO, "bin", "baton"))
HELLO_BIN = os.environ.get("HELLO_BIN", os.path.join(REPO, "bin", "hello"))
MODULES = os.path.join(COLLECTION, "plugins", "modules")

PR_SET_CHILD_SUBREAPER = 36

_collections_dir = None


def setup():
    """Once per test run: become a subreaper, make the collections directory."""
    global _collections_dir
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    if _collections_dir is None:
        _collections_dir = tempfile.mkdtemp(prefix="baton-coll-")
        out = subprocess.check_output([os.path.join(COLLECTION, "collections.sh"), _collections_dir])
        _collections_dir = out.decode().strip()
    return _collections_dir


def teardown():
    global _collections_dir
    if _collections_dir:
        shutil.rmtree(_collections_dir, ignore_errors=True)
        _collections_dir = None


def collections_dir():
    return _collections_dir


def have_binaries():
    return all(os.access(p, os.X_OK) for p in (BATON_BIN, HELLO_BIN))


def wait_for(what, cond, timeout=30.0):
    """Polls cond until it returns something true, or fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.02)


def alive(pid):
    """Whether pid runs: a zombie, or a process already gone, is dead."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (IOError, OSError):
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def reap():
    """Waits for every exited child (the retired masters re-parented to this process)."""
    while True:
        try:
            pid = os.waitpid(-1, os.WNOHANG)[0]
        except ChildProcessError:
            return
        if pid == 0:
            return


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_module(name, args, check_mode=False):
    """Runs module NAME with args as Ansible does; returns its JSON result (a dict)."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
    env = dict(os.environ, PYTHONPATH=_collections_dir, LC_ALL="C")
    try:
        p = subprocess.run([sys.executable, os.path.join(MODULES, name + ".py"), f.name],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=300, check=False)
    finally:
        os.unlink(f.name)
    out = p.stdout.decode()
    try:
        return json.loads(out[out.index("{"):])
    except ValueError:
        raise AssertionError("module %s printed no JSON (exit %d): %s %s" % (name, p.returncode, out, p.stderr.decode()))


GOOD = """control_socket = "{dir}/control.sock"

[[listen]]
name = "http"
address = "127.0.0.1:{port}"

[worker]
command = ["{hello}", "-drain", "50ms"]
count = 2
start_timeout = "{start_timeout}"
stop_timeout = "3s"

[upgrade]
commit = "{commit}"
soak = "200ms"
timeout = "{upgrade_timeout}"
"""


class Master(object):
    """A standalone baton master in a directory of its own."""

    def __init__(self, commit="auto"):
        self.dir = tempfile.mkdtemp(prefix="baton-mod-")
        self.binary = os.path.join(self.dir, "baton")
        self.config = os.path.join(self.dir, "web.toml")
        self.socket = os.path.join(self.dir, "control.sock")
        self.port = free_port()
        self.pids = set()  # every master seen, stopped at the end
        self.workers = set()  # every worker seen, killed at the end if still there
        self.commit = commit
        shutil.copy(BATON_BIN, self.binary)
        self.write_config()
        self.log = open(os.path.join(self.dir, "baton.log"), "wb")
        p = subprocess.Popen([self.binary, "run", "-c", self.config], cwd=self.dir,
                             stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.proc = p
        self.pids.add(p.pid)
        wait_for("the master to answer", lambda: self.status() is not None)

    def write_config(self, start_timeout="10s", upgrade_timeout="20s", **subst):
        text = GOOD.format(dir=self.dir, port=self.port, hello=HELLO_BIN,
                           start_timeout=start_timeout, upgrade_timeout=upgrade_timeout, commit=self.commit)
        for old, new in subst.items():
            text = text.replace(old, new)
        with open(self.config, "w") as f:
            f.write(text)

    def replace_binary(self):
        """A new inode at the binary's path, as a package upgrade leaves it: the running
        master's /proc/PID/exe then reads "... (deleted)"."""
        tmp = self.binary + ".new"
        shutil.copy(BATON_BIN, tmp)
        os.rename(tmp, self.binary)

    def status(self):
        p = subprocess.run([self.binary, "status", "--json", "--socket", self.socket],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
        if p.returncode != 0:
            return None
        st = json.loads(p.stdout.decode())["status"]
        self.pids.add(st["pid"])
        self.workers.update(w["pid"] for w in st.get("workers") or [])
        return st

    def settled(self):
        """The status once nothing is in flight (no upgrade, no reload)."""
        def quiet():
            st = self.status()
            return st if st and not st.get("upgrade") and not st.get("reload") and st.get("state") == "serving" else None
        return wait_for("the master to settle", quiet)

    def args(self, **kw):
        a = dict(socket=self.socket, binary=self.binary)
        a.update(kw)
        return a

    def _ours(self, pid):
        try:
            exe = os.readlink("/proc/%d/exe" % pid)
        except OSError:
            return False
        return exe.startswith(self.dir + "/") or exe == os.path.realpath(HELLO_BIN)

    def close(self):
        subprocess.run([self.binary, "stop", "--wait", "--timeout", "20s", "--socket", self.socket],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        # Whatever the stop left (a test that failed half-way): only processes that still run
        # this test's programs, never a pid since reused by someone else.
        for pid in self.pids | self.workers:
            if alive(pid) and self._ours(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        reap()
        for pid in self.pids:
            wait_for("master %d to exit" % pid, lambda: not alive(pid), timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
