"""Person search with a trained detector (protocol ``detector-fine-tune``): torchvision Faster R-CNN on the
backbone's dense map plus an OIM re-identification head, trained end to end on the train frames, then
scored on real detections by the SeqNet port (:func:`plipbench.metrics.evaluate_cuhk_sysu` /
:func:`~plipbench.metrics.evaluate_prw`).

It is GPU-sized work (SeqNet: batch 5 at 900-1500 px, 20 epochs); on a CPU only a smoke run on the synthetic
twins is practical. What it is, after SeqNet (``../shared/reference/more-tasks.md`` §1.6):

- **Detector.** ``torchvision.models.detection.FasterRCNN`` with one feature map: the backbone's dense map
  (:func:`plipbench.models.dense.dense_maps`, option ``layers``; its stride-16/32 stage, as SeqNet's RPN runs
  on res4), an RPN with anchors of sizes 32-512 and ratios 0.5/1/2 (SeqNet's), ``MultiScaleRoIAlign`` 7 x 7 and
  torchvision's two-layer MLP box head (SeqNet uses a res5 head and a second, sequential box head: left out),
  two classes (background, person). Input: ``GeneralizedRCNNTransform(min_size, max_size)`` with the
  backbone's own mean and std; the only augmentation is a horizontal flip (SeqNet's), drawn per
  ``(seed, epoch, frame)``.
- **Re-identification head.** A 256-d embedding (``embedding_dim``: Linear + BatchNorm1d on the box head's
  feature, L2-normalised) of the ground-truth boxes' RoI features, trained with the OIM loss (Xiao et al.
  2017): a lookup table of the labelled training identities updated with momentum ``oim_momentum`` (0.5), a
  circular queue of ``oim_queue_size`` unlabelled-person features (5000 for CUHK-SYSU in SeqNet, 500 for
  PRW), cosine logits scaled by ``oim_scalar`` (30), unlabelled boxes only as queue negatives. SeqNet's
  norm-aware embedding (NAE) is left out.
- **Training.** SGD (``lr`` 0.003, momentum 0.9, weight decay 5e-4), a linear warm-up over the first epoch from
  factor 1/1000, lr x 0.1 at ``milestones`` (epoch 16 of 20 in SeqNet), gradient norm clipped at 10, batch
  ``batch_size`` frames; the loss is the sum of the RPN's two, the box head's two and OIM. Through the shared
  fine-tune loop, so ``--resume``, the curve and DDP come with it.
- **Test.** Each gallery frame's detections (score threshold ``det_thresh`` of the metric, NMS 0.4, at most
  100), each embedded from its own RoI; a query is embedded from its ground-truth box in its own frame (SeqNet's
  query path). Scored by the SeqNet port with those detections and scores; with ``cbgm`` the query's context
  is the detections of its own frame.
- **Selection.** The last epoch (no val split in either dataset).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from plipbench.errors import ConfigError, DataError
from plipbench.evaluation.protocols.options import ProtocolOptions

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from plipbench.evaluation.protocols.base import ProtocolContext, ProtocolOutput


class DetectorFineTuneOptions(ProtocolOptions):
    """Person search with a trained Faster R-CNN + OIM head on the backbone (SeqNet-style; GPU-sized)."""

    epochs: int = Field(20, ge=1, description="SeqNet: 20 on CUHK-SYSU, 18 on PRW")
    milestones: list[int] = Field([16], json_schema_extra={"expects": "a list of epochs (lr x 0.1 after each)"})
    lr: float = Field(0.003, gt=0, description="SGD, momentum 0.9")
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(5, ge=1, description="frames per step")
    min_size: int = Field(900, ge=32, description="GeneralizedRCNNTransform; SeqNet 900")
    max_size: int = Field(1500, ge=32, description="SeqNet 1500")
    layers: list[int] = Field([-1], min_length=1, json_schema_extra={"expects": "a non-empty list of stage indices"})
    embedding_dim: int = Field(256, ge=2)
    oim_scalar: float = Field(30.0, gt=0)
    oim_momentum: float = Field(0.5, ge=0, lt=1)
    oim_queue_size: int = Field(5000, ge=1, description="SeqNet: 5000 CUHK-SYSU, 500 PRW")
    clip_grad_norm: float = Field(10.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    num_workers: int = Field(0, ge=0)


# -- the model --------------------------------------------------------------------------------------------
def _dense_body(backbone: Any, layers: list[int]) -> Any:
    """The backbone as a torchvision detection body: ``forward(x) -> {"0": map}`` with ``out_channels``."""
    import torch

    from plipbench.models.dense import dense_maps, dense_support

    why = dense_support(backbone)
    if why is not None:
        raise ConfigError(f"backbone {backbone.name}: the detector fine-tune needs a dense feature map: {why}")

    class DenseBody(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = backbone.module
            h, w = backbone.image_transform.size
            # a scene is not person-sized: the map must come at any input size (a ViT with a fixed position
            # embedding does not), so probe at another size than the native one
            probe = torch.zeros(1, 3, h + 32, 2 * w + 32, device=backbone.device)
            was = self.body.training
            self.body.eval()
            try:
                with torch.no_grad():
                    self.out_channels = int(dense_maps(backbone, probe, layers).shape[1])
            except (RuntimeError, ValueError, AssertionError) as err:
                raise ConfigError(f"backbone {backbone.name}: the detector fine-tune needs its dense map at scene "
                                  f"sizes, but it fails at {h + 32}x{2 * w + 32} (native {h}x{w}): "
                                  f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
            finally:
                self.body.train(was)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"0": dense_maps(backbone, x, layers)}

    return DenseBody()


class OIMLoss:
    """Online instance matching (Xiao et al. 2017, as in SeqNet's ``oim.py``): cosine logits against a lookup
    table (one row per labelled identity) and a circular queue of unlabelled features, times ``scalar``;
    cross-entropy on the labelled boxes; after the loss the table rows move to ``momentum * row + (1 -
    momentum) * feature`` (renormalised) and unlabelled features enter the queue. The table and queue are
    buffers of ``module`` (checkpointed with it)."""

    def __init__(self, module: Any, num_pids: int, queue_size: int, dim: int, scalar: float, momentum: float
                 ) -> None:
        import torch

        module.register_buffer("oim_lut", torch.zeros(num_pids, dim))
        module.register_buffer("oim_queue", torch.zeros(queue_size, dim))
        module.register_buffer("oim_head", torch.zeros((), dtype=torch.long))
        self.module, self.num_pids, self.scalar, self.momentum = module, num_pids, scalar, momentum

    def __call__(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        m = self.module
        logits = self.scalar * features @ torch.cat([m.oim_lut, m.oim_queue]).t()
        labelled = pids >= 0
        loss = (F.cross_entropy(logits[labelled], pids[labelled]) if bool(labelled.any())
                else logits.sum() * 0.0)
        with torch.no_grad():
            detached = features.detach()
            for feature, pid in zip(detached[labelled], pids[labelled].tolist(), strict=True):
                row = self.momentum * m.oim_lut[pid] + (1 - self.momentum) * feature
                m.oim_lut[pid] = row / row.norm().clamp_min(1e-12)
            for feature in detached[~labelled]:
                m.oim_queue[int(m.oim_head)] = feature
                m.oim_head.fill_((int(m.oim_head) + 1) % m.oim_queue.shape[0])
        return loss


def _build(backbone: Any, options: dict[str, Any], num_pids: int, device: str) -> tuple[Any, Any, Any]:
    """``(net, detector, oim)``: ``net`` holds the detector and the embedding head (one module to train)."""
    import torch
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    spec = backbone.image_transform
    detector = FasterRCNN(
        _dense_body(backbone, options["layers"]), num_classes=2,
        min_size=options["min_size"], max_size=options["max_size"],
        image_mean=list(spec.mean), image_std=list(spec.std),
        rpn_anchor_generator=AnchorGenerator(sizes=((32, 64, 128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2),
        rpn_post_nms_top_n_test=300, box_nms_thresh=0.4, box_score_thresh=0.0, box_detections_per_img=100,
    )  # fmt: skip
    representation = detector.roi_heads.box_head.fc7.out_features
    net = torch.nn.Module()
    net.detector = detector
    net.embedding = torch.nn.Sequential(torch.nn.Linear(representation, options["embedding_dim"]),
                                        torch.nn.BatchNorm1d(options["embedding_dim"]))
    oim = OIMLoss(net, num_pids, options["oim_queue_size"], options["embedding_dim"], options["oim_scalar"],
                  options["oim_momentum"])
    return net.to(device), detector, oim


def _embed(net: Any, features: dict[str, torch.Tensor], boxes: list[torch.Tensor], sizes: list[tuple[int, int]]
           ) -> torch.Tensor:
    import torch.nn.functional as F

    heads = net.detector.roi_heads
    pooled = heads.box_head(heads.box_roi_pool(features, boxes, sizes))
    return F.normalize(net.embedding(pooled), dim=1)


# -- data -------------------------------------------------------------------------------------------------
class SceneFrames:
    """Training frames with their boxes and pids (labelled pids relabelled 0..C-1, unlabelled -1), flipped
    horizontally with probability 0.5 per ``(seed, epoch, index)``."""

    def __init__(self, scenes: list[Any], pid_index: dict[int, int], seed: int) -> None:
        self.scenes, self.pid_index, self.seed, self.epoch = scenes, pid_index, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        import numpy as np
        import torch

        scene = self.scenes[index]
        image = _load_frame(scene.image_path)
        boxes = torch.as_tensor(np.asarray(scene.boxes, dtype=np.float32).reshape(-1, 4))
        pids = torch.as_tensor([self.pid_index.get(int(p), -1) for p in scene.pids], dtype=torch.long)
        if np.random.default_rng([self.seed, self.epoch, index]).random() < 0.5:
            width = image.shape[-1]
            image = image.flip(-1)
            boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
        return image, {"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.long), "pids": pids}


def _load_frame(path: Any) -> torch.Tensor:
    import numpy as np
    import torch
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise DataError(path, f"cannot read the frame: {err}") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _collate(batch: list[Any]) -> tuple[list[Any], list[Any]]:
    return [b[0] for b in batch], [b[1] for b in batch]


# -- the protocol -----------------------------------------------------------------------------------------
def detector_fine_tune(ctx: ProtocolContext) -> ProtocolOutput:
    """See the module docstring."""
    import numpy as np
    import torch

    from plipbench.evaluation.protocols._training import Stopwatch, resolve_options, seeded, training_copy
    from plipbench.evaluation.protocols.loop import fine_tune_loop
    from plipbench.evaluation.protocols.person_search import check_search_inputs, score_search
    from plipbench.evaluation.protocols.samplers import RandomBatchSampler

    options = resolve_options(ctx, DetectorFineTuneOptions)
    metric = check_search_inputs(ctx)
    data = ctx.data.target
    if not data.train:
        raise DataError(data.root, f"task {ctx.task.name}: the detector fine-tune needs train frames; the train "
                                   "split is empty")
    if not data.gallery or not data.queries:
        raise DataError(data.root, f"task {ctx.task.name}: the {'gallery' if not data.gallery else 'query'} split "
                                   "is empty")
    device, clock = ctx.device, Stopwatch()
    labelled = sorted({int(p) for s in data.train for p in s.pids if p >= 0})
    pid_index = {pid: i for i, pid in enumerate(labelled)}
    encoder = training_copy(ctx.backbone, device)
    with seeded(ctx.seed, device):
        net, detector, oim = _build(encoder, options, len(labelled), device)
    dataset = SceneFrames(list(data.train), pid_index, ctx.seed)
    sampler = RandomBatchSampler(len(dataset), options["batch_size"], seed=ctx.seed)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=options["num_workers"],
                                         collate_fn=_collate, generator=torch.Generator().manual_seed(0))
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=options["lr"], momentum=0.9, weight_decay=options["weight_decay"])
    warmup = max(1, len(sampler))
    milestones = sorted(m * len(sampler) for m in options["milestones"])

    def factor(step: int) -> float:  # per step: SeqNet's warm-up over the first epoch, then x0.1 per milestone
        if step < warmup:
            alpha = step / warmup
            return 1e-3 * (1 - alpha) + alpha
        return 0.1 ** sum(step >= m for m in milestones)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def train_step(batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        images, targets = batch
        images = [i.to(device) for i in images]
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        transformed, targets_t = detector.transform(images, targets)
        features = detector.backbone(transformed.tensors)
        proposals, rpn_losses = detector.rpn(transformed, features, targets_t)
        _, box_losses = detector.roi_heads(features, proposals, transformed.image_sizes, targets_t)
        embeddings = _embed(net, features, [t["boxes"] for t in targets_t], transformed.image_sizes)
        oim_loss = oim(embeddings, torch.cat([t["pids"] for t in targets_t]))
        parts = {"rpn_cls": rpn_losses["loss_objectness"], "rpn_box": rpn_losses["loss_rpn_box_reg"],
                 "det_cls": box_losses["loss_classifier"], "det_box": box_losses["loss_box_reg"], "oim": oim_loss}
        return sum(parts.values()), parts, 1

    with clock("train_s"), seeded(ctx.seed + 1, device):
        record = fine_tune_loop(loader, sampler, dataset, optimizer, scheduler, epochs=options["epochs"],
                                max_steps=options["max_steps"], train_modules=[net], step=train_step,
                                clip_grad_norm=options["clip_grad_norm"], checkpoint=ctx.checkpoint,
                                progress=ctx.progress, device=device, label="detector fine-tune")
    net.eval()
    with clock("test_s"), torch.inference_mode():
        gallery = [_detect(net, detector, s.image_path, device) for s in data.gallery]
        queries = np.concatenate([_embed_box(net, detector, q.image_path, q.box, device) for q in data.queries])
    from plipbench.metrics.person_search import Detections

    detections = [Detections(boxes, scores, feats) for boxes, scores, feats in gallery]
    context = None
    if metric["cbgm"]:  # the query first, then its frame's detections (SeqNet's CBGM context)
        with torch.inference_mode():
            context = [np.concatenate([f[None], _detect(net, detector, q.image_path, device)[2]])
                       for q, f in zip(data.queries, queries, strict=True)]
    with clock("score_s"):
        output = score_search(ctx, metric, queries, detections, context)
    kept = sum(int((d.scores >= metric["det_thresh"]).sum()) for d in detections)
    output.details.update(
        selection="last-epoch", selected_epoch=record.selected_epoch, steps=record.steps, curve=record.curve,
        train_loss=[{k: round(v, 6) for k, v in e.items()} for e in record.losses], num_train_frames=len(data.train),
        num_train_identities=len(labelled), gallery_detections=sum(len(d.scores) for d in detections),
        gallery_detections_kept=kept,
        left_out=["SeqNet's res5 box head and its second, sequential box head", "norm-aware embedding (NAE)"],
    )  # fmt: skip
    output.options = dict(options) | {"detections": "trained Faster R-CNN on the backbone's dense map",
                                      "det_thresh": float(metric["det_thresh"]), "cbgm": bool(metric["cbgm"])}
    output.timings = clock.timings
    output.zero_shot = False
    return output


def _detect(net: Any, detector: Any, path: Any, device: str) -> tuple[Any, Any, Any]:
    """One gallery frame: ``(boxes in the frame's pixels, scores, L2-normalised embeddings)``."""
    image = _load_frame(path).to(device)
    transformed, _ = detector.transform([image])
    features = detector.backbone(transformed.tensors)
    proposals, _ = detector.rpn(transformed, features)
    found, _ = detector.roi_heads(features, proposals, transformed.image_sizes)
    boxes = found[0]["boxes"]
    embeddings = _embed(net, features, [boxes], transformed.image_sizes)
    original = detector.transform.postprocess(found, transformed.image_sizes, [tuple(image.shape[-2:])])[0]["boxes"]
    return (original.cpu().numpy().astype("float64"), found[0]["scores"].cpu().numpy().astype("float64"),
            embeddings.cpu().numpy().astype("float32"))


def _embed_box(net: Any, detector: Any, path: Any, box: Any, device: str) -> Any:
    """A query's embedding from its ground-truth box in its own frame."""
    import torch

    image = _load_frame(path).to(device)
    target = {"boxes": torch.as_tensor(box, dtype=torch.float32).reshape(1, 4).to(device),
              "labels": torch.ones(1, dtype=torch.long, device=device)}
    transformed, targets = detector.transform([image], [target])
    features = detector.backbone(transformed.tensors)
    return _embed(net, features, [targets[0]["boxes"]], transformed.image_sizes).cpu().numpy().astype("float32")
