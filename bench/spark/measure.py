"""Runs one command and measures it from the outside (stdlib only, Linux /proc).

    measure.py --output-dir DIR --log LOG [--trace TRACE.jsonl] -- COMMAND...

Measures, from the moment the command is launched:
- wall_s: until the command exits;
- first_result_s: until the first output file under DIR holds at least one data row
  (files named part-*, gzip or plain, header line not counted); the directory is polled
  every 100 ms, so the figure is up to 0.1 s late;
- peak_rss_mb: the largest sum of resident memory (VmRSS) over the whole process tree of the
  command (spark-submit's JVM, the Python driver it starts, any Python workers), sampled every
  200 ms; peak_java_rss_mb is the largest single java process in the tree. A child that has
  forked but not yet exec'd (PF_FORKNOEXEC; the JVM's jspawnhelper launches, Hadoop's shell
  calls) is not counted: it shares its parent's pages, and counting it once doubled the peak;
- cpu_s: CPU time (user + system) used by the command and the descendants it waited for;
- other_cpu_s: CPU time the rest of the machine used during the run (from /proc/stat), to see
  whether a run shared the cores with something else (--wait-quiet waits for an idle machine
  before launching).

Prints one JSON object on stdout. The command's stdout and stderr go to LOG. Exits with the
command's exit status when it fails.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import zlib

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")  # /proc/stat unit
PF_FORKNOEXEC = 0x40


def read_stat(pid):
    """Fields of /proc/PID/stat after the command name (state is index 0), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses; the fields after the last ')' are fixed.
    return stat[stat.rfind(b")") + 2 :].split()


def tree(root):
    """[(pid, stat fields)] of root and all its descendants."""
    kids, stats = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            rest = read_stat(name)
            if rest is not None:
                stats[int(name)] = rest
                kids.setdefault(int(rest[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out.append((pid, stats[pid]))
        todo.extend(kids.get(pid, []))
    return out


def rss_kb(pid):
    """(resident KB, command name) of one process; (0, '') when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            resident = int(f.read().split()[1])
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        return resident * PAGE_KB, comm
    except (OSError, IndexError, ValueError):
        return 0, ""


def machine_busy_ticks():
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    return sum(values[:8]) - values[3] - values[4]


def wait_quiet(limit_s, max_busy_cores=0.25, window_s=3):
    """Waits until the machine used less than max_busy_cores over window_s seconds in a row,
    at most limit_s seconds. Returns (seconds waited, busy cores over the last window)."""
    start = time.monotonic()
    while True:
        before = machine_busy_ticks()
        time.sleep(window_s)
        busy = (machine_busy_ticks() - before) / CLK_TCK / window_s
        waited = time.monotonic() - start
        if busy < max_busy_cores or waited >= limit_s:
            return waited, busy


def has_data_row(path):
    """True when the (possibly still growing) file holds a line after its header line."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return False
    if raw[:2] == b"\x1f\x8b":
        try:
            text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
        except zlib.error:
            return False
    else:
        text = raw
    # Header plus one row, both complete (newline-terminated); the file may still be growing.
    return text.count(b"\n") >= 2


def any_result(output_dir):
    if not os.path.isdir(output_dir):
        return False
    return any(
        name.startswith("part-") and has_data_row(os.path.join(output_dir, name))
        for name in os.listdir(output_dir)
    )


def sample_rss(root):
    """(summed KB, largest java KB, {pid: (KB, comm)}) over the tree, fork-not-exec'd skipped."""
    total, java, sample = 0, 0, {}
    for pid, rest in tree(root):
        if pid != root and int(rest[6]) & PF_FORKNOEXEC:
            continue
        kb, comm = rss_kb(pid)
        sample[pid] = (kb, comm)
        total += kb
        if comm == "java":
            java = max(java, kb)
    return total, java, sample


def watch(proc, output_dir, trace):
    """Polls every 100 ms until proc exits: first result, and RSS every other poll."""
    start = time.monotonic()
    fig = {"first_result_s": None, "peak_rss_kb": 0, "peak_java_kb": 0, "rss_samples": 0}
    tick = 0
    while True:
        # wait4 rather than poll(): its rusage holds the CPU time of the command and of
        # every descendant it waited for (the JVM waits for its Python driver).
        pid, raw_status, rusage = os.wait4(proc.pid, os.WNOHANG)
        now = time.monotonic() - start
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(raw_status)
            fig.update(wall_s=now, cpu_s=rusage.ru_utime + rusage.ru_stime)
            return fig
        if fig["first_result_s"] is None and any_result(output_dir):
            fig["first_result_s"] = now
        if tick % 2 == 0:
            total, java, sample = sample_rss(proc.pid)
            fig["peak_rss_kb"] = max(fig["peak_rss_kb"], total)
            fig["peak_java_kb"] = max(fig["peak_java_kb"], java)
            fig["rss_samples"] += 1
            if trace:
                trace.write(json.dumps({"t": round(now, 2), "procs": sample}) + "\n")
        tick += 1
        time.sleep(max(0.0, start + tick * 0.1 - time.monotonic()))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--trace", help="write every RSS sample here (JSON lines)")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before launching, wait up to SECONDS for the machine to be idle "
        "(< 0.25 cores busy over 3 s)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.command:
        parser.error("no command given")
    return args


def main(argv):
    args = parse_args(argv)
    waited, busy_at_launch = wait_quiet(args.wait_quiet) if args.wait_quiet > 0 else (0.0, None)
    trace = open(args.trace, "w") if args.trace else None
    with open(args.log, "wb") as log:
        busy_before = machine_busy_ticks()
        launch_epoch = time.time()
        proc = subprocess.Popen(args.command, stdout=log, stderr=subprocess.STDOUT)
        fig = watch(proc, args.output_dir, trace)
        busy_s = (machine_busy_ticks() - busy_before) / CLK_TCK
    # A result written in the last 100 ms before exit is seen here.
    if fig["first_result_s"] is None and any_result(args.output_dir):
        fig["first_result_s"] = fig["wall_s"]
    first = fig["first_result_s"]
    json.dump(
        {
            "exit_status": proc.returncode,
            "launch_epoch": launch_epoch,
            "wall_s": round(fig["wall_s"], 3),
            "first_result_s": None if first is None else round(first, 3),
            "peak_rss_mb": round(fig["peak_rss_kb"] / 1024, 1),
            "peak_java_rss_mb": round(fig["peak_java_kb"] / 1024, 1),
            "rss_samples": fig["rss_samples"],
            "cpu_s": round(fig["cpu_s"], 2),
            "other_cpu_s": round(max(0.0, busy_s - fig["cpu_s"]), 2),
            "quiet_wait_s": round(waited, 1),
            "busy_cores_before_launch": None if busy_at_launch is None else round(busy_at_launch, 2),
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    sys.exit(proc.returncode if proc.returncode else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
