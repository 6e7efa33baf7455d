"""Builds the stand-in base images of the compose stack on a machine that cannot pull images.

Each folder here is one upstream image the compose file (or our Dockerfile) names: `packages` lists the Debian
12 packages of its root file system (mmdebstrap, minbase), `Containerfile` adds the upstream image's contract
on top and starts with a header saying which image it stands in for and what it keeps. The result is tagged with
the upstream name, so `podman-compose` builds and starts the project's Dockerfile and docker-compose.yaml as
they are.

An image is rebuilt only when its folder's content (or this file's recipe) changes: the content hash is the
image's label LABEL, and a tagged image carrying the same hash is reused. The root file system is kept as
localhost/vyapar-standin-rootfs-<name>:<hash of its packages>, so a change to a Containerfile or a script
rebuilds in seconds.

    python -m tests.deployment.images.build            # every stand-in, cached
    python -m tests.deployment.images.build postgres   # some
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

IMAGES_DIR = Path(__file__).resolve().parent
SUITE = "bookworm"
# This machine's Debian mirror and its apt options (the mirror is a snapshot: its Release files have expired).
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
APT_OPTIONS = ('Acquire::Check-Valid-Until "false"', 'Acquire::Check-Date "false"')
LABEL = "org.vyaparbazaar.standin.hash"
RECIPE_VERSION = "1"  # bump when the recipe below changes in a way the folders' content does not show
# The build reaches PyPI only through the host's network and the host's CA bundle.
BUILD_ARGS = ("--network", "host", "--volume", "/etc/ssl/certs:/etc/ssl/certs:ro")


@dataclass(frozen=True)
class StandIn:
    name: str  # the folder
    tag: str  # the upstream name it is tagged with
    users: tuple[tuple[str, int], ...] = ()  # system users made before the packages' own scripts make them

    @property
    def folder(self) -> Path:
        return IMAGES_DIR / self.name

    def packages(self) -> list[str]:
        lines = (self.folder / "packages").read_text(encoding="utf-8").splitlines()
        return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]

    def rootfs_hash(self) -> str:
        """The root file system's recipe alone: a change to the Containerfile or a script reuses the rootfs."""
        recipe = f"{RECIPE_VERSION}|{SUITE}|{self.packages()}|{self.users}|{APT_OPTIONS}"
        return hashlib.sha256(recipe.encode()).hexdigest()[:16]

    def content_hash(self) -> str:
        digest = hashlib.sha256(f"{RECIPE_VERSION}|{SUITE}|{self.tag}|{self.users}|{APT_OPTIONS}".encode())
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(self.folder)).encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()[:16]


STAND_INS = {
    s.name: s
    for s in (
        StandIn("airflow", "docker.io/apache/airflow:3.3.2-python3.11"),
        StandIn("postgres", "docker.io/library/postgres:16-bookworm", (("postgres", 999),)),
        StandIn("mailpit", "docker.io/axllent/mailpit:v1.27"),
        StandIn("redis", "docker.io/library/redis:7.4-bookworm", (("redis", 999),)),
    )
}


def _run(argv: list[str], log) -> None:
    log.write(f"$ {' '.join(argv)}\n")
    log.flush()
    proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {proc.returncode}: see {log.name}")


def image_hash(tag: str) -> str | None:
    proc = subprocess.run(["podman", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{LABEL}" }}}}', tag],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else None


def is_current(stand_in: StandIn) -> bool:
    return image_hash(stand_in.tag) == stand_in.content_hash()


def _user_hook(users: tuple[tuple[str, int], ...]) -> list[str]:
    """Fixed uids as the upstream images have them (999), before the Debian packages' adduser picks its own."""
    lines = []
    for name, uid in users:
        lines.append(
            f'grep -q "^{name}:" "$1/etc/group" || echo "{name}:x:{uid}:" >> "$1/etc/group"; '
            f'grep -q "^{name}:" "$1/etc/passwd" || echo "{name}:x:{uid}:{uid}::/var/lib/{name}:/bin/bash" >> "$1/etc/passwd"; '
            f'[ ! -e "$1/etc/shadow" ] || grep -q "^{name}:" "$1/etc/shadow" || echo "{name}:*:19000:0:99999:7:::" >> "$1/etc/shadow"'
        )  # fmt: skip
    return [f"--essential-hook={line}" for line in lines]


def _build_rootfs(stand_in: StandIn, tar: Path, rootfs_tag: str, log) -> None:
    _run(["mmdebstrap", "--variant=minbase", "--include=" + ",".join(stand_in.packages()),
          *(f"--aptopt={opt}" for opt in APT_OPTIONS), *_user_hook(stand_in.users),
          "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin",
          SUITE, str(tar), str(APT_SOURCES)], log)  # fmt: skip
    _run(["podman", "import", "--change", 'CMD ["/bin/bash"]', str(tar), rootfs_tag], log)
    tar.unlink()


def build(stand_in: StandIn, log_dir: Path) -> float:
    """Build one stand-in (rootfs, import, Containerfile); seconds taken."""
    started = time.monotonic()
    content = stand_in.content_hash()
    rootfs_tag = f"localhost/vyapar-standin-rootfs-{stand_in.name}:{stand_in.rootfs_hash()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / f"{stand_in.name}.log", "w", encoding="utf-8") as log,
        tempfile.TemporaryDirectory(prefix=f"standin-{stand_in.name}-", dir="/var/tmp") as tmp,
    ):
        tar = Path(tmp) / "rootfs.tar"
        if subprocess.run(["podman", "image", "exists", rootfs_tag], check=False).returncode != 0:
            _build_rootfs(stand_in, tar, rootfs_tag, log)
        _run(["podman", "build", *BUILD_ARGS, "--build-arg", f"ROOTFS={rootfs_tag}", "--label", f"{LABEL}={content}",
              "--file", str(stand_in.folder / "Containerfile"), "--tag", stand_in.tag, str(stand_in.folder)], log)  # fmt: skip
    return time.monotonic() - started


def ensure(names: list[str] | None = None, log_dir: Path | None = None) -> dict[str, float]:
    """Every stand-in named (default: all) present at its current content; seconds per image built (0: cached)."""
    log_dir = log_dir or Path(tempfile.gettempdir()) / "vyapar-standin-logs"
    wanted = [STAND_INS[n] for n in (names or list(STAND_INS))]
    todo = [s for s in wanted if not is_current(s)]
    timings = {s.name: 0.0 for s in wanted}
    with ThreadPoolExecutor(max_workers=max(1, len(todo))) as pool:
        for stand_in, seconds in zip(todo, pool.map(lambda s: build(s, log_dir), todo), strict=True):
            timings[stand_in.name] = seconds
    return timings


if __name__ == "__main__":
    started = time.monotonic()
    print(ensure(sys.argv[1:] or None, Path("test-artifacts/containers/images")))
    print(f"{time.monotonic() - started:.0f} s")
