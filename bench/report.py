"""The table (table.txt), the summary (summary.json) and the plot of cost against data size (cost_vs_size.png)."""

from __future__ import annotations

import json
import math
from pathlib import Path

TARGETS = {
    "parse_seconds": 1.0, "parse_ratio": 10.0, "orchestration_ratio": 1.3, "incremental_speedup": 10.0,
    "peak_rss_gib": 4.0, "alert_p95": 2.0,
}  # fmt: skip

OURS = "watcher_dbt_runner"  # the runtime every path runs (docs/runtime.md), compared with the stock peers


def _fmt(value, unit: str = "", digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}{unit}"


def _mean(*values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(results: dict) -> dict:
    summary: dict = {"machine": results.get("machine"), "settings": results.get("settings"), "scales": {}}
    parse = results.get("parse") or {}
    if "manifest" in parse:
        summary["parse"] = {
            "manifest_seconds": parse["manifest"]["seconds"], "dbt_ls_seconds": parse["dbt_ls"]["seconds"],
            "dbt_ls_over_manifest": parse["ratio_dbt_ls_over_manifest"], "dags": parse["manifest"]["dags"],
            "tasks": parse["manifest"]["tasks"],
        }  # fmt: skip
    for name, entry in results.get("scales", {}).items():
        s: dict = {"events": entry["events"]}
        full = entry.get("full_build") or {}
        s["full_build_seconds"] = full.get("seconds")
        s["full_build_peak_rss_gib"] = full["peak_rss"] / 2**30 if full.get("peak_rss") else None
        plain = _mean(
            (entry.get("plain_daily") or {}).get("seconds"), (entry.get("plain_daily_after") or {}).get("seconds")
        )
        s["plain_daily_seconds"] = plain
        s["plain_daily_peak_rss_gib"] = (
            max([(entry.get(k) or {}).get("peak_rss") or 0 for k in ("plain_daily", "plain_daily_after")]) / 2**30
            or None
        )
        per_layer = entry.get("plain_per_layer") or {}
        s["plain_per_layer_seconds"] = per_layer.get("seconds") if per_layer.get("ok") else None
        airflow = (entry.get("airflow") or {}).get("variants") or {}
        # What any DAG run costs on this scheduler (a one-task DAG doing nothing): the floor under each layer run.
        s["airflow_floor_seconds"] = ((entry.get("airflow") or {}).get("floor") or {}).get("mean_seconds")
        s["airflow"] = {}
        for variant, run in airflow.items():
            runs = run.get("runs") or []
            s["airflow"][variant] = {
                "seconds": run.get("seconds"), "ok": run.get("ok"), "tasks": run.get("tasks"),
                "over_plain": run["seconds"] / plain if plain and run.get("seconds") and run.get("ok") else None,
                # what each layer DAG run adds to the plain build, on average (the ratio's fixed part)
                "overhead_per_dag_run_seconds": (run["seconds"] - plain) / len(runs)
                if plain and run.get("seconds") and run.get("ok") and runs else None,
                # the ratio if every layer DAG run cost only the floor on top of its share of the plain build
                "floor_over_plain": (plain + len(runs) * s["airflow_floor_seconds"]) / plain
                if plain and runs and s["airflow_floor_seconds"] else None,
                # against plain dbt split as the layer DAGs split it (a CLI process per layer)
                "over_plain_per_layer": run["seconds"] / s["plain_per_layer_seconds"]
                if s["plain_per_layer_seconds"] and run.get("seconds") and run.get("ok") else None,
            }  # fmt: skip
            # layer by layer against the split: where the difference is, and the CPU Airflow's own processes
            # spent during each run (on 2 cores, taken from dbt)
            plain_layers = per_layer.get("layers") or {}
            layer_runs = {r["dag_id"].removeprefix("vyapar_").split("__")[0]: r for r in runs}
            s["airflow"][variant]["layers"] = {
                layer: {"seconds": r.get("seconds"), "cpu_seconds": r.get("cpu_seconds"),
                        "plain_seconds": (plain_layers.get(layer) or {}).get("seconds")}
                for layer, r in layer_runs.items()
            }  # fmt: skip
        compose = entry.get("compose") or {}
        if compose.get("runs"):
            ok = compose.get("ok") and compose.get("seconds")
            s["compose"] = {
                "seconds": compose.get("seconds"), "ok": compose.get("ok"),
                "over_plain": compose["seconds"] / plain if ok and plain else None,
                "over_plain_per_layer": compose["seconds"] / s["plain_per_layer_seconds"]
                if ok and s["plain_per_layer_seconds"] else None,
                "layers": {r["dag_id"].removeprefix("vyapar_"): r["seconds"] for r in compose["runs"]},
                "up_until_healthy_seconds": compose.get("up_until_healthy_seconds"),
            }  # fmt: skip
        alerts = (entry.get("airflow") or {}).get("alerts")
        if alerts:
            summary["alerts"] = {
                k: {m: v.get(m) for m in ("p50", "p95", "max", "received", "failures")} for k, v in alerts.items()
            }
        snap = entry.get("snapshot") or {}
        if snap.get("take_seconds") is not None:
            s["snapshot"] = snap
        summary["scales"][name] = s
    inc = results.get("incremental") or {}
    if "incremental_seconds" in inc:
        summary["incremental"] = {
            k: inc.get(k)
            for k in (
                "incremental_seconds", "full_refresh_seconds", "speedup", "same_rows", "ok", "diffs",
                "cli_incremental_seconds", "cli_full_refresh_seconds", "cli_speedup",
            )  # fmt: skip
        }

        def model_seconds(key: str) -> float:
            return sum(v for k, v in (inc.get(key) or {}).items() if k.startswith("model."))

        # The models' own time (dbt's run_results), without the fixed cost of a dbt invocation (start, parse,
        # hooks) that both runs pay once.
        inc_models, full_models = model_seconds("incremental_node_seconds"), model_seconds("full_node_seconds")
        summary["incremental"].update(
            incremental_model_seconds=inc_models, full_refresh_model_seconds=full_models,
            model_speedup=full_models / inc_models if inc_models else None,
        )  # fmt: skip
    prof = results.get("profile") or {}
    if "build_seconds" in prof:
        summary["profile"] = {"slowest_models_seconds": prof["build_seconds"]}
    summary["growth"] = _growth(summary["scales"])
    return summary


def _growth(scales: dict) -> dict:
    """Exponent b of cost ~ events^b between consecutive scales (1 = linear)."""
    names = sorted(scales, key=lambda n: scales[n]["events"])
    out: dict = {}
    for key in ("full_build_seconds", "plain_daily_seconds"):
        exps = []
        for a, b in zip(names, names[1:], strict=False):
            ya, yb = scales[a].get(key), scales[b].get(key)
            if ya and yb:
                exps.append(round(math.log(yb / ya) / math.log(scales[b]["events"] / scales[a]["events"]), 2))
        out[key] = exps
    return out


def table(summary: dict) -> str:
    lines = []
    m = summary.get("machine") or {}
    lines.append(
        f"machine: {m.get('cpus')} cores, {m.get('memory_gib')} GiB; load average at start {m.get('load_average_at_start')}"
    )
    lines.append(
        f"DuckDB: threads={summary['settings']['duckdb_threads']} memory_limit={summary['settings']['duckdb_memory_limit']}"
    )
    lines.append("")
    lines.append(f"{'measure':<58} {'value':>14}  target")
    lines.append("-" * 90)
    p = summary.get("parse")
    if p:
        lines.append(
            f"{'1. parse, all DAG files, manifest (' + str(p['dags']) + ' DAGs, ' + str(p['tasks']) + ' tasks)':<58} {_fmt(p['manifest_seconds'], ' s'):>14}  < 1 s"
        )
        lines.append(f"{'   parse with LoadMode.DBT_LS':<58} {_fmt(p['dbt_ls_seconds'], ' s'):>14}")
        lines.append(f"{'   dbt ls / manifest':<58} {_fmt(p['dbt_ls_over_manifest'], 'x', 1):>14}  >= 10x")
    for name, s in summary["scales"].items():
        lines.append(f"-- {name}: {s['events']:,} clickstream events")
        lines.append(f"{'   full build (dbt build --full-refresh)':<58} {_fmt(s['full_build_seconds'], ' s', 1):>14}")
        lines.append(f"{'   daily build, plain dbt build':<58} {_fmt(s['plain_daily_seconds'], ' s', 1):>14}")
        if s.get("plain_per_layer_seconds") is not None:
            label = "   daily build, plain dbt, one process per layer"
            lines.append(
                f"{label:<58} {_fmt(s['plain_per_layer_seconds'], ' s', 1):>7} {_fmt(s['plain_per_layer_seconds'] / s['plain_daily_seconds'], 'x'):>6}"
                if s.get("plain_daily_seconds") else f"{label:<58} {_fmt(s['plain_per_layer_seconds'], ' s', 1):>14}"
            )
        if s.get("airflow_floor_seconds") is not None:
            lines.append(
                f"{'   Airflow floor: a one-task DAG run doing nothing':<58} {_fmt(s['airflow_floor_seconds'], ' s'):>14}"
            )
        for variant, a in s["airflow"].items():
            label = f"   2. daily build via Airflow, {variant}"
            value = f"{_fmt(a['seconds'], ' s', 1)} {_fmt(a['over_plain'], 'x')}" if a.get("ok") else "failed"
            lines.append(f"{label:<58} {value:>14}  <= 1.3x")
            if a.get("overhead_per_dag_run_seconds") is not None:
                lines.append(
                    f"{'      added per layer DAG run':<58} {_fmt(a['overhead_per_dag_run_seconds'], ' s', 1):>14}"
                )
            if a.get("over_plain_per_layer") is not None:
                lines.append(
                    f"{'      over plain dbt one process per layer':<58} {_fmt(a['over_plain_per_layer'], 'x'):>14}"
                )
            if a.get("floor_over_plain") is not None:
                lines.append(
                    f"{'      floor: plain + the layer runs at the floor, over plain':<58} {_fmt(a['floor_over_plain'], 'x'):>14}"
                )
        if c := s.get("compose"):
            label = "   daily build on the compose stack (containers)"
            value = f"{_fmt(c['seconds'], ' s', 1)} {_fmt(c['over_plain'], 'x')}" if c.get("ok") else "failed"
            lines.append(f"{label:<58} {value:>14}")
            if c.get("over_plain_per_layer") is not None:
                lines.append(f"{'      over plain dbt one process per layer':<58} {_fmt(c['over_plain_per_layer'], 'x'):>14}")
        for variant, a in s["airflow"].items():
            for layer, v in (a.get("layers") or {}).items():
                cpu = {k: x for k, x in (v.get("cpu_seconds") or {}).items() if x >= 0.05}
                lines.append(f"      {variant} {layer}: {_fmt(v.get('seconds'), ' s', 1)} against plain "
                             f"{_fmt(v.get('plain_seconds'), ' s', 1)}; Airflow CPU {cpu}")  # fmt: skip
        ours = s["airflow"].get(OURS) or {}
        for peer in ("stock_local", "stock_watcher"):
            theirs = s["airflow"].get(peer) or {}
            if ours.get("ok") and theirs.get("ok") and ours.get("seconds"):
                label = f"   ours ({OURS}) faster than {peer} by"
                lines.append(f"{label:<58} {_fmt(theirs['seconds'] / ours['seconds'], 'x'):>14}")
        if snap := s.get("snapshot"):
            lines.append(
                f"{'   snapshot: take / restore (' + _fmt(snap['snapshot_bytes'] / 2**20, ' MiB', 0) + ' each)':<58}"
                f" {_fmt(snap['take_seconds'], ' s', 1) + ' / ' + _fmt(snap['restore_seconds'], ' s', 1):>14}"
            )
        lines.append(
            f"{'   4. peak RSS, full build (whole process tree)':<58} {_fmt(s['full_build_peak_rss_gib'], ' GiB'):>14}  < 4 GiB"
        )
        lines.append(
            f"{'   4. peak RSS, daily plain build':<58} {_fmt(s.get('plain_daily_peak_rss_gib'), ' GiB'):>14}  < 4 GiB"
        )
    inc = summary.get("incremental")
    if inc:
        lines.append(
            f"{'3. hourly arrival staging->facts: incremental (dbt warm)':<58} {_fmt(inc['incremental_seconds'], ' s', 1):>14}"
        )
        lines.append(f"{'   full refresh of the same':<58} {_fmt(inc['full_refresh_seconds'], ' s', 1):>14}")
        lines.append(
            f"{'   speedup, wall (same rows: ' + str(inc['same_rows']) + ')':<58} {_fmt(inc['speedup'], 'x', 1):>14}  >= 10x"
        )
        if inc.get("cli_speedup") is not None:
            lines.append(
                f"{'   dbt process (start + import, no warm-up): ' + _fmt(inc['cli_incremental_seconds'], ' s', 1) + ' vs ' + _fmt(inc['cli_full_refresh_seconds'], ' s', 1):<58} {_fmt(inc['cli_speedup'], 'x', 1):>14}"
            )
        if inc.get("model_speedup") is not None:
            lines.append(
                f"{'   models only (dbt run_results): ' + _fmt(inc['incremental_model_seconds'], ' s', 1) + ' vs ' + _fmt(inc['full_refresh_model_seconds'], ' s', 1):<58} {_fmt(inc['model_speedup'], 'x', 1):>14}  >= 10x"
            )
    for delivery, a in (summary.get("alerts") or {}).items():
        value = f"{_fmt(a['p50'], '')}/{_fmt(a['p95'], ' s')}"
        lines.append(
            f"{'5. alert latency p50/p95, ' + delivery + ' (' + str(a['received']) + '/' + str(a['failures']) + ')':<58} {value:>14}  p95 < 2 s"
        )
    g = summary.get("growth") or {}
    lines.append(
        f"{'6. growth exponent per 10x data (1 = linear), full build':<58} {str(g.get('full_build_seconds')):>14}"
    )
    lines.append(f"{'   daily plain build':<58} {str(g.get('plain_daily_seconds')):>14}")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted(summary["scales"].values(), key=lambda s: s["events"])
    x = [s["events"] for s in scales]
    fig, ax = plt.subplots(figsize=(8, 5))
    series = {"full build (plain dbt)": [s.get("full_build_seconds") for s in scales],
              "daily build (plain dbt)": [s.get("plain_daily_seconds") for s in scales]}  # fmt: skip
    variants = sorted({v for s in scales for v in s["airflow"]})
    for v in variants:
        series[f"daily build via Airflow ({v})"] = [
            (s["airflow"].get(v) or {}).get("seconds") if (s["airflow"].get(v) or {}).get("ok") else None
            for s in scales
        ]
    for label, ys in series.items():
        pts = [(a, b) for a, b in zip(x, ys, strict=False) if b]
        if pts:
            ax.plot(*zip(*pts, strict=False), marker="o", label=label)
    if x and series["full build (plain dbt)"][0]:
        y0 = series["full build (plain dbt)"][0]
        ax.plot(x, [y0 * xi / x[0] for xi in x], linestyle=":", color="grey", label="linear from the smallest")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("clickstream events")
    ax.set_ylabel("seconds")
    ax.set_title(f"VyaparBazaar build cost against data size ({(summary.get('machine') or {}).get('cpus')} cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, out_dir: Path) -> dict:
    summary = summarize(results)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out_dir / "table.txt").write_text(table(summary))
    try:
        plot(summary, out_dir / "cost_vs_size.png")
    except Exception as exc:  # noqa: BLE001
        (out_dir / "plot_error.txt").write_text(repr(exc))
    return summary


def merge(runs: list[dict]) -> dict:
    """Several runs as one report (e.g. the Airflow run and the dbt-only run, done side by side to save time).

    Per scale, an Airflow measurement stays with the plain build of its own run (the ratio is within one run);
    the full builds (growth, memory) come from the last run that has them for every scale."""
    merged: dict = {"machine": runs[0].get("machine"), "settings": runs[0].get("settings"), "scales": {}, "runs": []}
    for run in runs:
        merged["runs"].append({k: run.get(k) for k in ("started_at", "finished_at")})
        for key in ("parse", "incremental", "incremental_layers", "profile"):
            if run.get(key):
                merged[key] = run[key]
        for name, entry in run.get("scales", {}).items():
            target = merged["scales"].setdefault(name, {})
            airflow = entry.get("airflow") or {}
            if airflow.get("variants") or not (target.get("airflow") or {}).get("variants"):
                for key in ("plain_daily", "plain_daily_after"):
                    if key in entry:
                        target[key] = entry[key]
                if airflow.get("variants"):
                    target.setdefault("airflow", {})["variants"] = airflow["variants"]
                if airflow.get("floor"):
                    target.setdefault("airflow", {})["floor"] = airflow["floor"]
            if airflow.get("alerts"):
                target.setdefault("airflow", {}).setdefault("alerts", {}).update(airflow["alerts"])
            for key in ("scale", "events"):
                if key in entry:
                    target[key] = entry[key]
    # Full builds (growth, memory) all from one run: the one that built the most scales.
    widest = max(runs, key=lambda run: len(run.get("scales", {})))
    for name, entry in widest.get("scales", {}).items():
        if "full_build" in entry:
            merged["scales"][name]["full_build"] = entry["full_build"]
    return merged


if __name__ == "__main__":
    import sys

    out = Path(sys.argv[1])
    sources = [Path(a) for a in sys.argv[2:]] or [out]
    runs = [json.loads((folder / "results.json").read_text()) for folder in sources]
    out.mkdir(parents=True, exist_ok=True)
    write(runs[0] if len(runs) == 1 else merge(runs), out)
    print((out / "table.txt").read_text())
