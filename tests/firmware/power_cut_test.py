#!/usr/bin/env python3
"""Power cuts on the firmware's NOR flash (ctest firmware_power_cut_qemu; docs/firmware.md).

Builds tests/firmware/power_cut_app.cpp for QEMU mps2-an386 with the fixture of
power_cut_fixture (v1 -> v2 -> v3 as signed TensorRange deltas), installs v1 at the factory
into a flash file, and traces one uncut run: the kind of every flash piece (erase, program,
record write, swap). Then, seeded, for each trial: the factory flash file, a run told to stop
dead before piece K lands (it prints where: "CUT ..."), QEMU killed with SIGKILL at once,
sometimes a second cut in the restart, then restarts until the run ends. Every restart must
boot a valid model: the SHA-256 of the active slot read back from flash is that of v1, v2
or v3 (never a mix), the agent's record names that hash, and the model gives that version's
output. Every trial must end on v3 (the update completes). Cut points are aimed in turn at
erases, page programs, record writes and swaps (the record write that switches slots).
Every failure the agent reports must be one a cut explains (a restart in a self-test or on
probation), never a payload or artifact hash mismatch. Then the mutant builds (records
without their CRC check; staging pages assumed to land whole) must fail the same checks.
"""
import argparse
import collections
import concurrent.futures
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

QEMU = ["qemu-system-arm", "-M", "mps2-an386", "-cpu", "cortex-m4", "-nographic", "-monitor",
        "none", "-serial", "none", "-semihosting-config", "enable=on,target=native", "-kernel"]
GROUPS = {"record erase": "e", "slot or staging erase": "EX", "slot program": "S",
          "staging program": "T", "record": "r", "swap": "w"}
KINDS = {"e": "record erase", "r": "record program", "w": "swap record program",
         "E": "slot erase", "S": "slot program", "X": "staging erase", "T": "staging program"}


class Failure(Exception):
    pass


def run_qemu(elf, rundir, control, timeout=60, wild=None):
    """Runs the app in rundir; kills QEMU (SIGKILL) as soon as it prints a CUT line, or
    `wild` seconds after its BOOT line (a kill the image does not know of).
    Returns (lines, exit code or None when killed)."""
    with open(os.path.join(rundir, "control.txt"), "w") as f:
        f.write(control)
    p = subprocess.Popen(QEMU + [elf], cwd=rundir, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    lines, killed = [], []
    wild_timer = None

    def kill():
        if p.poll() is None:
            killed.append(True)
            os.kill(p.pid, signal.SIGKILL)  # the power cut

    try:
        for line in p.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("CUT "):
                kill()
                break
            if wild is not None and line.startswith("BOOT ") and not wild_timer:
                wild_timer = threading.Timer(wild, kill)
                wild_timer.start()
        p.stdout.close()
        rc = p.wait()
    finally:
        timer.cancel()
        if wild_timer:
            wild_timer.cancel()
    return lines, (None if killed else rc)


def field(line, name):
    for part in line.split():
        if part.startswith(name + "="):
            return part[len(name) + 1:]
    return None


# What a power cut may make the agent report: a restart in a self-test fails the release,
# one on probation rolls it back. Anything else (a payload hash mismatch, a patched
# artifact that is not the target, a corrupt record) is the flash giving back wrong bytes.
CUT_REASONS = ("new model crashed or hung during self-test",
               "restarted while the new model was on probation")


def check_statuses(lines, where):
    for l in lines:
        if l.startswith("STATUS ") and l.split('detail="', 1)[-1].rstrip('"') not in CUT_REASONS:
            raise Failure(f"{where}: a failure no power cut explains: {l}")


def check_boot(lines, shas, where):
    boots = [l for l in lines if l.startswith("BOOT ")]
    if not boots:
        raise Failure(f"{where}: no boot line (bricked): {lines[-3:]}")
    b = boots[0]
    if field(b, "ok") != "1":
        raise Failure(f"{where}: boot failed (bricked): {b}")
    model = field(b, "model")
    if model not in ("v1", "v2", "v3") or shas[model] != field(b, "sha"):
        raise Failure(f"{where}: the active slot is not v1, v2 or v3 (a mixed model): {b}")
    if field(b, "record") != "match" or field(b, "output") != "ok":
        raise Failure(f"{where}: hash not the record's or wrong output: {b}")
    return b


def trial(elf, factory, rundir, cuts, shas, stats, wild=None):
    """One device from the factory image: the given cuts (or one wild kill `wild` seconds
    after its first boot line), then restarts to the end."""
    shutil.rmtree(rundir, ignore_errors=True)
    os.makedirs(rundir)
    shutil.copy(factory, os.path.join(rundir, "flash.bin"))
    for restart in range(12):
        cut = cuts[restart] if restart < len(cuts) else None
        lines, rc = run_qemu(elf, rundir, f"run {cut}" if cut else "run",
                             wild=wild if restart == 0 else None)
        if wild is not None and restart == 0:
            stats["wild kills landed before the run ended" if rc is None else
                  "wild kills after the run ended"] += 1
            if rc is None:
                continue
        if rc is None and not any(l.startswith("BOOT ") for l in lines):
            check_statuses(lines, f"restart {restart}")
            # Cut inside boot(), which resumes the update in flight (a patch, a rollback)
            # before it says what runs: the next restart is checked.
            c = next(l for l in lines if l.startswith("CUT "))
            stats["cuts"] += 1
            stats["cuts inside boot()"] += 1
            stats["kind " + KINDS[field(c, "kind")]] += 1
            stats["during " + field(c, "state")] += 1
            continue
        check_statuses(lines, f"restart {restart}")
        boot = check_boot(lines, shas, f"restart {restart}")
        stats["boots"] += 1
        stats["torn staging pages found at boot"] += int(field(boot, "torn_staging_pages"))
        stats["boot " + field(boot, "model")] += 1
        reason = boot.split('reason="', 1)[1].rstrip('"')
        if field(boot, "state") in ("RolledBack", "NoModel"):
            stats["reason: " + reason] += 1
        if rc is None:
            c = next(l for l in lines if l.startswith("CUT "))
            stats["cuts"] += 1
            stats["kind " + KINDS[field(c, "kind")]] += 1
            stats["during " + field(c, "state")] += 1
            continue
        if rc == 99:
            raise Failure("heap allocation after start-up")
        done = [l for l in lines if l.startswith("DONE ")]
        if rc != 0 or not done or field(done[0], "v3") != "1":
            raise Failure(f"the update did not complete (exit {rc}): {lines[-2:]}")
        return
    raise Failure("still not done after 12 restarts")


def prepare(elf, work, name):
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    lines, rc = run_qemu(elf, d, "factory")
    if rc != 0 or not any(l.startswith("FACTORY ok") for l in lines):
        raise Failure(f"factory install failed: {lines}")
    shutil.copy(os.path.join(d, "flash.bin"), os.path.join(work, name + "-factory.bin"))
    lines, rc = run_qemu(elf, d, "trace")
    trace = "".join(l[6:] for l in lines if l.startswith("TRACE "))
    if rc != 0 or not trace:
        raise Failure(f"the uncut run failed (exit {rc}): {lines[-3:]}")
    return os.path.join(work, name + "-factory.bin"), trace


def plan(trace, n, rng, second_share=0.3):
    """n trials: the first cut aimed at each group in turn, sometimes a second cut."""
    index = {g: [i + 1 for i, k in enumerate(trace) if k in kinds] for g, kinds in GROUPS.items()}
    groups = [g for g in GROUPS if index[g]]
    trials = []
    for t in range(n):
        cuts = [rng.choice(index[groups[t % len(groups)]])]
        if rng.random() < second_share:
            cuts.append(rng.randint(1, len(trace)))
        trials.append(cuts)
    return trials


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture-tool", required=True)
    ap.add_argument("--firmware", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--cuts", type=int, default=110, help="trials (first cuts)")
    ap.add_argument("--mutant-trials", type=int, default=60)
    ap.add_argument("--jobs", type=int, default=3, help="trials at once")
    ap.add_argument("--wild", type=int, default=10, help="kills at a random instant")
    ap.add_argument("--wild-window", type=float, default=0.15, help="seconds after BOOT")
    ap.add_argument("--no-build", action="store_true")
    a = ap.parse_args()
    work = os.path.abspath(a.work)
    os.makedirs(work, exist_ok=True)
    fixture = os.path.join(work, "fixture")
    build = os.path.join(work, "build")
    start = time.time()
    if not a.no_build:
        subprocess.run([a.fixture_tool, fixture], check=True)
        toolchain = os.path.join(a.firmware, "..", "kernels", "firmware", "arm-none-eabi.cmake")
        subprocess.run(["cmake", "-S", a.firmware, "-B", build, "-G", "Ninja",
                        f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", f"-DPOWER_CUT_FIXTURE={fixture}"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "--target", "power_cut_app.elf",
                        "power_cut_mutant_records.elf", "power_cut_mutant_pages.elf"],
                       check=True, stdout=subprocess.DEVNULL)
    built = time.time()
    shas = {f"v{v}": hashlib.sha256(open(os.path.join(fixture, f"v{v}.tfa"), "rb").read()).hexdigest()
            for v in (1, 2, 3)}
    rng = random.Random(a.seed)
    elf = os.path.join(build, "power_cut_app.elf")
    factory, trace = prepare(elf, work, "app")
    print(f"uncut run: {len(trace)} flash pieces: " + ", ".join(
        f"{KINDS[k]} {trace.count(k)}" for k in KINDS if trace.count(k)))
    stats = collections.Counter()
    failures = []
    trials = plan(trace, a.cuts, rng)
    # Trials are independent (each from the factory image, its cuts planned above), so a
    # few run at once: QEMU mostly waits at start-up.
    def one(t):
        c = collections.Counter()
        try:
            rundir = os.path.join(work, f"trial{t}")
            trial(elf, factory, rundir, trials[t], shas, c)
            shutil.rmtree(rundir)  # a failed trial's flash file is kept
            c["completed"] += 1
            return c, None
        except Failure as e:
            return c, f"trial {t} (cuts at pieces {trials[t]}): {e}"
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for c, failure in pool.map(one, range(len(trials))):
            stats.update(c)
            if failure:
                failures.append(failure)
    # Wild kills: SIGKILL at a random instant after the first boot line, the image not
    # told (where it lands is not known; the restarts are checked the same way).
    wild_stats = collections.Counter()
    for t in range(a.wild):
        try:
            rundir = os.path.join(work, "wild")
            trial(elf, factory, rundir, [], shas, wild_stats, wild=rng.uniform(0, a.wild_window))
        except Failure as e:
            failures.append(f"wild kill {t}: {e}")
    print(f"wild kills: {a.wild} at 0-{a.wild_window * 1000:.0f} ms after the boot line: "
          f"{wild_stats['wild kills landed before the run ended']} landed before the run ended, "
          f"{wild_stats['boots']} boots checked")
    cut_time = time.time()
    print(f"{stats['cuts']} power cuts in {len(trials)} trials (seed {a.seed}), "
          f"{stats['boots']} boots checked, {stats['completed']} updates completed to v3, "
          f"{len(failures)} trials failed (a brick, a mixed model, or no v3 in the end)")
    for key in sorted(stats):
        if key.startswith(("kind ", "during ", "boot v", "reason: ", "torn", "cuts inside")):
            print(f"  {key}: {stats[key]}")
    for f in failures[:10]:
        print("FAIL " + f)

    # The mutants: records whose CRC is not checked (cuts aimed at record programs), and
    # staging pages assumed to land whole (cuts aimed at staging programs). Each must make
    # some restart fail the same checks.
    caught_all = True
    for name, kinds, what in (("records", "rw", "records without the CRC check"),
                              ("pages", "T", "staging pages assumed to land whole")):
        mutant = os.path.join(build, f"power_cut_mutant_{name}.elf")
        m_factory, m_trace = prepare(mutant, work, f"mutant-{name}")
        index = [i + 1 for i, k in enumerate(m_trace) if k in kinds]
        caught = None
        for t in range(a.mutant_trials):
            cut = rng.choice(index)
            try:
                trial(mutant, m_factory, os.path.join(work, f"mutant-{name}-trial"), [cut], shas,
                      collections.Counter())
            except Failure as e:
                caught = f"after {t + 1} cuts (piece {cut}, {KINDS[m_trace[cut - 1]]}): {e}"
                break
        caught_all = caught_all and caught is not None
        print(f"mutant ({what}): "
              f"{'caught ' + caught if caught else 'NOT caught in %d cuts' % a.mutant_trials}")
    end = time.time()
    print(f"time: build {built - start:.0f} s, cuts {cut_time - built:.0f} s, "
          f"mutant {end - cut_time:.0f} s")
    ok = not failures and stats["cuts"] >= 100 and stats["completed"] == len(trials) and caught_all
    print("power cuts: ok" if ok else "power cuts: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
