# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)
"""The to_toml filter: what it writes parses back (Python's tomllib, and `baton check`)
to what it was given; what TOML cannot hold is refused with the key named."""

from __future__ import absolute_import, division, print_function

import datetime
import importlib.util
import os
import subprocess
import tempfile
import unittest

import harness

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

try:
    from ansible.errors import AnsibleFilterError
    HAVE_ANSIBLE = True
except ImportError:
    HAVE_ANSIBLE = False


def load_filter():
    path = os.path.join(harness.COLLECTION, "plugins", "filter", "to_toml.py")
    spec = importlib.util.spec_from_file_location("baton_to_toml", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.FilterModule().filters()["to_toml"]


BATON = {
    "pidfile": "/run/baton/web.pid",
    "listen": [
        {"name": "http", "address": "127.0.0.1:8080"},
        {"name": "admin", "address": "unix:/run/baton/admin.sock", "mode": "0660", "backlog": 128},
    ],
    "control_socket": "/run/baton/web/control.sock",  # after a table: must still be top-level
    "worker": {
        "command": ["/usr/lib/baton/hello", "-drain", "1s"],
        "count": 2,
        "env": {"GOMAXPROCS": "1", "GREETING": 'say "hi"\n\tthen\\go'},
        "ready": "notify",
        "stop_timeout": "30s",
    },
    "upgrade": {"commit": "auto", "soak": "5s", "timeout": "60s"},
}


@unittest.skipUnless(HAVE_ANSIBLE, "ansible-core is not installed (apt-get install ansible)")
class TestToToml(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.to_toml = staticmethod(load_filter())

    @unittest.skipIf(tomllib is None, "tomllib needs Python 3.11")
    def test_round_trip(self):
        for name, doc in [
            ("baton", BATON),
            ("empty", {}),
            ("every control character", {"s": "".join(chr(c) for c in range(0x20)) + "\x7f\"\\"}),
            ("unicode", {"s": "h\u00e9llo \u2603 \U0001F600", "cl\u00e9": 1}),
            ("keys to quote", {"a b": 1, "": 2, "x.y": 3, "t": {"a=b": "c", "\n": 4}}),
            ("numbers", {"i": -(1 << 63), "j": (1 << 63) - 1, "f": 0.5, "g": -1e300, "z": 0}),
            ("bools", {"t": True, "f": False}),
            ("nesting", {"a": [[1, 2], ["x"], []], "t": {"d": {"e": {"f": [1, {"g": True}]}}}}),
            ("empty table", {"t": {}, "list": []}),
            ("array of tables with a table in it", {"l": [{"a": {"b": 1}}, {"a": {"b": 2}, "c": [1]}]}),
        ]:
            with self.subTest(name):
                text = self.to_toml(doc)
                self.assertTrue(text.endswith("\n"))
                self.assertEqual(tomllib.loads(text), doc, text)

    def test_layout(self):
        # Plain values first; [[listen]] as arrays of tables; env as an inline table.
        text = self.to_toml(BATON)
        lines = text.splitlines()
        self.assertEqual(lines[0], 'pidfile = "/run/baton/web.pid"')
        self.assertEqual(lines[1], 'control_socket = "/run/baton/web/control.sock"')
        self.assertEqual(text.count("[[listen]]\n"), 2)
        self.assertIn("[worker]\n", text)
        self.assertIn('env = { GOMAXPROCS = "1", GREETING = "say \\"hi\\"\\n\\tthen\\\\go" }', text)
        self.assertEqual(self.to_toml({"k": "\x00\x1b\x7f"}), 'k = "\\u0000\\u001B\\u007F"\n')

    def test_refused(self):
        selfish = []
        selfish.append(selfish)
        for name, doc, want in [
            ("null", {"worker": {"user": None}}, "worker.user: null has no TOML form"),
            ("null in a list", {"a": [1, None]}, "a.[1]: null"),
            ("too big", {"n": 1 << 63}, "n: 9223372036854775808 does not fit"),
            ("too small", {"n": -(1 << 63) - 1}, "does not fit"),
            ("int key", {"worker": {1: "x"}}, "worker: key 1 is a int"),
            ("date", {"d": datetime.date(2026, 12, 5)}, "d: a date has no TOML form"),
            ("set", {"s": {1}}, "s: a set has no TOML form"),
            ("surrogate", {"s": "\ud800"}, "s: the string holds a lone surrogate"),
            ("list", [1], "want a mapping"),
            ("itself", {"a": selfish}, "a.[0].[0]....: nested deeper than 64 levels"),
        ]:
            with self.subTest(name):
                with self.assertRaises(AnsibleFilterError) as ctx:
                    self.to_toml(doc)
                self.assertIn(want, str(ctx.exception))

    @unittest.skipUnless(os.access(harness.BATON_BIN, os.X_OK), "no bin/baton: run make build")
    def test_baton_check(self):
        # baton itself reads what the filter writes; and refuses a count given as a string,
        # which the role's `validate: baton check -c %s` stops before the file lands.
        # (baton check also looks for the worker's program: give it one that exists.)
        good = dict(BATON, worker=dict(BATON["worker"], command=[harness.HELLO_BIN]))
        for doc, rc in [(good, 0), (dict(good, worker=dict(good["worker"], count="2")), 1)]:
            with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
                f.write(self.to_toml(doc))
                f.flush()
                p = subprocess.run([harness.BATON_BIN, "check", "-c", f.name],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
                self.assertEqual(p.returncode, rc, p.stdout.decode())


if __name__ == "__main__":
    unittest.main()
