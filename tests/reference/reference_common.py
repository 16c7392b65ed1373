"""Shared by the reference checks: runs tests/worker/reference_dump and reports mismatches.

Each check script takes the path of the reference_dump binary as its only argument, prints one
line per comparison that failed (and a short summary) and exits non-zero when any failed.
"""

import json
import subprocess
import sys


def run_tool(tool, what, request):
    """Sends `request` to `reference_dump <what>` and returns its JSON answer."""
    done = subprocess.run([tool, what], input=json.dumps(request), capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"reference_dump {what} failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout)


class Failures:
    """Collects failed comparisons; exit() ends the script with their count as the verdict."""

    def __init__(self, name):
        self.name = name
        self.failed = []
        self.checked = 0

    def expect(self, ok, message):
        self.checked += 1
        if not ok:
            self.failed.append(message)
            if len(self.failed) <= 40:
                print(f"MISMATCH: {message}")

    def close(self, ours, ref, tol, what):
        """ours and ref agree within tol (both None counts as agreement)."""
        if ours is None or ref is None:
            self.expect(ours is None and ref is None, f"{what}: ours {ours}, reference {ref}")
        else:
            self.expect(abs(ours - ref) <= tol, f"{what}: ours {ours!r}, reference {ref!r}, "
                        f"difference {abs(ours - ref):.3g} > {tol:g}")

    def exit(self):
        if self.failed:
            print(f"{self.name}: {len(self.failed)} of {self.checked} comparisons failed")
            sys.exit(1)
        print(f"{self.name}: {self.checked} comparisons agree")
        sys.exit(0)


def tool_from_argv():
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} PATH/TO/reference_dump", file=sys.stderr)
        sys.exit(2)
    return sys.argv[1]
