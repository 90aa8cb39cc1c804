"""Benchmark: verify a 1 GiB signed adapter against `openssl dgst -sha256` and `model_signing verify key`.

Builds a kohya-style SDXL adapter padded to about 1 GiB (real header, one large tensor), signs it with a fresh
key, warms the page cache, then times in the same run (medians of 5):

- `openssl dgst -sha256 FILE`                    the baseline: one SHA-256 pass at the machine's speed
- `lorareg verify FILE --key K.pub`              the default path (BLAKE3, the manifest carries it)
- `lorareg verify` forced to SHA-256             the path without BLAKE3 (`verify_file(..., digest="sha256")`)
- `model_signing verify key ...`                 the OpenSSF tool on the same signature file

and prints each median, its ratio to openssl, and the peak RSS of each child (ru_maxrss).
Targets (issue 3): SHA-256 path <= 1.1x openssl, BLAKE3 path <= 0.6x, faster than model_signing, RSS < 100 MB.

Run: .venv/bin/python benchmarks/verify.py [--size-mib 1024] [--runs 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/ holds scripts named like stdlib modules (adapter/inspect.py): keep it off the import path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

import lorareg  # noqa: E402

MANIFEST = """\
name = "bench/big"
version = "1.0.0"
[license]
id = "MIT"
commercial_use = true
derivatives = true
attribution_required = false
[consent]
subject = "style"
status = "not-required"
"""


def build(directory: Path, size_mib: int) -> None:
    """Write ``big.safetensors``, the key pair ``k.key``/``k.pub`` and ``big.safetensors.sig``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.lora_factory import build_tensors

    tensors = build_tensors("sdxl-kohya", rank=2, blocks=1)
    pad = max(0, size_mib * 2**20 - sum(t.nbytes for t in tensors.values())) // 2
    rng = np.random.default_rng(0)
    tensors["lora_unet_zz_padding.lora_down.weight"] = rng.integers(
        0, 2**16, (pad // 1024, 1024), dtype=np.uint16
    ).view(np.float16)
    adapter = directory / "big.safetensors"
    save_file(tensors, str(adapter))
    (directory / "m.toml").write_text(MANIFEST)
    lorareg = [sys.executable, "-m", "lorareg"]
    subprocess.run([*lorareg, "keygen", "--out", str(directory / "k")], check=True, capture_output=True)
    sign = [
        *lorareg,
        "sign",
        str(adapter),
        "--manifest",
        str(directory / "m.toml"),
        "--key",
        str(directory / "k.key"),
    ]
    subprocess.run(sign, check=True, capture_output=True)


def timed_once(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds of one run and the child's peak RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def interleaved(commands: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds and peak RSS per command, running the commands in turn so load drift hits all alike."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            samples[name].append(timed_once(cmd))
    return {n: (statistics.median(t for t, _ in s), max(r for _, r in s)) for n, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--build-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Time the CLI as installed (pip compiles on install), not a recompile in every process when the
    # shell sets PYTHONDONTWRITEBYTECODE: write current .pyc files once, up front.
    compileall.compile_dir(str(Path(lorareg.__file__).parent), quiet=1)
    if (
        args.build_into
    ):  # child process: its 1 GiB of numpy arrays must not inflate the measured children's RSS
        build(args.build_into, args.size_mib)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        child = [sys.executable, __file__, "--build-into", tmp, "--size-mib", str(args.size_mib)]
        subprocess.run(child, check=True)
        subprocess.run(["sync"], check=True)
        adapter, public = Path(tmp) / "big.safetensors", Path(tmp) / "k.pub"
        sig = f"{adapter}.sig"
        env_trust = str(Path(tmp) / "no-trust.toml")
        os.environ["LORAREG_TRUST"] = env_trust
        forced = (
            "import sys; from pathlib import Path; from lorareg.signing.filecheck import verify_file;"
            "from lorareg.signing.trust import TrustStore; from lorareg.signing.keys import load_public_key;"
            f"t = TrustStore().with_key(load_public_key(Path({str(public)!r}).read_bytes()), label='b',"
            " role='publisher', namespace=None);"
            f"verify_file(Path({str(adapter)!r}), Path({sig!r}), trust=t, policy=t.policy, digest='sha256')"
        )
        py = sys.executable
        commands = {
            "openssl dgst -sha256": ["openssl", "dgst", "-sha256", str(adapter)],
            "lorareg verify (blake3)": [py, "-m", "lorareg", "verify", str(adapter), "--key", str(public)],
            "lorareg verify (sha256)": [py, "-c", forced],
            "model_signing verify key": [py, "-m", "model_signing", "verify", "key", "--signature", sig,
                                         "--public_key", str(public), str(adapter)],
        }  # fmt: skip
        for _ in range(2):  # warm the page cache
            timed_once(commands["openssl dgst -sha256"])
        size = adapter.stat().st_size
        load = os.getloadavg()[0]
        print(f"file: {size / 2**20:.0f} MiB, {os.cpu_count()} CPUs, load {load:.1f}, medians of {args.runs}")
        results = interleaved(commands, args.runs)
        base = results["openssl dgst -sha256"][0]
        for name, (median, rss) in results.items():
            print(f"{name:28s} {median:7.3f} s  {median / base:5.2f}x openssl  peak RSS {rss:6.1f} MiB")


if __name__ == "__main__":
    main()
