"""The platform itself: `airflow standalone` (scheduler, triggerer, dag-processor, API server; LocalExecutor), driven
through the REST API the way tests/deployment does: trigger the layer DAGs in order, read their runs' times."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import requests

from bench.common import BIN, REPO_ROOT, Scale, log

WARM_EXECUTOR = "include.vyapar.runtime.executor.WarmLocalExecutor"
LAYERS = ["staging", "intermediate", "dimensions", "facts", "marts", "ml_features"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


@dataclass
class Platform:
    scale: Scale
    variants: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)
    # The stock peers (bench/dags_stock): Airflow's LocalExecutor, no plugins (no airflow_local_settings, so no
    # process patches, no alerting listener), the DAGs as stock Cosmos builds them.
    stock: bool = False
    port: int = 0
    proc: subprocess.Popen | None = None
    token: str = ""

    @property
    def home(self) -> Path:
        return self.scale.root / ("airflow_home_stock" if self.stock else "airflow_home")

    @property
    def base(self) -> str:
        return f"http://localhost:{self.port}"

    def env(self) -> dict[str, str]:
        self.port = self.port or _free_port()
        return self.scale.env(
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO_ROOT / "bench" / ("dags_stock" if self.stock else "dags")),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(self.scale.root / "no_plugins" if self.stock else REPO_ROOT / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DEFAULT_TIMEZONE="Asia/Kolkata",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
            AIRFLOW__CORE__PARALLELISM=os.environ.get("AIRFLOW__CORE__PARALLELISM", "4"),
            # bin/start's executor (task processes start with dbt imported); VYAPAR_BENCH_EXECUTOR=LocalExecutor
            # measures Airflow's own.
            AIRFLOW__CORE__EXECUTOR="LocalExecutor" if self.stock else os.environ.get("VYAPAR_BENCH_EXECUTOR", WARM_EXECUTOR),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(self.home / "passwords.json"),
            AIRFLOW__API__PORT=str(self.port),
            # Others may run Airflow on this machine: the log servers must not collide with theirs.
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
            AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(_free_port()),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{self.port}/execution/",
            VYAPAR_AIRFLOW_BASE_URL=self.base,
            VYAPAR_BENCH_VARIANTS=",".join(self.variants),
            **self.extra_env,
        )

    def start(self) -> Platform:
        # A fresh Airflow home: a scheduler would otherwise resume an interrupted earlier session's runs.
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True, exist_ok=True)
        if self.stock:
            (self.scale.root / "no_plugins").mkdir(exist_ok=True)
        password = secrets.token_urlsafe(12)
        (self.home / "passwords.json").write_text(json.dumps({"admin": password}))
        env = self.env()
        subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [str(BIN / "airflow"), "pools", "set", "duckdb_warehouse", "1", "DuckDB single writer"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        self.log_path = self.scale.root / ("standalone_stock.log" if self.stock else "standalone.log")
        with self.log_path.open("w") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "airflow"), "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=REPO_ROOT,
            )  # fmt: skip
        self._wait(lambda: requests.get(f"{self.base}/api/v2/monitor/health", timeout=5).ok, 300, "a healthy API")
        response = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": password}, timeout=10
        )
        response.raise_for_status()
        self.token = response.json()["access_token"]
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._kill_strays()

    def _kill_strays(self) -> None:
        """Airflow processes of this home that outlived `airflow standalone` (seen: a scheduler and its executor
        workers after a failed step): left alone they would run on into the next measurement."""
        import psutil

        for p in psutil.process_iter(["pid"]):
            try:
                if p.pid != os.getpid() and p.environ().get("AIRFLOW_HOME") == str(self.home):
                    p.kill()
            except (psutil.Error, OSError):
                pass

    def cpu_by_role(self) -> dict[str, float]:
        """User + system CPU seconds so far of this home's Airflow processes, by role (their command line), each
        with its reaped children's (a task process counts with the worker that ran it)."""
        import psutil

        roles = ("scheduler", "triggerer", "dag-processor", "api-server", "worker")
        totals: dict[str, float] = dict.fromkeys((*roles, "other"), 0.0)
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.environ().get("AIRFLOW_HOME") != str(self.home):
                    continue
                line = " ".join(p.info["cmdline"] or [])
                role = next((r for r in roles if r in line or r.replace("-", "_") in line), "other")
                parent = " ".join(p.parent().cmdline()) if p.parent() else ""
                if role == "scheduler" and "scheduler" in parent:
                    role = "worker"  # the executor's workers are forks of the scheduler (same command line)
                t = p.cpu_times()
                totals[role] += t.user + t.system + t.children_user + t.children_system
            except (psutil.Error, OSError):
                pass
        return totals

    def _wait(self, predicate, timeout: float, what: str, interval: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited while waiting for {what}")
            try:
                value = predicate()
                if value:
                    return value
            except requests.RequestException:
                pass
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    def api(self, method: str, path: str, **kwargs):
        response = requests.request(
            method, f"{self.base}/api/v2{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 300) -> None:
        def present():
            dags = self.api("GET", "/dags", params={"limit": 200})["dags"]
            return set(dag_ids) <= {d["dag_id"] for d in dags}

        try:
            self._wait(present, timeout, f"{len(dag_ids)} DAGs to be parsed", interval=2)
        except TimeoutError:
            errors = self.api("GET", "/importErrors")
            raise TimeoutError(f"DAGs not parsed; import errors: {json.dumps(errors)[:3000]}") from None

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 7200) -> dict:
        """Trigger, wait for the end; the run's times and every task instance's."""
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        cpu_before = self.cpu_by_role()
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        run_id = run["dag_run_id"]
        triggered = time.time()

        def finished():
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            return state if state["state"] in ("success", "failed") else None

        final = self._wait(finished, timeout, f"{dag_id} to finish", interval=0.5)
        seen = time.time()
        cpu_after = self.cpu_by_role()
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500})["task_instances"]
        start, end = _ts(final.get("start_date")), _ts(final.get("end_date"))
        return {
            "dag_id": dag_id, "run_id": run_id, "state": final["state"],
            "seconds": (end - start) if start and end else None,
            "queued_seconds": (start - triggered) if start else None,
            "seen_seconds": seen - triggered,
            "tasks": len(tis),
            "task_states": {t["task_id"]: t["state"] for t in tis},
            "task_seconds_sum": sum(t.get("duration") or 0 for t in tis),
            # CPU seconds each Airflow process spent from the trigger until the run was seen finished (the task
            # processes count with the executor worker that ran them): what Airflow takes from dbt on 2 cores
            "cpu_seconds": {role: round(cpu_after.get(role, 0) - cpu_before.get(role, 0), 2) for role in cpu_after},
            # Each task's times relative to the run's start: where the run's time goes (scheduling, starts, ends).
            "timeline": _timeline(start, tis),
        }  # fmt: skip


def _timeline(start: float | None, tis: list[dict]) -> dict[str, dict]:
    def rel(value):
        ts = _ts(value)
        return round(ts - start, 2) if ts is not None and start is not None else None

    return {
        t["task_id"]: {"queued": rel(t.get("queued_when")), "start": rel(t.get("start_date")), "end": rel(t.get("end_date"))}
        for t in sorted(tis, key=lambda t: t.get("start_date") or "")
    }


def prime_partial_parse(scale: Scale, variants: list[str]) -> int:
    """Steady state of dbt's partial parsing in every bench DAG: each DAG's Cosmos cache gets the partial parse of
    this scale's own dbt runs (bench/dbt_plain's target). In production a DAG's cache holds the partial parse of
    its runtime profile after its first run; here the per-scale warehouse path changes dbt's profile, so without
    this every DAG's first and only run here would parse the whole project again (~4 s, "profile has changed")."""
    source = scale.root / "target" / "partial_parse.msgpack"
    if not source.exists():
        return 0
    for variant in variants:
        for layer in LAYERS:
            dest = scale.root / "cosmos_cache" / f"vyapar_{layer}__{variant}__dbt" / "target" / source.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
    return len(variants) * len(LAYERS)


def daily_build(platform: Platform, variant: str, restore) -> dict:
    """Every layer DAG of the variant, staging .. ml_features, one after the other on the baseline warehouse."""
    restore()
    runs = []
    for layer in LAYERS:
        run = platform.run_dag(f"vyapar_{layer}__{variant}")
        runs.append(run)
        log(f"  {variant} {run['dag_id']}: {run['state']} in {run['seconds']:.1f} s ({run['tasks']} tasks)")
        if run["state"] != "success":
            break
    return {
        "variant": variant, "ok": all(r["state"] == "success" for r in runs) and len(runs) == len(LAYERS),
        "seconds": sum(r["seconds"] or 0 for r in runs),
        "trigger_to_seen_seconds": sum(r["seen_seconds"] for r in runs),
        "tasks": sum(r["tasks"] for r in runs), "runs": runs,
    }  # fmt: skip


def floor(platform: Platform, runs: int = 6) -> dict:
    """A one-task DAG that does nothing, run once untimed (the platform's first task process is slow) and then
    `runs` times, one after the other: what any DAG run costs here, the floor under each layer DAG run. Before it,
    the warm-up DAG (bench/warmup.py: the triggerer's one-off set-up of the execution API)."""
    platform.run_dag("vyapar_bench_warmup")
    platform.run_dag("vyapar_bench_floor")
    seconds = [platform.run_dag("vyapar_bench_floor")["seconds"] for _ in range(runs)]
    return {"runs": runs, "seconds": seconds, "mean_seconds": sum(seconds) / len(seconds)}


def alert_latency(platform: Platform, slack) -> dict:
    """Run the alert DAG (20 tasks failing one after the other); latency = Slack receipt - the failure's own clock."""
    dag_id = "vyapar_bench_alerts"
    before = len(slack.messages)
    run = platform.run_dag(dag_id, timeout=900)
    expected = sum(1 for s in run["task_states"].values() if s == "failed")
    deadline = time.monotonic() + 120
    pattern = re.compile(r"bench failure at (\d+\.\d+)")
    latencies: dict[str, float] = {}
    while time.monotonic() < deadline:
        for message in slack.messages[before:]:
            text = message.text + json.dumps(message.blocks)
            found = pattern.search(text)
            task = re.search(r"fail_\d\d", text)
            if found and task and dag_id in text and task.group(0) not in latencies:
                latencies[task.group(0)] = float(message.ts) - float(found.group(1))
        if len(latencies) >= expected:
            break
        time.sleep(0.5)
    values = sorted(latencies.values())

    def pct(p: float) -> float | None:
        if not values:
            return None
        k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
        return values[k]

    return {
        "failures": expected, "received": len(values), "p50": pct(50), "p95": pct(95),
        "max": values[-1] if values else None, "latencies": latencies,
    }  # fmt: skip
