"""`bumpdiff train | evaluate | sample | sweep | export`: every bad value ends in one line and exit code 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bumpdiff_core.config import ConfigError, config_from_overrides
from bumpdiff_core.runs.store import StoreError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"bumpdiff: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bumpdiff", description="Diffusion models learning 2D Gaussian bumps (Liang, Liu & Fiete 2024).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def data(sp):
        sp.add_argument("--data", default=None, metavar="PATH_OR_URL",
                        help="the data root: a folder or an object-store URL such as s3://bucket/prefix "
                             "(default: $BUMPDIFF_DATA, else ./data)")

    def runtime(sp):
        data(sp)
        sp.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
        sp.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
        sp.add_argument("--quiet", action="store_true", help="no progress bars")

    t = sub.add_parser("train", help="train and evaluate one configuration; prints the run directory last")
    t.add_argument("profile", help="tiny, quick, cpu32 or paper")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE")
    runtime(t)

    e = sub.add_parser("evaluate", help="(re)evaluate every checkpoint of a run")
    e.add_argument("run_dir")
    runtime(e)

    s = sub.add_parser("sample", help="write the last checkpoint's sample at (x, y) as an N x N PNG")
    s.add_argument("run_dir")
    s.add_argument("--x", type=float, required=True, help="column, in pixels")
    s.add_argument("--y", type=float, required=True, help="row, in pixels")
    s.add_argument("--out", required=True, help="output .png")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sampler", choices=["ddim", "ddpm"], default=None)
    runtime(s)

    w = sub.add_parser("sweep", help="train, evaluate and execute the notebooks of every run of a sweep")
    w.add_argument("profile", help="a sweep name (see bumpdiff_core.sweeps.definitions.SWEEPS)")
    w.add_argument("--scheduler", default=None, help="tcp://HOST:PORT of an existing Dask scheduler")
    w.add_argument("--workers", type=int, default=None, help="local Dask workers (default: cores)")
    w.add_argument("--serial", action="store_true", help="no Dask: run in this process")
    w.add_argument("--out", default=None, help="where executed notebooks go (default: <data>/notebooks, "
                                               "or ./bumpdiff-book/<sweep> when the data root is a URL)")
    data(w)

    r = sub.add_parser("report", help="a sweep's claims and runs from its finished runs (never trains); "
                                      "exit 3 when some runs are not finished")
    r.add_argument("sweep", help="a sweep name (see bumpdiff_core.sweeps.definitions.SWEEPS)")
    data(r)
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one strict JSON object instead of Markdown")
    fmt.add_argument("--markdown", action="store_true",
                     help="Markdown (the default), e.g. `bumpdiff report book-quick --markdown > RESULTS.md`")

    x = sub.add_parser("export", help="write a finished run's figure data (metrics, losses, embeddings) as CSV")
    x.add_argument("run_dir")
    x.add_argument("--out", required=True, help="output folder (created if needed)")
    data(x)
    return p


def _check_threads(args):
    if getattr(args, "threads", None) is not None and args.threads < 1:
        raise ConfigError("--threads", f"must be >= 1; got {args.threads}")


def cmd_train(args) -> int:
    config = config_from_overrides(args.profile, args.overrides)  # validates before anything is written
    _check_threads(args)
    from bumpdiff_core.execute.pipeline import ensure_run  # imports torch: only once the input is known to be good

    run = ensure_run(config, device=args.device, threads=args.threads, progress=not args.quiet)
    print(run.path)
    return 0


def cmd_evaluate(args) -> int:
    from bumpdiff_core.measure.evaluate import evaluate_run
    from bumpdiff_core.runs.store import Run
    from bumpdiff_core.learn.train import configure_determinism

    _check_threads(args)
    run = Run.open(args.run_dir)
    if not run.checkpoint_steps_on_disk():
        raise StoreError(f"{run.path}: has no checkpoints (train it first)")
    configure_determinism(args.threads)
    with run.lock():
        run.remove_stale_temps()
        # evaluation recomputes its own damaged caches, but never trusts damaged training output
        for path, problem in run.verify():
            if run.is_training_output(path):
                raise StoreError(f"{path}: {problem}; `bumpdiff train` with this run's config.json "
                                 "regenerates it")
        table = evaluate_run(run, device=args.device, progress=not args.quiet)
    print(table.to_string(index=False))
    return 0


def cmd_sample(args) -> int:
    import numpy as np
    import torch

    from bumpdiff_core.config import checkpoint_steps
    from bumpdiff_core.learn.diffusion import LinearSchedule, sample
    from bumpdiff_core.present.pngio import write_png
    from bumpdiff_core.runs.store import Run
    from bumpdiff_core.learn.train import configure_determinism, load_weights, pick_device

    run = Run.open(args.run_dir)
    n = run.config.image_size
    for name, v in (("--x", args.x), ("--y", args.y)):
        if not (0 <= v < n) or v != v:
            raise ConfigError(name, f"must be >= 0 and < image_size ({n}); got {v}")
    if not args.out.lower().endswith(".png"):
        raise ConfigError("--out", f"must be a .png file; got {args.out!r}")
    steps = run.checkpoint_steps_on_disk()
    if not steps:
        raise StoreError(f"{run.path}: has no checkpoints (train it first)")
    # a finished run samples its final checkpoint (missing or damaged: an error naming it);
    # a run still training, its newest one
    step = checkpoint_steps(run.config)[-1] if run.is_complete else steps[-1]
    configure_determinism(args.threads)
    device = pick_device(args.device)
    model = load_weights(run, step, device)
    xy = torch.tensor([[args.x, args.y]], dtype=torch.float32, device=device)
    c = run.config
    image, _ = sample(model, LinearSchedule.from_config(c), xy, [args.seed],
                      sampler=args.sampler or c.eval_sampler, steps=c.eval_sampler_steps)
    pixels = np.round((image[0, 0].cpu().numpy() + 1) * 127.5).astype(np.uint8)
    write_png(Path(args.out), pixels)
    print(args.out)
    return 0


def cmd_sweep(args) -> int:
    from bumpdiff_core.execute.sweep_run import run_sweep

    return run_sweep(args.profile, scheduler=args.scheduler, workers=args.workers, serial=args.serial,
                     out=args.out)


def cmd_export(args) -> int:
    from bumpdiff_core.present.export import ExportError, export_run
    from bumpdiff_core.runs.store import Run

    try:  # a missing, foreign or unfinished run folder is bad input: one line, exit 2
        run = Run.open(args.run_dir)
        if not run.is_complete:
            raise ExportError(f"{run.path}: run is not finished (no COMPLETE marker); "
                              "`bumpdiff train` with its config finishes it")
    except StoreError as e:
        print(f"bumpdiff: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in export_run(run, args.out):
        print(path)
    return 0


def cmd_report(args) -> int:
    from bumpdiff_core.present.report import sweep_report
    from bumpdiff_core.sweeps.definitions import get_sweep

    if get_sweep(args.sweep).search is not None:  # a scaling sweep: γ per model, not claims
        from bumpdiff_core.present.report_scaling import scaling_markdown, scaling_report, write_json

        result = scaling_report(args.sweep)
        print(write_json(result) if args.json else scaling_markdown(result))
        unfitted = [f["model"] for f in result["fits"] if "error" in f]
        if unfitted:
            print(f"bumpdiff: no fit yet for {', '.join(unfitted)} (see fits[].error)", file=sys.stderr)
        return 3 if unfitted else 0

    report = sweep_report(args.sweep)
    print(report.to_json() if args.json else report.to_markdown())
    if report.missing:
        print(f"bumpdiff: {len(report.missing)} run(s) of sweep {report.sweep} not finished "
              f"(listed as missing); `bumpdiff sweep {report.sweep}` computes them", file=sys.stderr)
    return report.exit_code


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "data", None):
        import os
        os.environ["BUMPDIFF_DATA"] = args.data  # kernels and workers inherit it
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
                "sweep": cmd_sweep, "report": cmd_report,
                "export": cmd_export}[args.command](args)
    except ConfigError as e:
        print(f"bumpdiff: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StoreError, FileNotFoundError, PermissionError) as e:
        print(f"bumpdiff: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. a full disk; store.atomic_write_bytes puts the path in e.filename
        where = f"{e.filename}: " if e.filename else ""
        print(f"bumpdiff: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bumpdiff: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
