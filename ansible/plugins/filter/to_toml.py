# -*- coding: utf-8 -*-
# Copyright: baton's authors
# Apache License 2.0 (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: to_toml
short_description: Render a dict as TOML (baton.toml and the like)
version_added: "1.0.0"
description:
  - Turns a mapping into a TOML v1.0.0 document, in the mapping's own order.
  - >-
    At the top level, plain values come first; a mapping becomes a table (C([worker])), a
    non-empty list of mappings an array of tables (C([[listen]])). Below that, mappings
    are written as inline tables (C(env = { GOMAXPROCS = "2" })) and lists as arrays.
  - Strings are basic strings with every control character escaped; integers must fit in
    64 bits; booleans are C(true)/C(false); floats are allowed (baton has none).
  - >-
    What TOML cannot hold is refused with an error that names the key: null (C(None)),
    a key that is not a string, an integer out of 64-bit range, a string that is not
    valid Unicode, any other type (dates included: give them as strings), nesting deeper
    than 64 levels (a structure that contains itself).
author:
  - baton's authors (@baton-supervisor)
options:
  _input:
    description: The document, a mapping.
    type: dict
    required: true
"""

EXAMPLES = r"""
# baton_config:
#   control_socket: /run/baton/web/control.sock
#   listen:
#     - { name: http, address: "127.0.0.1:8080" }
#   worker:
#     command: [/usr/lib/baton/hello]
#     count: 2
#     env: { GOMAXPROCS: "1" }
# gives:
#   control_socket = "/run/baton/web/control.sock"
#
#   [[listen]]
#   name = "http"
#   address = "127.0.0.1:8080"
#
#   [worker]
#   command = ["/usr/lib/baton/hello"]
#   count = 2
#   env = { GOMAXPROCS = "1" }
- name: Write /etc/baton/web.toml, checked by baton before it lands
  ansible.builtin.copy:
    content: "{{ baton_config | baton.baton.to_toml }}"
    dest: /etc/baton/web.toml
    mode: "0644"
    validate: /usr/bin/baton check -c %s
"""

RETURN = r"""
_value:
  description: The TOML text, ending with a newline.
  type: str
"""

import math
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_sequence
from ansible.module_utils.six import string_types

from ansible.module_utils.common._collections_compat import Mapping

# Deeper than this is refused rather than recursed into: a YAML alias can make a list that
# contains itself, and no configuration is nested this deep.
MAX_DEPTH = 64

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _where(path):
    return ".".join(path) if path else "(the document)"


def _key(k, path):
    if not isinstance(k, string_types):
        raise AnsibleFilterError("to_toml: %s: key %r is a %s; TOML keys are strings (quote it in YAML)"
                                 % (_where(path), k, type(k).__name__))
    if _BARE_KEY.match(k):
        return k
    return _string(k, path + [repr(k)])


def _string(s, path):
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04X" % ord(ch))
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise AnsibleFilterError("to_toml: %s: the string holds a lone surrogate (U+%04X), which is not Unicode text"
                                     % (_where(path), ord(ch)))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _inline(v, path):
    """v as a TOML value on one line."""
    if len(path) > MAX_DEPTH:
        raise AnsibleFilterError("to_toml: %s: nested deeper than %d levels (a structure that contains itself?)"
                                 % (_where(path[:3] + ["..."]), MAX_DEPTH))
    if v is None:
        raise AnsibleFilterError("to_toml: %s: null has no TOML form (leave the key out)" % _where(path))
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if not _INT64[0] <= v <= _INT64[1]:
            raise AnsibleFilterError("to_toml: %s: %d does not fit in a TOML integer (64 bits)" % (_where(path), v))
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, string_types):
        return _string(v, path)
    if isinstance(v, Mapping):
        items = ["%s = %s" % (_key(k, path), _inline(x, path + [str(k)])) for k, x in v.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if is_sequence(v):
        return "[" + ", ".join(_inline(x, path + ["[%d]" % i]) for i, x in enumerate(v)) + "]"
    raise AnsibleFilterError("to_toml: %s: a %s has no TOML form here (give it as a string)" % (_where(path), type(v).__name__))


def _is_table_array(v):
    return is_sequence(v) and len(v) > 0 and all(isinstance(x, Mapping) for x in v)


def _body(table, path, lines):
    for k, v in table.items():
        lines.append("%s = %s" % (_key(k, path), _inline(v, path + [str(k)])))


def to_toml(doc):
    """doc (a mapping) as a TOML document."""
    if not isinstance(doc, Mapping):
        raise AnsibleFilterError("to_toml: want a mapping (a dict), got a %s" % type(doc).__name__)
    lines = []
    sections = []
    for k, v in doc.items():
        if isinstance(v, Mapping) or _is_table_array(v):
            sections.append((k, v))
        else:
            lines.append("%s = %s" % (_key(k, []), _inline(v, [str(k)])))
    for k, v in sections:
        name = _key(k, [])
        if lines:
            lines.append("")
        if isinstance(v, Mapping):
            lines.append("[%s]" % name)
            _body(v, [str(k)], lines)
            continue
        for i, t in enumerate(v):
            if i:
                lines.append("")
            lines.append("[[%s]]" % name)
            _body(t, ["%s[%d]" % (k, i)], lines)
    return "\n".join(lines) + "\n"


class FilterModule(object):
    """baton.baton's filters."""

    def filters(self):
        return {"to_toml": to_toml}
