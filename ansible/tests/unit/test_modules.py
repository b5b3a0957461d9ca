# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)
"""baton_upgrade, baton_reload and baton_info against a real standalone baton master
(harness.py): good, failing and idempotent upgrades, force, check mode, reloads, facts.

    python3 -m unittest discover -s ansible/tests/unit -v     (after make build)
"""

from __future__ import absolute_import, division, print_function

import http.client
import os
import subprocess
import unittest

import harness

try:
    import ansible  # noqa: F401  (the modules need ansible-core)
    HAVE_ANSIBLE = True
except ImportError:
    HAVE_ANSIBLE = False


def setUpModule():
    if not HAVE_ANSIBLE:
        raise unittest.SkipTest("ansible-core is not installed (apt-get install ansible)")
    if not harness.have_binaries():
        raise unittest.SkipTest("no %s or %s: run make build" % (harness.BATON_BIN, harness.HELLO_BIN))
    harness.setup()


def tearDownModule():
    harness.teardown()


def runs(pid, path):
    """Whether pid runs the file at path now (same inode)."""
    a, b = os.stat("/proc/%d/exe" % pid), os.stat(path)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class MasterTest(unittest.TestCase):
    def setUp(self):
        self.m = harness.Master()
        self.addCleanup(self.m.close)
        self.before = self.m.settled()

    def get(self):
        c = http.client.HTTPConnection("127.0.0.1", self.m.port, timeout=10)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            return r.read().decode()
        finally:
            c.close()


class TestUpgrade(MasterTest):
    def test_good_upgrade_then_idempotent(self):
        self.m.replace_binary()
        r = harness.run_module("baton_upgrade", self.m.args())
        self.assertFalse(r.get("failed"), r.get("msg"))
        self.assertTrue(r["changed"])
        self.assertEqual(r["baton_exit"], 0)
        self.assertIn("upgrade committed", r["msg"])
        self.assertEqual(r["old_pid"], self.before["pid"])
        self.assertNotEqual(r["new_pid"], r["old_pid"])
        self.assertEqual(r["old_generation"], 1)
        self.assertEqual(r["new_generation"], 2)
        self.assertEqual(r["new_version"], self.before["version"])
        self.assertTrue(r["old_exe"].endswith(" (deleted)"), r["old_exe"])
        self.assertEqual(r["status"]["pid"], r["new_pid"])
        self.assertTrue(runs(r["new_pid"], self.m.binary))
        self.assertIn("generation=2", self.get())

        # Second run: the master runs the binary on disk: nothing to do.
        again = harness.run_module("baton_upgrade", self.m.args())
        self.assertFalse(again.get("failed"), again.get("msg"))
        self.assertFalse(again["changed"])
        self.assertNotIn("baton_exit", again)
        self.assertEqual(again["new_pid"], r["new_pid"])
        self.assertEqual(again["new_generation"], 2)
        self.assertIn("already runs", again["msg"])
        self.assertEqual(self.m.settled()["pid"], r["new_pid"])

    def test_force(self):
        r = harness.run_module("baton_upgrade", self.m.args(force=True))
        self.assertFalse(r.get("failed"), r.get("msg"))
        self.assertTrue(r["changed"])
        self.assertEqual((r["old_generation"], r["new_generation"]), (1, 2))
        self.assertNotEqual(r["new_pid"], r["old_pid"])

    def test_check_mode(self):
        r = harness.run_module("baton_upgrade", self.m.args(), check_mode=True)
        self.assertFalse(r["changed"])
        self.assertIn("already runs", r["msg"])
        self.m.replace_binary()
        r = harness.run_module("baton_upgrade", self.m.args(), check_mode=True)
        self.assertFalse(r.get("failed"), r.get("msg"))
        self.assertTrue(r["changed"])
        self.assertIn("would upgrade", r["msg"])
        self.assertNotIn("baton_exit", r)
        st = self.m.settled()
        self.assertEqual((st["pid"], st["generation"]), (self.before["pid"], 1))

    def test_config_error_rolls_back(self):
        self.m.replace_binary()
        self.m.write_config(**{"count = 2": "count = 0"})
        r = harness.run_module("baton_upgrade", self.m.args())
        self.assertTrue(r.get("failed"))
        self.assertFalse(r["changed"])
        self.assertEqual(r["baton_exit"], 1)
        self.assertIn("upgrade rolled back", r["msg"])
        self.assertIn("%s:9: worker.count: must be from 1 to 1024 (got 0)" % self.m.config, r["msg"])
        self.assertEqual(r["new_pid"], self.before["pid"])
        self.assertEqual(r["new_generation"], 1)
        self.assertIn("generation=1", self.get())
        self.assertIn("rolled back", self.m.settled()["last_error"])

    def test_worker_never_ready_rolls_back(self):
        # sleep never sends READY=1: the new master is not ready within upgrade.timeout.
        self.m.replace_binary()
        self.m.write_config(start_timeout="1s", upgrade_timeout="2s",
                            **{'["%s", "-drain", "50ms"]' % harness.HELLO_BIN: '["/bin/sleep", "600"]'})
        r = harness.run_module("baton_upgrade", self.m.args())
        self.assertTrue(r.get("failed"))
        self.assertEqual(r["baton_exit"], 1)
        self.assertIn("upgrade rolled back", r["msg"])
        self.assertIn("not ready within", r["msg"])
        self.assertEqual((r["new_pid"], r["new_generation"]), (self.before["pid"], 1))
        self.assertIn("generation=1", self.get())

    def test_manual_commit_in_flight(self):
        # commit = "manual": the wait ends once the new master is ready and waits for the
        # operator: exit 4, failed, changed (the upgrade goes on), until baton commit.
        # (The master in charge decides how the upgrade commits: one started manual.)
        m = harness.Master(commit="manual")
        self.addCleanup(m.close)
        before = m.settled()
        m.replace_binary()
        r = harness.run_module("baton_upgrade", m.args())
        self.assertTrue(r.get("failed"))
        self.assertEqual(r["baton_exit"], 4, r["msg"])
        self.assertTrue(r["changed"])
        self.assertIn("waits for you", r["msg"])
        self.assertEqual(r["new_pid"], before["pid"])  # the old master is still in charge
        self.assertIsNotNone(r["status"].get("upgrade"))
        p = subprocess.run([m.binary, "commit", "--wait", "--socket", m.socket],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        self.assertEqual(p.returncode, 0, p.stdout.decode())
        self.assertEqual(m.settled()["generation"], 2)

    def test_no_master(self):
        r = harness.run_module("baton_upgrade", self.m.args(socket=self.m.socket + ".none"))
        self.assertTrue(r.get("failed"))
        self.assertEqual(r["baton_exit"], 3)
        self.assertIn("no master answers", r["msg"])

    def test_bad_options(self):
        for args, want in [
            (dict(instance="../etc", binary=self.m.binary), "instance '../etc'"),
            (dict(instance=".hidden", binary=self.m.binary), "instance '.hidden'"),
            (dict(socket="relative.sock", binary=self.m.binary), "want an absolute path"),
            (self.m.args(timeout="soon"), "want a Go duration"),
            (self.m.args(binary=self.m.dir), "not an executable file"),
            (dict(binary=self.m.binary), "one of the following is required: instance, socket"),
        ]:
            r = harness.run_module("baton_upgrade", args)
            self.assertTrue(r.get("failed"), args)
            self.assertIn(want, r["msg"])


class TestReload(MasterTest):
    def test_reload(self):
        r = harness.run_module("baton_reload", self.m.args())
        self.assertFalse(r.get("failed"), r.get("msg"))
        self.assertTrue(r["changed"])
        self.assertEqual(r["baton_exit"], 0)
        self.assertIn("reload complete", r["msg"])
        self.assertEqual((r["pid"], r["generation"]), (self.before["pid"], 1))
        # The new pool serves; the old one may still be listed while it drains ("retiring").
        pools = {w["pool"] for w in r["status"]["workers"] if w["role"] == "current"}
        self.assertEqual(pools, {2})

    def test_reload_bad_config(self):
        self.m.write_config(**{"count = 2": "count = 0"})
        r = harness.run_module("baton_reload", self.m.args())
        self.assertTrue(r.get("failed"))
        self.assertFalse(r["changed"])
        self.assertEqual(r["baton_exit"], 1)
        self.assertIn("reload failed: bad config: %s:9: worker.count" % self.m.config, r["msg"])
        self.assertIn("generation=1", self.get())

    def test_check_mode(self):
        r = harness.run_module("baton_reload", self.m.args(), check_mode=True)
        self.assertTrue(r["changed"])
        self.assertNotIn("baton_exit", r)
        self.assertEqual({(w["pool"], w["role"]) for w in self.m.settled()["workers"]}, {(1, "current")})


class TestInfo(MasterTest):
    def test_info(self):
        r = harness.run_module("baton_info", self.m.args(instance="web"))
        self.assertFalse(r.get("failed"), r.get("msg"))
        self.assertFalse(r["changed"])
        self.assertEqual(r["status"]["pid"], self.before["pid"])
        self.assertEqual(r["ansible_facts"]["baton"]["web"]["generation"], 1)
        self.assertTrue(r["runs_binary"])
        self.m.replace_binary()
        r = harness.run_module("baton_info", self.m.args())
        self.assertFalse(r["runs_binary"])
        self.assertIn(self.m.socket, r["ansible_facts"]["baton"])

    def test_missing(self):
        args = self.m.args(socket=self.m.socket + ".none", instance="gone")
        r = harness.run_module("baton_info", args)
        self.assertTrue(r.get("failed"))
        self.assertEqual(r["baton_exit"], 3)
        r = harness.run_module("baton_info", dict(args, allow_missing=True))
        self.assertFalse(r.get("failed"), r.get("msg"))
        self.assertIsNone(r["status"])
        self.assertEqual(r["ansible_facts"]["baton"], {"gone": None})
        # No baton installed yet (check mode on a fresh host): null too, only when allowed.
        nobin = dict(self.m.args(instance="web"), binary=self.m.binary + ".none")
        r = harness.run_module("baton_info", nobin)
        self.assertTrue(r.get("failed"))
        self.assertIn("not an executable file", r["msg"])
        r = harness.run_module("baton_info", dict(nobin, allow_missing=True))
        self.assertFalse(r.get("failed"), r.get("msg"))
        self.assertEqual(r["ansible_facts"]["baton"], {"web": None})


if __name__ == "__main__":
    unittest.main()
