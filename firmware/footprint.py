#!/usr/bin/env python3
"""The firmware footprint table: flash and RAM per component, from the link map of the
agent update app (what --gc-sections kept of each library: the agent applying a delta,
its inference loop, the kernels runtime running the model), the whole kernels archive
for reference, and the RAM the check apps measured on the target (object sizes, the
largest stack high-water). The MQTT client's flash and object come from the link map of
mqtt_uart_app (the client over UART0).

  footprint.py --map agent_update_app.map --map crypto_check_app.map \
               --map mqtt_uart_app.map --kernels libtinyfleet_kernels_m4.a \
               --app-output qemu_out.txt
"""
import argparse
import re
import subprocess
import sys

COMPONENTS = [
    ("agent core", "state machine, inference loop, telemetry"),
    ("update: offer + messages", "offer check, chunk framing, status/telemetry codecs"),
    ("update: delta decoder", "TensorRange (zstd, LZMA left out)"),
    ("crypto", "ports + libsodium Ed25519 verify, SHA-256/512"),
    ("MQTT client", "MQTT 3.1.1 packets and client, CMSDK UART port"),
]
KERNELS = "kernels runtime + runner"
FLASH_TARGET = 48 * 1024
RAM_TARGET = 32 * 1024


def component(origin):
    m = re.search(r"lib(tinyfleet_[a-z0-9_]+)\.a\(([^)]+)\)", origin)
    if not m:
        return None
    lib, obj = m.groups()
    if lib == "tinyfleet_device_agent_m4":
        return "agent core"
    if lib == "tinyfleet_update_m4":
        if obj.startswith(("delta_decoder", "range_delta_decoder")):
            return "update: delta decoder"
        return "update: offer + messages"
    if lib in ("tinyfleet_crypto_m4", "tinyfleet_sodium_m4"):
        return "crypto"
    if lib == "tinyfleet_mqtt_m4":
        return "MQTT client"
    if lib in ("tinyfleet_kernels_m4", "tinyfleet_runner_m4"):
        return KERNELS
    return None


def parse_map(path):
    """{component: {"text": n, "data": n, "bss": n}} from the memory map part."""
    sizes = {c: {"text": 0, "data": 0, "bss": 0} for c, _ in COMPONENTS + [(KERNELS, "")]}
    started = False
    pending = None
    line_re = re.compile(r"^ (\.[^\s]+|COMMON)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?$")
    cont_re = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not started:
                started = line.startswith("Linker script and memory map")
                continue
            m = line_re.match(line)
            if m:
                name, _, size, origin = m.groups()
                if size is None:
                    pending = name
                    continue
            else:
                c = cont_re.match(line)
                if not (c and pending):
                    pending = None
                    continue
                name, size, origin = pending, c.group(2), c.group(3)
            pending = None
            comp = component(origin)
            if comp is None:
                continue
            kind = ("bss" if name.startswith((".bss", "COMMON")) else
                    "data" if name.startswith(".data") else
                    "text" if name.startswith((".text", ".rodata")) else None)
            if kind:
                sizes[comp][kind] += int(size, 16)
    return sizes


def mqtt_client_bytes(paths):
    """The size of mqtt_uart_app's client object (g_client, with its buffers) from a map."""
    for path in paths:
        text = open(path).read()
        m = re.search(r"\.bss\.\S*g_client\S*\s+0x[0-9a-f]+\s+0x([0-9a-f]+)", text)
        if m:
            return int(m.group(1), 16)
    return None


def archive_total(path):
    out = subprocess.run(["arm-none-eabi-size", "-t", path], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1].split()
    return int(out[0]), int(out[1]), int(out[2])


def kb(n):
    return f"{n / 1024:6.1f} KB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--map", required=True, action="append",
                    help="link maps; per component the largest is taken (the union's lower bound)")
    ap.add_argument("--kernels", required=True)
    ap.add_argument("--app-output", required=True)
    a = ap.parse_args()
    maps = [parse_map(m) for m in a.map]
    sizes = {c: max((m[c] for m in maps), key=lambda v: v["text"] + v["data"]) for c in maps[0]}
    app = open(a.app_output).read()
    objects = re.search(r"ram: UpdateAgent (\d+) B, InferenceLoop (\d+) B, "
                        r"TensorRange workspace (\d+) B", app)
    stacks = [int(x) for x in re.findall(r"ram: stack high-water (\d+) B", app)]
    if not objects or not stacks:
        sys.exit("the check apps' output has no ram: lines")
    agent_b, loop_b, workspace_b = map(int, objects.groups())
    stack_b = max(stacks)

    print("Footprint (Cortex-M4F, -Os, arm-none-eabi-gcc 12; flash = text+rodata+data kept by "
          "--gc-sections in the check apps; RAM = data+bss)")
    print(f"{'component':28} {'flash':>10} {'static RAM':>11}  what")
    total_flash = total_ram = 0
    for name, what in COMPONENTS:
        s = sizes[name]
        flash, ram = s["text"] + s["data"], s["data"] + s["bss"]
        total_flash += flash
        total_ram += ram
        print(f"{name:28} {kb(flash):>10} {kb(ram):>11}  {what}")
    margin = FLASH_TARGET - total_flash
    print(f"{'= everything but kernels':28} {kb(total_flash):>10} {kb(total_ram):>11}  "
          f"{total_flash} B; target <= 48 KB flash: "
          f"{f'met ({margin} B to spare)' if margin >= 0 else f'MISSED by {-margin} B'}")
    k = sizes[KERNELS]
    print(f"{KERNELS:28} {kb(k['text'] + k['data']):>10} {kb(k['data'] + k['bss']):>11}  "
          "what the update app's models (the fixture's FullyConnected and Softmax, digits_cnn) keep")
    kt, kd, kbss = archive_total(a.kernels)
    print(f"{'kernels archive (all ops)':28} {kb(kt + kd):>10} {kb(kd + kbss):>11}  every object "
          "of libtinyfleet_kernels_m4.a (an image keeps only the operators it dispatches)")
    print("RAM measured on the target:")
    mqtt_b = mqtt_client_bytes(a.map)
    agent_ram = agent_b + loop_b + stack_b + (mqtt_b or 0)
    print(f"  UpdateAgent object      {agent_b:7d} B  (with its offer buffer, TINYFLEET_MAX_OFFER_BYTES = 8 KB)")
    print(f"  InferenceLoop object    {loop_b:7d} B  (input/output buffers, telemetry ring)")
    print(f"  stack high-water        {stack_b:7d} B  (the larger of the two apps: update, patch, "
          "self-test, inference; offer check, Ed25519)")
    if mqtt_b is not None:
        print(f"  MQTT client object      {mqtt_b:7d} B  (mqtt_uart_app's: 1 KB transmit and 1 KB "
              "receive buffer)")
    print(f"  delta workspace         {workspace_b:7d} B  (TensorRange, outside the target)")
    print(f"  = agent RAM besides arena and workspace {agent_ram} B ({kb(agent_ram).strip()}): "
          f"target <= 32 KB {'met' if agent_ram <= RAM_TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
