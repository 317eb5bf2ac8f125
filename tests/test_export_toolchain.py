"""The model toolchain end to end on tiny generated corpora: train -> ONNX pack (FP32, INT8 Q/DQ,
FP16) -> verify -> the room loads the pack. Real PyTorch training, real ONNX Runtime sessions."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import corpora
import numpy as np
import onnx
import pytest
import torch

from edge.config.models import ModelsConfig, OnnxRuntimeBackendConfig
from edge.errors import ModelError
from edge.inference import FaceExpressionModel, create_engine, load_manifest
from edge.inference.pack import face_model_path, select_model
from export.cli import EXIT_FAILED, EXIT_REFUSED, main
from export.train.loop import load_checkpoint
from tests.conftest import sign_pack, signing_key

SPEECH = ["--model", "speech-cnn2d", "--model-option", "window_s=1.0", "--model-option", "n_mels=64"]
SPEECH += ["--model-option", "channels=[8,16]", "--learning-rate", "0.01", "--batch-size", "16"]


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("speech")
    data = corpora.ravdess(root / "ravdess", actors=range(1, 8))
    out = root / "run"
    args = ["train", *SPEECH, "--data", f"ravdess={data}", "--out", str(out), "--epochs", "25", "--patience", "25"]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def speech_pack(speech_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pack = tmp_path_factory.mktemp("pack") / "pack"
    args = ["onnx", "--checkpoint", str(speech_run / "best.pt"), "--pack", str(pack), "--name", "voice"]
    args += [
        "--calibration",
        str(speech_run),
        "--heldout",
        str(speech_run / "heldout.npz"),
        "--licence",
        "CC BY-NC-SA 4.0",
    ]
    assert main(args) == 0
    sign_pack(pack)
    return pack


def test_training_writes_checkpoints_report_and_sets(speech_run: Path) -> None:
    for name in ("best.pt", "last.pt", "report.json", "report.md", "confusion.png", "heldout.npz", "calibration.npz"):
        assert (speech_run / name).is_file(), name
    assert (speech_run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((speech_run / "report.json").read_text())
    split = report["split"]
    persons = {name: set(s["person_ids"]) for name, s in split.items()}
    assert persons["train"].isdisjoint(persons["test"]) and persons["val"].isdisjoint(persons["test"])
    assert sum(s["persons"] for s in split.values()) == 7
    test = report["test"]
    assert set(test) >= {"accuracy", "macro_f1", "kappa", "per_class", "confusion"}
    assert np.asarray(test["confusion"]).sum() == test["items"] == 16
    assert set(test["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
    # The generated classes are separable by pitch: far above chance (1/8) on unseen speakers.
    assert test["accuracy"] >= 0.5, test
    assert "| macro-F1 |" in (speech_run / "report.md").read_text()


def test_training_is_reproducible_with_a_seed(speech_run: Path, tmp_path: Path) -> None:
    data = speech_run.parent / "ravdess"
    args = ["train", *SPEECH, "--data", f"ravdess={data}", "--epochs", "3", "--patience", "3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a, _, _ = load_checkpoint(tmp_path / "a" / "last.pt")
    b, _, _ = load_checkpoint(tmp_path / "b" / "last.pt")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_training_resumes_from_the_last_checkpoint(speech_run: Path, tmp_path: Path) -> None:
    data = speech_run.parent / "ravdess"
    args = ["train", *SPEECH, "--data", f"ravdess={data}", "--out", str(tmp_path), "--patience", "9"]
    assert main([*args, "--epochs", "2"]) == 0
    assert main([*args, "--epochs", "4", "--resume"]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["epochs_run"] == 4


@pytest.mark.unit
def test_early_stopping_ends_training(speech_run: Path, tmp_path: Path) -> None:
    data = speech_run.parent / "ravdess"
    # A learning rate of ~0 never improves on the first epoch's score.
    args = ["train", *SPEECH, "--data", f"ravdess={data}", "--out", str(tmp_path), "--epochs", "50", "--patience", "2"]
    args[args.index("--learning-rate") + 1] = "1e-9"
    assert main(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["stopped_early"] and report["epochs_run"] == 3 and report["best_epoch"] == 1


def _ops(path: Path) -> list[onnx.NodeProto]:
    return list(onnx.load(str(path)).graph.node)


@pytest.mark.unit
def test_pack_holds_three_checked_variants(speech_pack: Path) -> None:
    index = json.loads((speech_pack / "pack.json").read_text())
    model = index["models"]["voice"]
    assert model["role"] == "speech" and set(model["variants"]) == {"fp32", "int8", "fp16"}
    assert len(index["files"]) == 6
    fp32 = json.loads((speech_pack / "voice" / "voice.fp32.json").read_text())
    assert fp32["input"]["name"] == "logmel" and fp32["input"]["shape"] == [None, 1, 64, 98]
    assert fp32["output"]["name"] == "probs" and fp32["extra_outputs"] == ["embedding"]
    check = fp32["export_check"]["torch_vs_onnx_fp32"]
    assert check["max_abs_error"] < 1e-4 and check["top1_agreement"] == 1.0 and check["samples"] == 64 + 16
    card = (speech_pack / "MODEL_CARD.md").read_text()
    assert "CC BY-NC-SA 4.0" in card and "Known limit" in card and "not verified" in card


@pytest.mark.unit
def test_onnx_has_named_io_and_a_dynamic_batch(speech_pack: Path) -> None:
    graph = onnx.load(str(speech_pack / "voice" / "voice.fp32.onnx")).graph
    assert [i.name for i in graph.input] == ["logmel"]
    assert [o.name for o in graph.output] == ["probs", "embedding"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.unit
def test_int8_is_explicit_qdq_with_per_channel_weights_and_float_softmax(speech_pack: Path) -> None:
    nodes = _ops(speech_pack / "voice" / "voice.int8.onnx")
    kinds = [n.op_type for n in nodes]
    assert kinds.count("QuantizeLinear") > 0 and kinds.count("DequantizeLinear") > kinds.count("QuantizeLinear")
    model = onnx.load(str(speech_pack / "voice" / "voice.int8.onnx"))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    per_channel = [n for n in nodes if n.op_type == "DequantizeLinear" and inits.get(n.input[1], np.zeros(1)).size > 1]
    assert per_channel, "weights should carry one scale per output channel"
    stored = {inits[n.input[0]].dtype for n in per_channel if n.input[0] in inits}
    assert stored == {np.dtype(np.int8), np.dtype(np.int32)}  # int8 weights, int32 biases
    producers = {o: n for n in nodes for o in n.output}
    softmax = next(n for n in nodes if n.op_type == "Softmax")
    assert producers[softmax.input[0]].op_type != "DequantizeLinear"  # softmax reads float, not a Q/DQ pair


@pytest.mark.unit
def test_fp16_has_half_weights_and_float_io(speech_pack: Path) -> None:
    model = onnx.load(str(speech_pack / "voice" / "voice.fp16.onnx"))
    types = {i.data_type for i in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types
    io = [*model.graph.input, *model.graph.output]
    assert all(t.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for t in io)


@pytest.mark.unit
def test_verify_writes_evidence_and_the_room_accepts_released_variants(
    speech_pack: Path, speech_run: Path, tmp_path: Path
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(speech_pack, pack)
    assert (
        main(
            [
                "verify",
                "--pack",
                str(pack),
                "--model",
                "voice",
                "--heldout",
                str(speech_run / "heldout.npz"),
                "--max-drop",
                "100",
            ]
        )
        == 0
    )
    sign_pack(pack)  # verify rewrote the index, which removed the signature
    for precision in ("fp32", "int8", "fp16"):
        manifest = json.loads((pack / "voice" / f"voice.{precision}.json").read_text())
        ver = manifest["verification"]
        assert ver["items"] == 16 and ver["labelled"] and 0 <= ver["accuracy"] <= 1
        assert 0 <= ver["top1_agreement_with_fp32"] <= 1 and ver["max_prob_diff_vs_fp32"] >= 0
        assert manifest["release"]["accepted"]
        assert select_model(pack, "speech", precision).name == f"voice.{precision}.onnx"
    fp16 = json.loads((pack / "voice" / "voice.fp16.json").read_text())["verification"]
    assert fp16["top1_agreement_with_fp32"] >= 0.9 and fp16["max_prob_diff_vs_fp32"] < 0.01
    assert "| int8 |" in (pack / "MODEL_CARD.md").read_text()


@pytest.mark.unit
def test_badly_calibrated_int8_is_refused_and_the_room_will_not_load_it(speech_run: Path, tmp_path: Path) -> None:
    # Calibration on near-silence squeezes every scale; real speech then saturates the int8 range.
    cal = tmp_path / "cal"
    cal.mkdir()
    with np.load(speech_run / "calibration.npz") as npz:
        silent = np.full_like(npz["x"], -100.0) + np.random.default_rng(0).normal(0, 0.01, npz["x"].shape).astype(
            np.float32
        )
    np.savez(cal / "calibration.npz", x=silent)
    pack = tmp_path / "pack"
    args = ["onnx", "--checkpoint", str(speech_run / "best.pt"), "--pack", str(pack), "--precision", "fp32", "int8"]
    assert main([*args, "--calibration", str(cal)]) == 0
    sign_pack(pack)
    with pytest.raises(ModelError, match="has not been verified against fp32"):
        select_model(pack, "speech", "int8")
    code = main(
        ["verify", "--pack", str(pack), "--model", "speech-cnn2d", "--heldout", str(speech_run / "heldout.npz")]
    )
    assert code == EXIT_REFUSED
    release = json.loads((pack / "speech-cnn2d" / "speech-cnn2d.int8.json").read_text())["release"]
    assert not release["accepted"] and "exceeds the bound of 1.0" in release["reason"]
    sign_pack(pack)
    with pytest.raises(ModelError, match="was refused at verification"):
        select_model(pack, "speech", "int8")
    assert select_model(pack, "speech", "fp32").is_file()


@pytest.mark.unit
def test_int8_without_calibration_data_is_refused(
    speech_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = ["onnx", "--checkpoint", str(speech_run / "best.pt"), "--pack", str(tmp_path / "p")]
    assert main([*base, "--precision", "fp32", "int8"]) == EXIT_FAILED
    assert "needs calibration data: pass --calibration export/int8/speech-cnn2d/" in caplog.text
    (tmp_path / "empty").mkdir()
    assert main([*base, "--calibration", str(tmp_path / "empty")]) == EXIT_FAILED
    assert "calibration.npz does not exist" in caplog.text
    assert not (tmp_path / "p" / "speech-cnn2d" / "speech-cnn2d.int8.onnx").exists()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "voice" / "voice.fp32.onnx").write_bytes(b"\x08\x07garbage"), "is corrupt or was replaced"),
        (lambda p: (p / "voice" / "voice.fp32.json").unlink(), "model pack file missing"),
        (lambda p: (p / "pack.json").write_text("{"), "pack.json changed since its signature was checked"),
        (lambda p: (p / "pack.json").unlink(), "no model pack at"),
        (lambda p: None, "has no face model"),
    ],
)
def test_damaged_packs_are_refused_before_loading(
    speech_pack: Path, tmp_path: Path, damage: object, message: str
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(speech_pack, pack)
    sign_pack(pack)
    damage(pack)  # type: ignore[operator]
    role = "face" if "face" in message else "speech"
    with pytest.raises(ModelError, match=message):
        select_model(pack, role, "fp32")


@pytest.mark.unit
def test_a_trained_face_model_runs_in_the_room_from_its_pack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = corpora.ckplus(tmp_path / "ck", subjects=range(5, 11))
    run = tmp_path / "run"
    args = ["train", "--model", "face-cnn", "--model-option", "size=48", "--model-option", "channels=[8,8,16,16]"]
    args += ["--model-option", "dense=32", "--data", f"ckplus={data}", "--out", str(run), "--epochs", "3"]
    assert main(args) == 0
    pack = tmp_path / "pack"
    assert main(["onnx", "--checkpoint", str(run / "best.pt"), "--pack", str(pack), "--precision", "fp32", "fp16"]) == 0
    assert re.search(
        r"fp32 vs PyTorch: max abs error \S+, top-1 agreement 1\.0000 over \d+ inputs", capsys.readouterr().out
    )
    keys = [signing_key()[1]]
    path = face_model_path(ModelsConfig(pack=sign_pack(pack), precision="fp32", trusted_keys=keys))
    engine = create_engine(path, load_manifest(path), [OnnxRuntimeBackendConfig()])
    model = FaceExpressionModel(engine)
    crops = [corpora.face(label, 48, np.random.default_rng(i)) for i, label in enumerate(("happy", "sad", "angry"))]
    probs = model.predict(crops)
    net, _, _ = load_checkpoint(run / "best.pt")
    with torch.no_grad():
        x = torch.from_numpy(np.stack(crops).astype(np.float32)[:, None] * (2 / 255) - 1)
        expected = torch.softmax(net(x), dim=1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    with pytest.raises(ModelError, match="has not been verified"):
        face_model_path(ModelsConfig(pack=pack, precision="fp16", trusted_keys=keys))


@pytest.mark.unit
def test_fusion_head_trains_on_arrays_and_exports_with_its_presence_mask(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, dims = 320, (6, 4)
    labels = rng.integers(0, 8, n)
    centres = rng.normal(0, 1, (8, sum(dims)))
    x = (centres[labels] + 0.3 * rng.normal(size=(n, sum(dims)))).astype(np.float32)
    present = (rng.uniform(size=(n, 2)) > 0.25).astype(np.float32)
    present[present.sum(1) == 0] = 1
    arrays = tmp_path / "paired.npz"
    np.savez(
        arrays,
        x=x,
        labels=np.array(corpora.PRODUCT)[labels],
        speakers=np.array([f"p{i % 10}" for i in range(n)]),
        present=present,
    )
    run = tmp_path / "run"
    args = [
        "train",
        "--model",
        "fusion-hybrid",
        "--model-option",
        'modalities=["face","voice"]',
        "--model-option",
        "dims=[6,4]",
    ]
    assert (
        main([*args, "--data", f"arrays={arrays}", "--out", str(run), "--epochs", "30", "--learning-rate", "0.01"]) == 0
    )
    assert json.loads((run / "report.json").read_text())["test"]["accuracy"] > 0.5
    pack = tmp_path / "pack"
    args = ["onnx", "--checkpoint", str(run / "best.pt"), "--pack", str(pack), "--calibration", str(run)]
    assert main([*args, "--heldout", str(run / "heldout.npz")]) == 0
    manifest = load_manifest(select_model(sign_pack(pack), "fusion", "fp32"))
    assert manifest.input.name == "features"
    assert [(e.name, e.shape, e.dtype) for e in manifest.extra_inputs] == [("present", [None, 2], "float32")]
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(pack / "fusion-hybrid" / "fusion-hybrid.int8.onnx"), providers=["CPUExecutionProvider"]
    )
    mask = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    probs, used = session.run(None, {"features": x[:3], "present": mask})
    np.testing.assert_array_equal(used, mask)
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-3)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "face-cnn", "--data", "ravdess", "--out", "x"], "--data expects CORPUS=PATH"),
        (
            ["train", "--model", "face-cnn", "--data", "ravdess=/nope", "--out", "x", "--epochs", "0"],
            "epochs: Input should be greater than or equal to 1",
        ),
        (
            ["train", "--model", "face-cnn", "--model-option", "colour=1", "--data", "ravdess=/n", "--out", "x"],
            "model.face-cnn.colour: Extra inputs",
        ),
        (
            ["train", "--model", "face-cnn", "--data", "ravdess=/nope", "--out", "{tmp}/r"],
            "ravdess data not found at /nope",
        ),
        (["onnx", "--checkpoint", "/nope/best.pt", "--pack", "{tmp}/p"], "checkpoint not found: /nope/best.pt"),
        (["verify", "--pack", "{tmp}", "--model", "m", "--heldout", "h.npz"], "has no model 'm'"),
    ],
)
def test_cli_refuses_bad_input_with_a_clear_message(
    args: list[str], message: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == EXIT_FAILED
    assert message in caplog.text


@pytest.mark.unit
def test_corrupt_checkpoint_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    assert main(["onnx", "--checkpoint", str(bad), "--pack", str(tmp_path / "p")]) == EXIT_FAILED
    assert "is unreadable" in caplog.text


FUSION_OPTIONS = {"modalities": ["face", "voice", "pulse"], "dims": [16, 8, 4]}


@pytest.mark.unit
@pytest.mark.parametrize(
    "raw",
    [
        {"architecture": "face-cnn", "size": 32, "channels": [4, 4, 8, 8], "dense": 16},
        {"architecture": "speech-cnn1d", "n_mels": 16, "n_mfcc": 8, "window_s": 0.5, "channels": [8, 8]},
        {"architecture": "speech-cnn2d", "n_mels": 16, "window_s": 0.5, "channels": [4, 8]},
        {"architecture": "landmark-mlp", "in_features": 20, "hidden": [16]},
        {"architecture": "rppg-cnn1d", "channels": [4, 8]},
        {"architecture": "fusion-late", **FUSION_OPTIONS},
        {"architecture": "fusion-early", **FUSION_OPTIONS},
        {"architecture": "fusion-hybrid", **FUSION_OPTIONS},
    ],
    ids=lambda raw: raw["architecture"],
)
def test_every_architecture_exports_in_three_precisions(raw: dict[str, object], tmp_path: Path) -> None:
    from export.models.registry import build_model, parse_spec, sample_shape
    from export.train.loop import save_checkpoint

    torch.manual_seed(0)
    spec = parse_spec(raw)
    net = build_model(spec).eval()
    checkpoint = save_checkpoint(tmp_path / "best.pt", net, spec, {"epoch": 1})
    rng = np.random.default_rng(0)
    cal = {"x": rng.normal(size=(32, *sample_shape(spec))).astype(np.float32)}
    if raw["architecture"].startswith("fusion"):  # type: ignore[union-attr]
        cal["present"] = (rng.uniform(size=(32, 3)) > 0.3).astype(np.float32)
    np.savez(tmp_path / "calibration.npz", **cal)
    pack = tmp_path / "pack"
    assert main(["onnx", "--checkpoint", str(checkpoint), "--pack", str(pack), "--calibration", str(tmp_path)]) == 0
    name = str(raw["architecture"])
    index = json.loads((pack / "pack.json").read_text())
    assert set(index["models"][name]["variants"]) == {"fp32", "int8", "fp16"}
    np.savez(tmp_path / "heldout.npz", **cal)
    assert (
        main(
            [
                "verify",
                "--pack",
                str(pack),
                "--model",
                name,
                "--heldout",
                str(tmp_path / "heldout.npz"),
                "--max-drop",
                "100",
            ]
        )
        == 0
    )
    fp16 = json.loads((pack / name / f"{name}.fp16.json").read_text())["verification"]
    assert fp16["max_prob_diff_vs_fp32"] < 0.02


@pytest.mark.unit
def test_the_rooms_voice_channel_runs_the_packs_speech_model(
    speech_pack: Path, speech_run: Path, tmp_path: Path
) -> None:
    """The room prepares audio exactly as training did (same output as the PyTorch checkpoint), and a
    window's voice result says the speech model gave it and is fused."""
    from datetime import datetime, timezone

    from clinic_signals.audio import LogMel
    from edge.analysis.summarize import WindowSummarizer
    from edge.channels.load import ChannelModels
    from edge.config.models import AppConfig, AudioConfig, RoomConfig, StorageConfig
    from edge.results import WindowInput

    models_config = ModelsConfig(pack=speech_pack, trusted_keys=[signing_key()[1]])
    # The corpus's "speech" is a tone with an emotion's contour (this tests the speech model's plumbing):
    # the energy rule hears it; the learned default rightly does not (tests/test_voice_activity.py).
    config = AppConfig(
        room=RoomConfig(site="s", room="r", device_id="d"),
        models=models_config,
        audio=AudioConfig(vad="energy"),
        storage=StorageConfig(state_dir=tmp_path),  # the room's record of pack releases goes here
    )
    models = ChannelModels.load(config)
    try:
        assert models.speech is not None and models.speech.name == "voice"
        rng = np.random.default_rng(5)
        pause = (0.001 * rng.normal(size=10_400)).astype(np.float32)  # 0.65 s on either side
        audio = np.concatenate([pause, corpora.tone("angry", 3, 1.2, 16_000, rng), pause])
        probs = models.speech.predict(audio)
        net, _, _ = load_checkpoint(speech_run / "best.pt")
        clip = audio[(audio.shape[0] - 16_000) // 2 :][:16_000]  # the model's 1 s, centred
        with torch.no_grad():
            x = torch.from_numpy(LogMel(16_000, 64)(clip).T[None, None].copy())
            expected = torch.softmax(net(x), dim=1).numpy()[0]
        np.testing.assert_allclose(probs, expected, atol=1e-4)

        window = WindowInput(0, 0.0, 0.0, 0.0, 2.5, (), audio, 16_000, False, True, 0.0)
        summarizer = WindowSummarizer("s", datetime.now(timezone.utc), config.vision, config.audio, models.session())
        (result,) = summarizer.summarize(window)
        assert result.voice is not None and result.voice.method == "speech_cnn"
        assert result.voice.quality == "good" and result.voice.probs is not None
        assert result.fused == ("voice",) and result.probs == result.voice.probs
        assert result.timing_ms["speech_model_ms"] > 0
    finally:
        models.close()

    off = config.model_copy(
        update={
            "channels": config.channels.model_copy(
                update={"voice": config.channels.voice.model_copy(update={"speech_model": "off"})}
            )
        }
    )
    acoustic = ChannelModels.load(off)
    assert acoustic.speech is None
    acoustic.close()


@pytest.mark.unit
def test_a_fusion_head_trained_on_channel_distributions_runs_in_the_room(tmp_path: Path) -> None:
    """fusion.method auto: the pack's hybrid head fuses face/voice/words distributions through the
    engine, any subset of them, and its Shapley values still sum to the output minus 1/8."""
    from clinic_signals.fusion import BASELINE, ChannelVote
    from edge.channels.load import ChannelModels
    from edge.config.models import AppConfig, RoomConfig
    from edge.results import GOOD

    rng = np.random.default_rng(1)
    n = 480
    labels = rng.integers(0, 8, n)
    blocks = []
    for _ in range(3):  # three channels, each a noisy distribution peaked at the true class
        logits = rng.normal(0, 1, (n, 8))
        logits[np.arange(n), labels] += 2.5
        blocks.append(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    present = (rng.uniform(size=(n, 3)) > 0.3).astype(np.float32)
    present[present.sum(1) == 0] = 1
    arrays = tmp_path / "channels.npz"
    np.savez(
        arrays,
        x=np.concatenate(blocks, axis=1).astype(np.float32),
        labels=np.array(corpora.PRODUCT)[labels],
        speakers=np.array([f"p{i % 12}" for i in range(n)]),
        present=present,
    )
    run = tmp_path / "run"
    args = ["train", "--model", "fusion-hybrid", "--model-option", 'modalities=["face","voice","words"]']
    args += ["--model-option", "dims=[8,8,8]", "--data", f"arrays={arrays}", "--out", str(run)]
    assert main([*args, "--epochs", "20", "--learning-rate", "0.01"]) == 0
    pack = tmp_path / "pack"
    assert main(["onnx", "--checkpoint", str(run / "best.pt"), "--pack", str(pack), "--precision", "fp32"]) == 0

    sign_pack(pack)
    models_config = ModelsConfig(pack=pack, trusted_keys=[signing_key()[1]])
    config = AppConfig(room=RoomConfig(site="s", room="r", device_id="d"), models=models_config)
    models = ChannelModels.load(config)
    try:
        assert models.head is not None and models.head.modalities == ["face", "voice", "words"]
        fusion = models.session().fusion
        happy = tuple(0.86 if c == "happy" else 0.02 for c in corpora.PRODUCT)
        sad = tuple(0.86 if c == "sad" else 0.02 for c in corpora.PRODUCT)
        for votes in (
            [ChannelVote("face", happy, GOOD), ChannelVote("voice", happy, GOOD), ChannelVote("words", sad, GOOD)],
            [ChannelVote("face", sad, GOOD)],
        ):
            result = fusion(votes)
            assert result.method == "head" and result.probs is not None
            best = int(np.argmax(result.probs))
            assert sum(result.contributions.values()) == pytest.approx(result.probs[best] - BASELINE, abs=1e-4)
        assert fusion([ChannelVote("face", sad, GOOD)]).label == "sad"
    finally:
        models.close()


@pytest.mark.unit
@pytest.mark.parametrize(("min_bytes", "external"), [(1000, True), (2**20, False)])
def test_a_large_models_weights_go_beside_it_and_the_outputs_stay_the_same(
    tmp_path: Path, min_bytes: int, external: bool
) -> None:
    import onnxruntime as ort

    from export.onnx_export import externalize_weights

    rng = np.random.default_rng(0)
    weight = onnx.numpy_helper.from_array(rng.standard_normal((64, 64)).astype(np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])],
        [weight],
    )
    path = tmp_path / "m.fp32.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path))
    x = {"x": rng.standard_normal((1, 64)).astype(np.float32)}
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]
    weights = tmp_path / "m.fp32.onnx.data"
    weights.write_bytes(b"stale")  # a weights file of an earlier export is replaced or removed
    assert (externalize_weights(path, min_bytes) is not None) == external
    assert weights.is_file() == external
    if external:  # whoever may read the graph may read its weights (a room's service user)
        assert weights.stat().st_mode & 0o777 == path.stat().st_mode & 0o777
    assert (path.stat().st_size < 64 * 64 * 4) == external
    after = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_array_equal(before, after)


def _matmul_graph(path: Path, *, constant_weight: bool) -> Path:
    """x (N, 64) @ W (64, 48): W an initializer, or a second input (nothing to quantize ahead of time)."""
    rng = np.random.default_rng(3)
    weight = onnx.numpy_helper.from_array(rng.normal(0, 0.1, (64, 48)).astype(np.float32), "w")
    inputs = [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 64])]
    if not constant_weight:
        inputs.append(onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [64, 48]))
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        inputs,
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 48])],
        initializer=[weight] if constant_weight else [],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


@pytest.mark.unit
@pytest.mark.parametrize("constant_weight", [True, False])
def test_weight_only_int8_quantizes_constant_matrices_or_says_there_are_none(
    tmp_path: Path, constant_weight: bool
) -> None:
    """A constant weight becomes blocks of int8 with float activations, within rounding of FP32; a
    graph whose products have no constant weight is refused by name instead of copied unchanged."""
    from export.errors import ExportError
    from export.pack import onnx_outputs
    from export.precision import quantize_weights_int8

    fp32 = _matmul_graph(tmp_path / "m.onnx", constant_weight=constant_weight)
    out = tmp_path / "m.int8.onnx"
    if not constant_weight:
        with pytest.raises(ExportError, match=r"m\.onnx has no matrix product with constant weights"):
            quantize_weights_int8(fp32, out)
        assert not out.exists()
        return
    quantize_weights_int8(fp32, out)
    assert [n.op_type for n in onnx.load(str(out)).graph.node] == ["MatMulNBits"]
    x = {"x": np.random.default_rng(4).normal(0, 1, (32, 64)).astype(np.float32)}
    reference, quantized = onnx_outputs(fp32, x), onnx_outputs(out, x)
    assert 0 < np.max(np.abs(reference - quantized)) < 0.01 * np.max(np.abs(reference))
