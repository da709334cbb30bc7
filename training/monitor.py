"""`product-monitor`: the drift report and the retraining decision.

    product-monitor report --prometheus URL          # print and draw live vs. the reference
    product-monitor should-retrain --data CATALOG    # exit 0: retrain, 1: keep the champion

The reference is the champion's own (logged with its training run); the live side comes from
Prometheus or a prediction log. Exit codes: 0 report written / retrain, 1 keep the champion,
2 bad option, 3 unreadable catalog or log, 4 Prometheus or MLflow unreachable (5 refused).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.catalog import bundled_sample, file_sha256
from training.config import make_config, read_config_file
from training.drift_report import LEVELS, Comparison, Prometheus, compare, log_profile
from training.errors import DataError, TrainingError

log = logging.getLogger("product-monitor")
DEFAULT_SELECTOR = 'job="product-classifier"'


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str
    profile: dict[str, Any] | None
    data_sha256: str | None


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reason: str


def load_champion(tracking_uri: str | None, model_name: str) -> Champion | None:
    """The champion's version, reference profile and training-data hash (None: no champion)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training import registry, tracking

    uri = tracking.resolve_tracking_uri(tracking_uri)
    client = tracking.connect(uri)
    try:
        version = registry.current_champion(client, model_name)
        if version is None:
            return None
        run = client.get_run(str(version.run_id))
        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run.info.run_id,
                    artifact_path="monitoring/reference_profile.json",
                    dst_path=scratch,
                )
                profile = json.loads(Path(path).read_text("utf-8"))
            except (MlflowException, OSError):  # trained before reference profiles existed
                profile = None
    except MlflowException as error:
        raise tracking.as_tracking_error(error, f"reading the champion of {model_name}") from None
    sha = run.data.tags.get("data.sha256")
    return Champion(str(version.version), run.info.run_id, profile, sha)


def decide(champion: Champion | None, catalog_sha: str, drift: Comparison | None) -> Decision:
    """Retrain when there is something new to learn and live traffic has moved (or cannot tell)."""
    if champion is None:
        return Decision(True, "no champion yet")
    level = drift.level() if drift is not None else "unknown"
    if champion.data_sha256 == catalog_sha:
        advice = " add recent products to the catalog" if level in ("warning", "critical") else ""
        return Decision(
            False,
            f"the catalog is champion v{champion.version}'s training data "
            f"(sha256 {catalog_sha[:12]}); retraining would reproduce it; drift is {level}"
            + (f":{advice}" if advice else ""),
        )
    if level == "ok":
        return Decision(
            False,
            f"the catalog changed, but live traffic still matches champion v{champion.version}'s "
            "reference (drift below the warning level); --always trains anyway",
        )
    why = "no drift verdict (too little live traffic)" if level == "unknown" else f"drift {level}"
    return Decision(True, f"the catalog changed and {why}")


def live_profile(args: argparse.Namespace, champion: Champion) -> dict[str, Any] | None:
    if args.prediction_log is not None:
        reference = champion.profile or {}
        fields = list(reference.get("fill_rate", {}))
        return log_profile(args.prediction_log, fields, list(reference.get("text_length", {})))
    if args.prometheus is not None:
        return Prometheus(args.prometheus, args.selector, args.window).live_profile()
    return None


def format_report(champion: Champion, drift: Comparison, server: dict[str, float]) -> str:
    lines = [
        f"champion v{champion.version} (run {champion.run_id}); {drift.products} live products",
        f"{'kind':<12}{'live vs ref':>12}{'warning':>9}{'critical':>9}{'servers now':>13}",
    ]
    for kind, (warning, critical) in LEVELS.items():
        score = drift.scores.get(kind)
        shown = f"{score:.3f}" if score is not None else "-"
        now = f"{server[kind]:.3f}" if kind in server else "-"
        lines.append(f"{kind:<12}{shown:>12}{warning:>9}{critical:>9}{now:>13}")
    lines.append(f"level: {drift.level()}")
    return "\n".join(lines)


def write_report(
    folder: Path, champion: Champion, live: dict[str, Any], drift: Comparison, server: Any
) -> list[Path]:
    from training.profile import plot_profiles

    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "champion_version": champion.version,
        "run_id": champion.run_id,
        "level": drift.level(),
        "scores": drift.scores,
        "levels": LEVELS,
        "server_scores": server,
        "live": live,
        "reference": champion.profile,
    }
    paths = [folder / "drift_report.json", folder / "drift_report.png"]
    paths[0].write_text(json.dumps(report, indent=1))
    assert champion.profile is not None
    profiles = {"reference (holdout)": champion.profile, "live": live}
    plot_profiles(profiles, paths[1], f"Champion v{champion.version}: live vs. reference")
    return paths


# -- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="product-monitor",
        description="Compare live predictions with the champion's reference profile.",
        epilog="Exit codes: 0 report written / retrain, 1 keep the champion, 2 bad option, "
        "3 unreadable catalog or log, 4 Prometheus or MLflow unreachable, 5 MLflow refused.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="print and draw live vs. reference")
    retrain = commands.add_parser("should-retrain", help="exit 0 if a retraining is due, else 1")
    for command in (report, retrain):
        command.add_argument("--model-name", help="registered model (default: product-classifier)")
        command.add_argument("--tracking-uri", help="MLflow (default: MLFLOW_TRACKING_URI)")
        source = command.add_mutually_exclusive_group(required=command is report)
        source.add_argument("--prometheus", metavar="URL", help="Prometheus base URL")
        source.add_argument("--prediction-log", type=Path, metavar="FILE")
        command.add_argument(
            "--selector", default=DEFAULT_SELECTOR, help="PromQL label matchers of the servers"
        )
        command.add_argument("--window", default="6h", help="PromQL range of live traffic")
    report.add_argument("--out", type=Path, default=Path("drift-report"), help="folder")
    retrain.add_argument(
        "--config", type=Path, help="product-train's config file: data, model name, MLflow"
    )
    retrain.add_argument("--data", type=Path, help="the catalog to train on (else the config's)")
    retrain.add_argument("--always", action="store_true", help="decide to retrain regardless")
    return parser


def with_training_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill what the command line left out from product-train's config (the CronJob shares it
    with the training run), then from product-train's defaults."""
    path = getattr(args, "config", None)
    config = make_config(read_config_file(path) if path else {}, f"config file {path}")
    args.model_name = args.model_name or config.model_name
    args.tracking_uri = args.tracking_uri or config.tracking_uri
    if hasattr(args, "data"):
        args.data = args.data or (Path(config.data) if config.data else bundled_sample())
    return args


def run_report(args: argparse.Namespace) -> int:
    champion = load_champion(args.tracking_uri, args.model_name)
    if champion is None or champion.profile is None:
        what = "no champion" if champion is None else f"champion v{champion.version}"
        raise DataError(
            f"{args.model_name}: {what} with a reference profile (models trained before "
            "0.3 have none; retrain to get one)"
        )
    live = live_profile(args, champion)
    assert live is not None
    drift = compare(live, champion.profile)
    server = (
        Prometheus(args.prometheus, args.selector, args.window).server_scores()
        if (args.prometheus)
        else {}
    )
    print(format_report(champion, drift, server))
    for path in write_report(args.out, champion, live, drift, server):
        print(f"wrote {path}")
    return 0


def run_should_retrain(args: argparse.Namespace) -> int:
    if not args.data.is_file():
        raise DataError(f"{args.data}: no such catalog file (--data)")
    if args.always:
        decision = Decision(True, "--always given")
    else:
        champion = load_champion(args.tracking_uri, args.model_name)
        drift = None
        if champion is not None and champion.profile is not None:
            live = live_profile(args, champion)
            drift = compare(live, champion.profile) if live is not None else None
        decision = decide(champion, file_sha256(args.data), drift)
        if drift is not None:
            scores = ", ".join(f"{k}={v:.3f}" for k, v in drift.scores.items())
            log.info("drift over %d live products: %s", drift.products, scores)
    verdict = "retrain" if decision.retrain else "keep the champion"
    log.info("decision: %s: %s", verdict, decision.reason)
    return 0 if decision.retrain else 1


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    command = run_report if args.command == "report" else run_should_retrain
    try:
        sys.exit(command(with_training_config(args)))
    except TrainingError as error:
        print(f"product-monitor: {error}", file=sys.stderr)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
