"""Benchmark: header-only facts and the six hashes of a 1 GiB adapter, against ``openssl dgst -sha256``.

Creates (once) ``benchmarks/_data/sdxl-kohya-<size>MiB.safetensors``: the real tensor layout of an SDXL kohya
LoRA with both text encoders (~3,000 tensors, a header of a few hundred KB), its rank chosen to fill the
size, the data written in chunks and never held in memory. Then, with the file in the page cache, the
median of ``--repeat`` runs of:

  (a) header facts: ``read_header`` + ``read_scalars`` + ``lorareg.adapter.facts.compute_facts`` (header only
  if the facts module is not importable), in this process;
  (b) ``hash_file`` (all six hashes) in a fresh child process, and ``openssl dgst -sha256`` of the same file,
      alternating, and their ratio;

and the peak RSS of a child doing each. Targets: (a) < 50 ms, (b) <= 1.6x openssl, RSS < 100 MB.

Run: ``python benchmarks/inspect.py`` (1 GiB) or ``python benchmarks/inspect.py --size-mib 64`` (quick).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the stdlib module ``inspect``; keep its folder off the import path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "_data"
MIB = 2**20
WRITE_CHUNK_BYTES = 8 * MIB
TARGET_FACTS_S = 0.050
TARGET_HASH_RATIO = 1.6
TARGET_RSS_BYTES = 100 * 10**6

_CHILD_HASH = """
import json, resource, sys, time
from lorareg.adapter.hashing import hash_file
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started, cpu_started = time.perf_counter(), cpu()
hashes = hash_file(sys.argv[1])
seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "sha256": hashes.sha256,
                  "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""

_CHILD_FACTS = """
import importlib.util, json, resource, sys
spec = importlib.util.spec_from_file_location("lorareg_benchmark_inspect", sys.argv[2])
bench = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
bench.header_facts(sys.argv[1])
print(json.dumps({"maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="adapter size in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (default 5)")
    args = parser.parse_args(argv)
    path = ensure_adapter(args.size_mib)
    _warm_cache(path)
    size = path.stat().st_size
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"file: {path} ({size / MIB:.0f} MiB); cpus: {os.cpu_count()}, load average: {load:.1f}")

    from lorareg.adapter.safetensors import read_header

    header = read_header(path)
    print(f"header: {header.header_size / 1000:.0f} KB, {len(header.tensors)} tensors")
    facts_s, facts_label = _measure_facts(path, args.repeat)
    runs = _measure_hashes(path, args.repeat)
    hash_s, openssl_s, hash_rss = runs.seconds, runs.openssl_seconds, runs.rss
    facts_rss = _child_json(_CHILD_FACTS, str(path), str(Path(__file__).resolve()))["maxrss"]

    ratio = hash_s / openssl_s
    print(f"(a) {facts_label}: median {facts_s * 1000:.1f} ms (target < {TARGET_FACTS_S * 1000:.0f} ms)")
    print(f"(b) hash_file, six hashes: median {hash_s:.3f} s = {size / MIB / hash_s:.0f} MiB/s")
    print(f"    openssl dgst -sha256:   median {openssl_s:.3f} s = {size / MIB / openssl_s:.0f} MiB/s")
    print(f"    ratio {ratio:.2f}x (target <= {TARGET_HASH_RATIO}x)")
    print(
        f"    CPU seconds: hash_file {runs.cpu:.2f}, openssl {runs.openssl_cpu:.2f} "
        f"({runs.cpu / runs.openssl_cpu:.2f}x; the wall ratio approaches this when no core is idle)"
    )
    print(f"peak RSS: facts child {facts_rss / 10**6:.0f} MB, hashing child {hash_rss / 10**6:.0f} MB")
    ok = (
        facts_s < TARGET_FACTS_S
        and ratio <= TARGET_HASH_RATIO
        and max(facts_rss, hash_rss) < TARGET_RSS_BYTES
    )
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def header_facts(path: str | Path) -> str:
    """What ``lorareg inspect`` does before hashing; returns a label of the steps that ran."""
    from lorareg.adapter.safetensors import read_header, read_scalars

    header = read_header(path)
    scalars = read_scalars(path, header)
    try:
        from lorareg.adapter.facts import compute_facts
    except ImportError:
        return "read_header + read_scalars (lorareg.adapter.facts not importable yet)"
    compute_facts(header, scalars)
    return "read_header + read_scalars + compute_facts"


def _measure_facts(path: Path, repeat: int) -> tuple[float, str]:
    label = header_facts(path)
    return statistics.median(_timed(lambda: header_facts(path)) for _ in range(repeat)), label


@dataclass(frozen=True)
class _HashRuns:
    seconds: float  # median wall time of hash_file
    cpu: float  # median CPU seconds (user + system) of hash_file
    openssl_seconds: float
    openssl_cpu: float
    rss: int  # peak RSS in bytes of the hashing child


def _measure_hashes(path: Path, repeat: int) -> _HashRuns:
    """Alternate hash_file (in a fresh child) and openssl on the same file, ``repeat`` times each."""
    runs: list[tuple[float, float, float, float]] = []
    rss = 0
    for _ in range(repeat):
        result = _child_json(_CHILD_HASH, str(path))
        rss = max(rss, result["maxrss"])
        cpu_before, started = _children_cpu(), time.perf_counter()
        out = subprocess.run(
            ["openssl", "dgst", "-sha256", str(path)], capture_output=True, text=True, check=True
        )
        elapsed, openssl_cpu = time.perf_counter() - started, _children_cpu() - cpu_before
        runs.append((result["seconds"], result["cpu"], elapsed, openssl_cpu))
        if result["sha256"] not in out.stdout:
            raise SystemExit(f"sha256 disagrees with openssl: {result['sha256']} vs {out.stdout.strip()}")
    seconds, cpu, openssl_seconds, openssl_cpu = (statistics.median(c) for c in zip(*runs, strict=True))
    return _HashRuns(seconds, cpu, openssl_seconds, openssl_cpu, rss)


def _children_cpu() -> float:
    """CPU seconds (user + system) of all waited-for child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _child_json(code: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _warm_cache(path: Path) -> None:
    """Read the file once so that every run measures hashing, not the disk."""
    with path.open("rb", buffering=0) as handle:
        while handle.read(WRITE_CHUNK_BYTES):
            pass


# --- the adapter -------------------------------------------------------------------------------------


def ensure_adapter(size_mib: int) -> Path:
    """Return the benchmark adapter of about ``size_mib`` MiB, writing it first if absent."""
    path = DATA_DIR / f"sdxl-kohya-{size_mib}MiB.safetensors"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        _write_adapter(partial, size_mib * MIB)
        partial.rename(path)
    return path


def _sdxl_kohya_modules() -> Iterator[tuple[str, int, int]]:
    """(kohya module name, in features, out features) of SDXL's UNet attention and both text encoders."""
    unet = [("input_blocks_4_1", 640, 2), ("input_blocks_5_1", 640, 2), ("input_blocks_7_1", 1280, 10)]
    unet += [("input_blocks_8_1", 1280, 10), ("middle_block_1", 1280, 10)]
    unet += [(f"output_blocks_{i}_1", 1280, 10) for i in range(3)]
    unet += [(f"output_blocks_{i}_1", 640, 2) for i in range(3, 6)]
    for block, c, depth in unet:
        yield f"lora_unet_{block}_proj_in", c, c
        yield f"lora_unet_{block}_proj_out", c, c
        for d in range(depth):
            prefix = f"lora_unet_{block}_transformer_blocks_{d}"
            for attn, context in (("attn1", c), ("attn2", 2048)):
                yield f"{prefix}_{attn}_to_q", c, c
                yield f"{prefix}_{attn}_to_k", context, c
                yield f"{prefix}_{attn}_to_v", context, c
                yield f"{prefix}_{attn}_to_out_0", c, c
            yield f"{prefix}_ff_net_0_proj", c, 8 * c
            yield f"{prefix}_ff_net_2", 4 * c, c
    for te, hidden, layers in (("te1", 768, 12), ("te2", 1280, 32)):
        for layer in range(layers):
            prefix = f"lora_{te}_text_model_encoder_layers_{layer}"
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                yield f"{prefix}_self_attn_{proj}", hidden, hidden
            yield f"{prefix}_mlp_fc1", hidden, 4 * hidden
            yield f"{prefix}_mlp_fc2", 4 * hidden, hidden


def _layout(size_bytes: int) -> tuple[int, list[tuple[str, list[int]]]]:
    """The rank that fills ``size_bytes`` with F16 weights, and the (name, shape) list in file order."""
    modules = list(_sdxl_kohya_modules())
    bytes_per_rank = sum(2 * (fan_in + fan_out) for _, fan_in, fan_out in modules)
    rank = max(1, size_bytes // bytes_per_rank)
    tensors = []
    for name, fan_in, fan_out in modules:
        tensors += [(f"{name}.alpha", []), (f"{name}.lora_down.weight", [rank, fan_in])]
        tensors.append((f"{name}.lora_up.weight", [fan_out, rank]))
    return rank, sorted(tensors)


def _write_adapter(path: Path, size_bytes: int) -> None:
    rank, tensors = _layout(size_bytes)
    header: dict[str, object] = {"__metadata__": _metadata(rank)}
    offset = 0
    for name, shape in tensors:
        nbytes = 2 * (shape[0] * shape[1] if shape else 1)
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    pool = random.Random(0).randbytes(WRITE_CHUNK_BYTES)
    with path.open("wb") as out:
        out.write(len(raw).to_bytes(8, "little") + raw)
        for _name, shape in tensors:
            if not shape:
                out.write(struct.pack("<e", float(rank)))
                continue
            remaining = 2 * shape[0] * shape[1]
            while remaining:
                piece = min(remaining, WRITE_CHUNK_BYTES)
                out.write(pool[:piece])
                remaining -= piece


def _metadata(rank: int) -> dict[str, str]:
    tags = {f"tag_{i}": i % 97 + 1 for i in range(3000)}
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(float(rank)),
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_tag_frequency": json.dumps({"10_ink": tags}),
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
    }


if __name__ == "__main__":
    raise SystemExit(main())
