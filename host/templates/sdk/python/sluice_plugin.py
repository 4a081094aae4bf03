"""The small runtime half of the sluice Python SDK (the other half, the column layout, is
`sluice_columns.py`). A plugin is built with componentize-py `--stub-wasi`: the component
imports nothing from the host, so every WASI call (files, sockets, clocks, os.urandom, the
real stdout) would trap. This module makes the common ones safe:

- `print()` and writes to stderr go to a bounded in-memory buffer, dropped, instead of
  trapping (use failures or output fields to say something to the pipeline);
- `open`, the `os` file calls and sockets raise `PermissionError` (the plugin can catch it)
  instead of trapping;
- `@guarded` turns an unexpected exception in `init` / `process` into `Err("plugin error:
  ValueError: ... (at app.py:42 in process)")`, a clear refusal instead of a trap. It formats
  the frames itself: `traceback` reads source files, which would trap.

Import every module you need at the top of app.py: imports run when the component is built
(the interpreter's state is snapshotted); importing later would need the filesystem.
"""

import builtins
import functools
import io
import os
import socket
import sys

from componentize_py_types import Err


class _Bounded(io.TextIOBase):
    """A text stream that keeps at most `cap` characters and drops the rest."""

    def __init__(self, cap=64 * 1024):
        self.cap, self.size = cap, 0

    def writable(self):
        return True

    def write(self, text):
        self.size = min(self.cap, self.size + len(text))
        return len(text)


sys.stdout = _Bounded()
sys.stderr = _Bounded()


def _denied(what):
    def refuse(*args, **kwargs):
        raise PermissionError("sluice plugins have no %s access" % what)

    return refuse


# The component imports no filesystem and no network: the calls that would reach them raise
# PermissionError here, an error the plugin can handle, instead of reaching a trapping stub.
builtins.open = io.open = _denied("filesystem")
for _name in ("open", "listdir", "scandir", "stat", "lstat", "mkdir", "remove", "unlink",
              "rename", "rmdir", "chdir", "getcwd"):
    if hasattr(os, _name):
        setattr(os, _name, _denied("filesystem"))
socket.socket = _denied("network")
socket.create_connection = _denied("network")
socket.getaddrinfo = _denied("network")


def describe(exc, limit=6):
    """`ValueError: message (at app.py:42 in process <- ...)`."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        name = code.co_filename.rsplit("/", 1)[-1]
        frames.append("%s:%d in %s" % (name, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    where = " <- ".join(reversed(frames[-limit:]))
    return "%s: %s%s" % (type(exc).__name__, exc, " (at %s)" % where if where else "")


def guarded(fn):
    """Reports an unexpected exception of an export as `Err` instead of trapping."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Err:
            raise
        except Exception as e:  # a bug in the plugin: report it, do not trap
            raise Err("plugin error: " + describe(e))

    return wrapper
