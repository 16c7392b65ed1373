#!/usr/bin/env bash
# The install: `cmake --install BUILD --prefix TMP/prefix`, then the installed programs run from
# the prefix, the installed smartcashd finds the installed worker next to itself and trains the
# tiny fixture job to the end, the installed smartcashctl draws its report, and the service
# files are valid (systemd-analyze verify, the plist through python3's plistlib and xmllint).
# A check whose tool is missing (or cannot work here) does not pass in silence: the others still
# run, and the script then exits 77, which ctest shows as Skipped (SKIP_RETURN_CODE), naming what
# was not checked. Debian: systemd (systemd-analyze), libxml2-utils (xmllint).
# usage: install_test.sh BUILD_DIR FIXTURES_DIR SCRATCH_DIR
set -euo pipefail
build=$1
fixtures=$2
tmp=$3
rm -rf "$tmp"
mkdir -p "$tmp"
prefix=$tmp/prefix
skip_code=77
skipped=()
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
skip() {
  echo "skipped: $*"
  skipped+=("$*")
}

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || fail "cmake --install (see $tmp/install.log)"
share=$prefix/share/smartcash-trainer
for program in smartcashd smartcashctl smartcash-worker; do
  [ -x "$prefix/bin/$program" ] || fail "$prefix/bin/$program is not installed"
  "$prefix/bin/$program" --help >/dev/null || fail "$program --help"
done
for file in config/default.yaml config/demo.yaml docs/service.md docs/report.md \
  systemd/smartcash@.service launchd/org.smartcash.trainer.plist; do
  [ -f "$share/$file" ] || fail "$share/$file is not installed"
done
echo "ok: programs, configs, docs and service files installed in $prefix"

# No --worker, no $SMARTCASH_WORKER and no build folder on PATH: the only worker to find is the
# one next to the installed smartcashd.
status=0
(cd "$tmp" && env -u SMARTCASH_WORKER PATH=/usr/bin:/bin "$prefix/bin/smartcashd" run \
  --config "$fixtures/tiny.yaml" --run-dir "$tmp/run" >"$tmp/smartcashd.log" 2>&1) || status=$?
[ "$status" -eq 0 ] || fail "installed smartcashd exited $status: $(tail -5 "$tmp/smartcashd.log")"
grep -q '"event":"hello"' "$tmp/run/events.jsonl" || fail "no hello from the installed worker"
grep -q '"class":"done"' "$tmp/run/events.jsonl" || fail "the worker did not end done"
[ -s "$tmp/run/logs/worker-1.log" ] || fail "no worker log"
echo "ok: the installed smartcashd ran the installed worker to done"

"$prefix/bin/smartcashctl" --run-dir "$tmp/run" report --out "$tmp/report.svg" >/dev/null ||
  fail "installed smartcashctl report"
grep -q 'class="loss"' "$tmp/report.svg" || fail "the report has no loss curve"
if command -v xmllint >/dev/null; then
  xmllint --noout "$tmp/report.svg" || fail "the report is not well-formed XML"
else
  skip "xmllint is not installed (Debian: libxml2-utils); the report was not read as XML"
fi
echo "ok: the installed smartcashctl drew the run's report"

unit=$share/systemd/smartcash@.service
grep -q "^ExecStart=$prefix/bin/smartcashd run " "$unit" || fail "ExecStart does not name $prefix/bin"
grep -q '^KillMode=control-group$' "$unit" || fail "KillMode is not control-group"
if command -v systemd-analyze >/dev/null; then
  # An instance of the template, as `systemctl --user enable smartcash@demo` would load it.
  mkdir -p "$tmp/units"
  cp "$unit" "$tmp/units/smartcash@demo.service"
  # Where verify cannot work at all (no manager in this container), a plain unit fails too.
  printf '[Service]\nExecStart=/bin/sh -c true\n' >"$tmp/units/plain.service"
  if ! systemd-analyze verify "$tmp/units/plain.service" >"$tmp/verify-plain.log" 2>&1; then
    skip "systemd-analyze verify fails on a plain unit here, so the unit was not verified: $(cat "$tmp/verify-plain.log")"
  else
    systemd-analyze verify "$tmp/units/smartcash@demo.service" >"$tmp/verify.log" 2>&1 ||
      fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
    # Unknown keys and bad values are only warnings to verify; none is allowed here.
    if grep -q 'smartcash@' "$tmp/verify.log"; then
      fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
    fi
    echo "ok: systemd-analyze verify"
  fi
else
  skip "systemd-analyze is not installed (Debian: systemd); the unit was not verified"
fi

plist=$share/launchd/org.smartcash.trainer.plist
python3=/usr/bin/python3
[ -x "$python3" ] || python3=$(command -v python3 || true)
if [ -n "$python3" ]; then
  "$python3" - "$plist" "$prefix/bin/smartcashd" <<'PY' || fail "the launchd plist"
import plistlib, sys
with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)
args = p["ProgramArguments"]
assert args[0] == sys.argv[2] and args[1] == "run", args
assert "--config" in args and "--run-dir" in args, args
assert p["KeepAlive"] == {"SuccessfulExit": False}, p["KeepAlive"]
run_dir = args[args.index("--run-dir") + 1]
assert p["StandardErrorPath"].startswith(run_dir + "/logs/"), p["StandardErrorPath"]
assert p["WorkingDirectory"], p
PY
  echo "ok: the plist reads with plistlib"
else
  skip "python3 is not installed; the plist was not read with plistlib"
fi
if command -v xmllint >/dev/null; then
  xmllint --noout "$plist" || fail "the plist is not well-formed XML"
else
  skip "xmllint is not installed (Debian: libxml2-utils); the plist was not read as XML"
fi
if [ "${#skipped[@]}" -gt 0 ]; then
  echo "install test: everything else passed, but ${#skipped[@]} check(s) could not run:"
  printf '  - %s\n' "${skipped[@]}"
  exit "$skip_code"
fi
echo "install test passed"
