"""scripts/bench: training-step, memory, checkpoint and supervisor figures, side by side with what
a user would run instead. Run through scripts/bench (which builds first). Figures only: nothing
here passes or fails.

Every measurement runs in its own process (`smartcash-worker bench ...`), so peak resident sets
never mix. Standard library only: any python3 runs it; the Python peer needs a python3 whose torch
is the LibTorch the worker links (--peer-python, default /usr/bin/python3).
"""
import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
WORKER = os.path.join(BIN, "smartcash-worker")
DAEMON = os.path.join(BIN, "smartcashd")
GIB = 1024.0 ** 3
MIB = 1024.0 ** 2


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run_json(cmd, env=None):
    """Runs a command that prints one JSON object on its last stdout line."""
    started = time.monotonic()
    out = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    lines = [line for line in out.stdout.splitlines() if line.strip().startswith("{")]
    result = json.loads(lines[-1])
    result["_wall_s"] = time.monotonic() - started
    return result


def worker_bench(*args):
    return run_json([WORKER, "bench", "--json", *[str(a) for a in args]])


# ---------------------------------------------------------------------------------------------
# The machine

def machine():
    info = {"os": platform.system(), "kernel": platform.release(), "arch": platform.machine(),
            "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory"] = int(line.split()[1]) * 1024
                    break
    except OSError:
        try:
            info["cpu"] = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], stdout=subprocess.PIPE,
                                         text=True).stdout.strip()
            info["memory"] = int(subprocess.run(["sysctl", "-n", "hw.memsize"], stdout=subprocess.PIPE,
                                                text=True).stdout.strip())
        except (OSError, ValueError):
            pass
    try:
        load = os.getloadavg()
        info["load_avg_1m_at_start"] = round(load[0], 2)
    except OSError:
        pass
    return info


# ---------------------------------------------------------------------------------------------
# Tiers of a config

def tier_names(config):
    """Tier names of a config file, in order (a light reading of the YAML `tiers:` list)."""
    names, in_tiers = [], False
    with open(config) as f:
        for raw in f:
            line = raw.split("#", 1)[0].rstrip()
            if not line:
                continue
            if not line.startswith(" ") and not line.startswith("-"):
                in_tiers = line.startswith("tiers:")
                continue
            if in_tiers:
                s = line.strip()
                if s.startswith("- name:"):
                    names.append(s.split(":", 1)[1].strip().strip("'\""))
                elif s.startswith("- {") and "name:" in s:
                    names.append(s.split("name:", 1)[1].split(",", 1)[0].strip().strip("'\""))
    return names


def bench_tiers(config, steps):
    rows = []
    for name in tier_names(config):
        log(f"tier {name} of {os.path.relpath(config, ROOT)}")
        r = worker_bench("--config", config, "--tier", name, "--steps", steps)
        row = {"name": name, "device": r["device"], "micro_batch": r["micro_batch"], "threads": r["threads"],
               "activation_checkpointing": r["activation_checkpointing"], "img_size": r["img_size"],
               "images_per_s": r["images_per_s"], "step_s": r["step_s"], "peak_rss": r["peak_rss"]}
        if "peak_device_mem" in r:
            row["peak_device_mem"] = r["peak_device_mem"]
        rows.append(row)
    return rows


def minimal_vs_cpu(config, steps):
    """The minimal tier against the cpu tier's settings at the minimal tier's micro-batch."""
    log("minimal tier against the cpu tier at the same micro-batch (full size)")
    minimal = worker_bench("--config", config, "--tier", "minimal", "--steps", steps)
    cpu = worker_bench("--config", config, "--tier", "cpu", "--micro-batch", minimal["micro_batch"], "--steps", steps)
    keys = ("micro_batch", "threads", "activation_checkpointing", "step_s", "images_per_s", "peak_rss")
    return {"config": os.path.relpath(config, ROOT), "img_size": minimal["img_size"],
            "minimal": {k: minimal[k] for k in keys}, "cpu": {k: cpu[k] for k in keys},
            "peak_rss_ratio": minimal["peak_rss"] / cpu["peak_rss"],
            "step_time_ratio": minimal["step_s"] / cpu["step_s"]}


# ---------------------------------------------------------------------------------------------
# The Python peer

def bench_peer(img_size, micro_batch, threads, steps, rounds, python):
    ours_runs, peer_runs = [], []
    peer_cmd = [python, os.path.join(ROOT, "scripts", "bench_peer.py"), "--img-size", str(img_size),
                "--micro-batch", str(micro_batch), "--threads", str(threads), "--steps", str(steps)]
    for k in range(rounds):
        # Alternating, and alternating who goes first, so drift in the machine's load is shared.
        order = ("ours", "peer") if k % 2 == 0 else ("peer", "ours")
        for who in order:
            log(f"peer comparison round {k + 1}/{rounds}: {who}")
            if who == "ours":
                ours_runs.append(worker_bench("--backbone-only", "--img-size", img_size, "--micro-batch", micro_batch,
                                              "--threads", threads, "--steps", steps))
            else:
                peer_runs.append(run_json(peer_cmd))

    def summary(runs):
        return {"step_s": statistics.median(r["step_s"] for r in runs),
                "images_per_s": statistics.median(r["images_per_s"] for r in runs),
                "peak_rss": statistics.median(r["peak_rss"] for r in runs),
                "parameters": runs[0]["parameters"], "runs_step_s": [r["step_s"] for r in runs]}

    ours, peer = summary(ours_runs), summary(peer_runs)
    return {"network": "EfficientNet-B4 features (stem + 7 stages), loss on P3/P4/P5, AdamW",
            "img_size": img_size, "micro_batch": micro_batch, "threads": threads, "rounds": rounds,
            "peer_impl": f"PyTorch {peer_runs[0]['torch']} Python API, torchvision {peer_runs[0]['torchvision']}",
            "ours": ours, "peer": peer,
            "speed_ratio": ours["images_per_s"] / peer["images_per_s"],
            "peak_rss_ratio": ours["peak_rss"] / peer["peak_rss"]}


# ---------------------------------------------------------------------------------------------
# The supervisor

SUPERVISOR_CONFIG = """# scripts/bench: a small job that keeps a worker training while the supervisor is measured.
model: {backbone: efficientnet_b4, width_multiple: 0.1, depth_multiple: 0.2, img_size: 64}
data:
  dataset: synthetic
  synthetic: {images: 80, size: 96, seed: 3}
training:
  effective_batch: 4
  seed: 11
  phase1: {epochs: 1, lr: {backbone: 0, neck: 2.0e-3, head: 2.0e-3}}
  phase2: {epochs: 200, lr: {backbone: 1.0e-3, neck: 1.0e-3, head: 1.0e-3}}
  warmup_steps: 2
  checkpoint_every_steps: 5
  keep_checkpoints: 2
  eval: {every_epochs: 50}
  early_stopping: {patience: 0}
tiers:
  - {name: cpu, device: cpu, micro_batch: 4, threads: 1, memory_limit: 4GiB}
supervisor:
  poll_interval: 250ms
  min_available: 0
  heartbeat_timeout: 60s
  stop_grace: 10s
  backoff_floor: BACKOFF
  backoff_cap: 10s
  retry_budget: 5
  promotion: {enabled: false}
"""


def journal(run_dir):
    path = os.path.join(run_dir, "events.jsonl")
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def wait_for(predicate, timeout, interval=0.001):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


def proc_sample(pid):
    """(rss bytes, cpu seconds) of a process: /proc on Linux, ps elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        return rss, cpu
    except OSError:
        out = subprocess.run(["ps", "-o", "rss=,time=", "-p", str(pid)], stdout=subprocess.PIPE, text=True).stdout
        rss_kib, t = out.split()
        parts = [float(x) for x in t.replace("-", ":").split(":")]
        cpu = 0.0
        for p in parts:
            cpu = cpu * 60 + p
        return int(rss_kib) * 1024, cpu


def step_lines(run_dir):
    try:
        with open(os.path.join(run_dir, "metrics.jsonl")) as f:
            return sum(1 for line in f if '"type":"step"' in line.replace(" ", ""))
    except OSError:
        return 0


def bench_supervisor(sample_s, kills, backoff):
    tmp = tempfile.mkdtemp(prefix="smartcash-bench-")
    run_dir = os.path.join(tmp, "run")
    config = os.path.join(tmp, "bench.yaml")
    with open(config, "w") as f:
        f.write(SUPERVISOR_CONFIG.replace("BACKOFF", backoff))
    log(f"supervisor: smartcashd on a small job in {tmp}")
    daemon = subprocess.Popen([DAEMON, "run", "--config", config, "--run-dir", run_dir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = {"poll_interval_s": 0.25, "backoff_floor": backoff}
    try:
        def worker_pid(after=0):
            started = [e for e in journal(run_dir) if e.get("event") == "worker-started"]
            return started[-1].get("pid") if len(started) > after else None

        if not wait_for(lambda: worker_pid() and step_lines(run_dir) > 0, 120, 0.05):
            raise RuntimeError("the worker did not start training")
        # RSS and CPU of the supervisor alone while its worker trains.
        rss0, cpu0 = proc_sample(daemon.pid)
        t0 = time.monotonic()
        peak = rss0
        while time.monotonic() - t0 < sample_s:
            time.sleep(0.5)
            rss, _ = proc_sample(daemon.pid)
            peak = max(peak, rss)
        rss1, cpu1 = proc_sample(daemon.pid)
        elapsed = time.monotonic() - t0
        result.update({"rss": rss1, "peak_rss_sampled": peak, "cpu_percent": 100.0 * (cpu1 - cpu0) / elapsed,
                       "sampled_s": elapsed})
        # SIGKILL -> classification in the journal, and exit -> the relaunched worker's first step.
        latencies, relaunch = [], []
        for k in range(kills):
            launches = len([e for e in journal(run_dir) if e.get("event") == "worker-started"])
            pid = worker_pid()
            exits = len([e for e in journal(run_dir) if e.get("event") == "exit"])
            steps = step_lines(run_dir)
            t_kill = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            classified = wait_for(lambda: len([e for e in journal(run_dir) if e.get("event") == "exit"]) > exits, 10)
            t_class = time.monotonic()
            if not classified:
                raise RuntimeError("no exit line in the journal after a SIGKILL")
            latencies.append(t_class - t_kill)
            exit_event = [e for e in journal(run_dir) if e.get("event") == "exit"][-1]
            result["kill_class"] = exit_event.get("class")
            if not wait_for(lambda: worker_pid(launches) is not None and step_lines(run_dir) > steps, 120, 0.01):
                raise RuntimeError("no step from the relaunched worker")
            relaunch.append(time.monotonic() - t_kill)
            time.sleep(1.0)
        result.update({"kill_to_journal_ms": [round(1000 * x, 1) for x in latencies],
                       "kill_to_journal_ms_median": 1000 * statistics.median(latencies),
                       "exit_to_first_step_s": [round(x, 2) for x in relaunch],
                       "exit_to_first_step_s_median": statistics.median(relaunch)})
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------------------------
# Output

def size(b):
    return f"{b / GIB:.2f} GiB" if b >= GIB else f"{b / MIB:.0f} MiB"


def print_table(report):
    m = report["machine"]
    print(f"machine: {m.get('cpu', '?')}, {m['cores']} cores, {size(m.get('memory', 0))}, {m['os']} {m['kernel']}"
          f" (load {m.get('load_avg_1m_at_start', '?')} at start)")
    print(f"\ntiers of {report['tiers_config']} (median step after warm-up; peak RSS of the worker process)")
    print(f"  {'tier':<12}{'device':>7}{'batch':>6}{'thr':>4}{'ckpt':>5}{'step s':>9}{'img/s':>8}{'peak RSS':>11}")
    for t in report["tiers"]:
        print(f"  {t['name']:<12}{t['device']:>7}{t['micro_batch']:>6}{t['threads']:>4}"
              f"{'on' if t['activation_checkpointing'] else 'off':>5}{t['step_s']:>9.3f}{t['images_per_s']:>8.2f}"
              f"{size(t['peak_rss']):>11}")
    mc = report.get("minimal_vs_cpu")
    if mc:
        print(f"\nminimal vs cpu tier at micro-batch {mc['minimal']['micro_batch']}, {mc['img_size']} px ({mc['config']})")
        for k in ("cpu", "minimal"):
            r = mc[k]
            print(f"  {k:<8} threads {r['threads']} ckpt {'on ' if r['activation_checkpointing'] else 'off'}"
                  f" step {r['step_s']:.2f}s  peak RSS {size(r['peak_rss'])}")
        print(f"  minimal/cpu: peak RSS x{mc['peak_rss_ratio']:.2f}, step time x{mc['step_time_ratio']:.2f}")
    p = report.get("peer")
    if p:
        print(f"\npeer: {p['network']}, {p['img_size']} px, micro-batch {p['micro_batch']}, {p['threads']} threads,"
              f" {p['rounds']} alternating rounds")
        print(f"  smartcash-worker   step {p['ours']['step_s']:.3f}s  {p['ours']['images_per_s']:.3f} img/s"
              f"  peak RSS {size(p['ours']['peak_rss'])}")
        print(f"  {p['peer_impl']:<18} step {p['peer']['step_s']:.3f}s  {p['peer']['images_per_s']:.3f} img/s"
              f"  peak RSS {size(p['peer']['peak_rss'])}")
        print(f"  ours/peer: images/s x{p['speed_ratio']:.2f}, peak RSS x{p['peak_rss_ratio']:.2f}")
    c = report.get("checkpoint")
    if c:
        print(f"\ncheckpoint ({c['backbone']}, full size, model + AdamW state): {size(c['bytes'])},"
              f" save {c['save_s']:.2f}s, load {c['load_s']:.2f}s")
    s = report.get("supervisor")
    if s:
        print(f"\nsupervisor at {1 / s['poll_interval_s']:.0f} Hz: RSS {size(s['rss'])}, CPU {s['cpu_percent']:.2f}% of one core"
              f" over {s['sampled_s']:.0f}s; SIGKILL -> journal ({s.get('kill_class')}) {s['kill_to_journal_ms_median']:.0f} ms;"
              f" exit -> relaunched worker's first step {s['exit_to_first_step_s_median']:.2f}s (backoff floor {s['backoff_floor']})")


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the table")
    ap.add_argument("--full", action="store_true", help="the tiers of config/default.yaml (full size) instead of the demo's")
    ap.add_argument("--config", help="the config whose tiers are measured (overrides --full)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per tier (after one warm-up step)")
    ap.add_argument("--peer-rounds", type=int, default=2)
    ap.add_argument("--peer-steps", type=int, default=3)
    ap.add_argument("--peer-img-size", type=int, default=640)
    ap.add_argument("--peer-python", default="/usr/bin/python3")
    ap.add_argument("--supervisor-seconds", type=float, default=10.0)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--skip", action="append", default=[],
                    choices=["tiers", "minimal", "peer", "checkpoint", "supervisor"], help="leave a section out")
    args = ap.parse_args()

    started = time.monotonic()
    full_config = os.path.join(ROOT, "config", "default.yaml")
    config = args.config or (full_config if args.full else os.path.join(ROOT, "config", "demo.yaml"))
    report = {"machine": machine(), "tiers_config": os.path.relpath(config, ROOT), "tiers": []}
    if "tiers" not in args.skip:
        report["tiers"] = bench_tiers(config, args.steps)
    if "minimal" not in args.skip:
        report["minimal_vs_cpu"] = minimal_vs_cpu(full_config, max(2, args.steps - 1))
    if "peer" not in args.skip:
        cpu_threads = next((t["threads"] for t in report["tiers"] if t["name"] == "cpu"), 2)
        report["peer"] = bench_peer(args.peer_img_size, 1, cpu_threads, args.peer_steps, args.peer_rounds,
                                    args.peer_python)
    if "checkpoint" not in args.skip:
        log("checkpoint save and load (full size)")
        c = worker_bench("--checkpoint")
        report["checkpoint"] = {k: c[k] for k in ("backbone", "parameters", "bytes", "save_s", "load_s")}
    if "supervisor" not in args.skip:
        report["supervisor"] = bench_supervisor(args.supervisor_seconds, args.kills, "100ms")
    report["bench_wall_s"] = time.monotonic() - started
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
