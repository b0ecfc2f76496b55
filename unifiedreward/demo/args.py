"""Flags of ``python -m unifiedreward.demo`` (:class:`DemoArguments`) and their resolved defaults.

The training schedule is fixed in steps (``--captioning_steps``, ``--judging_steps``), so every machine trains the
same model; ``--train_minutes`` is an explicit opt-in time cap (then the result depends on the machine's speed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DEFAULTS", "QUICK", "DemoArguments", "model_size", "resolve"]


@dataclass
class DemoArguments:
    """Flags of ``python -m unifiedreward.demo`` (``--config file.yaml`` sets defaults)."""

    output_dir: str = field(default="outputs/demo", metadata={"help": "Folder for everything the demo writes."})
    quick: bool = field(
        default=False,
        metadata={
            "help": "Plumbing check: a tiny world (8 records per task and mode, 8 held-out items per benchmark), a "
            "few training steps; finishes in well under a minute. Explicit flags still override its sizes."
        },
    )
    only_data: bool = field(
        default=False, metadata={"help": "Write the world (training records and held-out files) and stop."}
    )
    scale: float = field(
        default=1.0,
        metadata={
            "help": "Multiply the numbers of training records and held-out items (e.g. 10 for a stress / "
            "regression set); the world itself (seed, sizes) is unchanged."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the world, the model's random weights and training."})
    num_train: int | None = field(
        default=None,
        metadata={"help": "Training records per task x mode (default 1500; --quick 8), before --scale."},
    )
    num_eval: int | None = field(
        default=None,
        metadata={"help": "Held-out pairs per benchmark (default 160; --quick 8), before --scale."},
    )
    num_eval_point: int | None = field(
        default=None,
        metadata={"help": "Held-out point-score requests per task (default 80; --quick 4), before --scale."},
    )
    difficulty: str = field(
        default="color",
        metadata={
            "help": "What tells the candidates of a pair apart (unifiedreward.synth.DifficultyMix.preset): 'color' "
            "(the colour of a scene, the start or end colour of a clip; questions about colours), which a tiny "
            "model trained from scratch on a CPU learns in minutes; 'full' (colour, shape, count, position, motion "
            "direction), which needs far more training (see docs/demo.md).",
            "choices": ["color", "full"],
        },
    )
    image_size: int = field(
        default=84, metadata={"help": "Side of scene images in pixels (84 = 9 image tokens; at least 48)."}
    )
    video_size: int = field(default=56, metadata={"help": "Side of video frames in pixels (even)."})
    num_frames: int = field(default=4, metadata={"help": "Frames per video (all are used in training and eval)."})
    arch: str = field(
        default="qwen2_vl",
        metadata={"help": "Model architecture: qwen2_vl or qwen2_5_vl.", "choices": ["qwen2_vl", "qwen2_5_vl"]},
    )
    hidden_size: int = field(default=128, metadata={"help": "Language model width."})
    num_layers: int = field(default=4, metadata={"help": "Language model layers."})
    vision_depth: int = field(default=4, metadata={"help": "Vision tower layers."})
    vision_size: int = field(default=64, metadata={"help": "Vision tower width."})
    reasoning: bool = field(
        default=True,
        metadata={
            "help": "Explained answers: each training answer starts with the element checklist of the point-score "
            "template ('red (color): 0, ...') before the verdict or score; pair ranks are then judged by generating "
            "and parsing (--scoring generate). False: verdict-only answers, judged from answer probabilities."
        },
    )
    num_captions: int | None = field(
        default=None,
        metadata={
            "help": "Auxiliary captioning records per kind (image, image pair, video, video pair; default 750; "
            "--quick 4), before --scale. 0: none."
        },
    )
    captioning_steps: int | None = field(
        default=None,
        metadata={
            "help": "Training stage 1: steps on the captioning records only (default 2600; --quick 4; 0: one stage "
            "on the whole mixture)."
        },
    )
    judging_steps: int | None = field(
        default=None,
        metadata={
            "help": "Training stage 2: steps on the whole mixture, from stage 1's weights (default 9300; --quick 4)."
        },
    )
    restart_steps: int | None = field(
        default=None,
        metadata={
            "help": "Training stage 3: steps on the whole mixture from stage 2's weights with a fresh optimizer, "
            "another seed and data order, warm-up and its own cooldown (default 2000; --quick 0; 0: none). A run "
            "that stalls before the judging transition passes it after such a restart (docs/demo.md, E3)."
        },
    )
    train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Opt-in time cap on training (default: none, the step schedule alone decides, so every machine "
            "trains the same model). With a cap each stage also stops after its share of the minutes (in proportion "
            "to its steps), and the cooldown follows the time instead of the steps."
        },
    )
    cooldown: float = field(
        default=0.2,
        metadata={
            "help": "The last fraction of stage 2 decays the learning rate linearly to 0 (warmup-stable-decay; with "
            "--train_minutes: the last fraction of stage 2's time). 0: no cooldown."
        },
    )
    batch_size: int | None = field(default=None, metadata={"help": "Training batch size (default 8; --quick 4)."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_steps: float = field(
        default=100, metadata={"help": "Linear warmup steps per stage (a value < 1 is a ratio)."}
    )
    dataloader_num_workers: int = field(
        default=1, metadata={"help": "DataLoader worker processes decoding media while the model trains."}
    )
    sample_cache: bool = field(
        default=True,
        metadata={
            "help": "Pre-encode each training sample once (the SFT entry point's sample cache, under "
            "output_dir/cache) when the entry point offers one."
        },
    )
    eval_batch_size: int = field(default=32, metadata={"help": "Prompts per forward pass when judging."})
    max_new_tokens: int = field(
        default=72, metadata={"help": "Answer length cap when judging (explained answers are ~50 tokens)."}
    )
    num_examples: int = field(default=2, metadata={"help": "Example judgments shown per task."})
    plots: bool = field(default=True, metadata={"help": "Write loss.png, accuracy.png and examples.png."})
    # the closed loop (unifiedreward.demo.policy_loop)
    policy_loop: bool = field(
        default=True,
        metadata={
            "help": "After the reward-model stage, run the closed loop: a policy VLM answers colour questions, "
            "infer+sift.py picks DPO pairs from its samples with the trained reward model, DPO trains the policy, "
            "and its held-out accuracy is compared with ground-truth and random pairs (docs/demo.md)."
        },
    )
    loop_only: bool = field(
        default=False,
        metadata={
            "help": "Run only the closed loop, on a finished run's output_dir (its model/trained and "
            "model/stage1_captioning); its results are merged into results.json / results.md."
        },
    )
    loop_task: str = field(
        default="image_understanding",
        metadata={
            "help": "What the policy answers: colour questions about scenes (image_understanding) or the start / "
            "end colour of clips (video_understanding).",
            "choices": ["image_understanding", "video_understanding"],
        },
    )
    loop_num_policy: int | None = field(
        default=None, metadata={"help": "Closed loop: SFT records of the policy (default 600; --quick 8)."}
    )
    loop_num_sift: int | None = field(
        default=None,
        metadata={"help": "Closed loop: questions sampled and sifted into pairs (default 300; --quick 6)."},
    )
    loop_num_heldout: int | None = field(
        default=None, metadata={"help": "Closed loop: held-out questions of the accuracy (default 300; --quick 6)."}
    )
    loop_policy_steps: int | None = field(
        default=None,
        metadata={
            "help": "Closed loop: SFT steps of the policy from the captioning-stage weights (default 300; --quick 2)."
        },
    )
    loop_policy_noise: float = field(
        default=0.6,
        metadata={
            "help": "Closed loop: fraction of the policy's SFT answers that name a systematically confused colour "
            "(the next colour of the world's list), so the policy errs like a hallucinating VLM: its greedy answer "
            "is often wrong while its samples often hold the right one."
        },
    )
    loop_num_candidates: int = field(default=4, metadata={"help": "Closed loop: answers sampled per question."})
    loop_temperature: float = field(default=0.7, metadata={"help": "Closed loop: the policy's sampling temperature."})
    loop_strategy: str = field(
        default="tournament",
        metadata={
            "help": "Closed loop: the sifting strategy of infer+sift.py (docs/preference.md).",
            "choices": ["upstream", "tournament", "pointwise"],
        },
    )
    loop_dpo_epochs: float = field(default=2.0, metadata={"help": "Closed loop: DPO epochs over each arm's pairs."})
    loop_dpo_lr: float = field(
        default=1e-4, metadata={"help": "Closed loop: DPO learning rate (constant after 5 warm-up steps)."}
    )
    loop_sft_weight: float = field(
        default=0.0,
        metadata={
            "help": "Closed loop: weight of an SFT term on the chosen answer in the DPO loss (upstream's gamma)."
        },
    )
    loop_beta: float = field(default=0.1, metadata={"help": "Closed loop: DPO beta (upstream's 0.1)."})
    diffusion_loop: bool = field(
        default=True,
        metadata={
            "help": "After the reward-model stage, run the diffusion closed loop: a tiny text-to-image model trained "
            "from scratch draws the world's scenes, the trained reward model sifts its images into pairs "
            "(DiffusionDPO/sift_dpo_data.py), Diffusion-DPO (DiffusionDPO/train.py) on them and on two controls, "
            "ground-truth rate on the pixels before/after (docs/demo.md)."
        },
    )
    diffusion_loop_only: bool = field(
        default=False,
        metadata={"help": "Run only the diffusion closed loop, on a finished run's output_dir (its model/trained)."},
    )
    t2i_vary: str = field(
        default="color",
        metadata={
            "help": "Diffusion loop: the attributes its captions vary (comma-separated subset of color,shape,position); "
            "the others are fixed (a red circle on the left). Default: colour, the attribute the demo's reward "
            "model learns to judge (--difficulty color)."
        },
    )
    t2i_size: int = field(default=32, metadata={"help": "Diffusion loop: image side in pixels (multiple of 4)."})
    t2i_pretrain_scenes: int = field(
        default=3000, metadata={"help": "Diffusion loop: rendered scenes the text-to-image model is pre-trained on."}
    )
    t2i_vae_steps: int | None = field(
        default=None, metadata={"help": "Diffusion loop: autoencoder pre-training steps, batch 32 (default 300)."}
    )
    t2i_unet_steps: int | None = field(
        default=None, metadata={"help": "Diffusion loop: UNet + text encoder pre-training steps, batch 32 (default 200)."}
    )
    t2i_num_prompts: int | None = field(
        default=None, metadata={"help": "Diffusion loop: captions generated for and sifted (default 384)."}
    )
    t2i_num_images: int = field(default=4, metadata={"help": "Diffusion loop: images per caption (K)."})
    t2i_steps: int = field(default=12, metadata={"help": "Diffusion loop: DDIM sampling steps."})
    t2i_strategy: str = field(
        default="tournament",
        metadata={
            "help": "Diffusion loop: the sifting strategy of sift_dpo_data.py (docs/preference.md).",
            "choices": ["upstream", "tournament", "pointwise"],
        },
    )
    t2i_beta: float = field(default=500.0, metadata={"help": "Diffusion loop: Diffusion-DPO beta (per-element MSE)."})
    t2i_dpo_lr: float = field(default=3e-5, metadata={"help": "Diffusion loop: Diffusion-DPO learning rate (constant)."})
    t2i_dpo_batch: int = field(default=16, metadata={"help": "Diffusion loop: pairs per Diffusion-DPO step."})
    t2i_dpo_epochs: float = field(
        default=8.0,
        metadata={"help": "Diffusion loop: Diffusion-DPO epochs over each arm's pairs (steps = epochs x pairs / batch)."},
    )
    t2i_eval_prompts: int | None = field(
        default=None, metadata={"help": "Diffusion loop: held-out captions of the ground-truth rate (default 96)."}
    )
    t2i_eval_samples: int = field(
        default=3, metadata={"help": "Diffusion loop: images per held-out caption (same seeds for every model)."}
    )
    video_loop: bool = field(
        default=True,
        metadata={
            "help": "After the diffusion loop, run the video closed loop: a tiny text-to-video model (AnimateDiff) "
            "trained from scratch draws the world's clips, the trained reward model sifts its mp4s into pairs "
            "(VideoDPO/sift_dpo_data.py), Diffusion-DPO (VideoDPO/train.py) on them and on two controls, "
            "ground-truth rate on the pixels before/after (docs/demo.md)."
        },
    )
    video_loop_only: bool = field(
        default=False,
        metadata={"help": "Run only the video closed loop, on a finished run's output_dir (its model/trained)."},
    )
    t2v_vary: str = field(
        default="color,change",
        metadata={
            "help": "Video loop: the attributes its captions vary (comma-separated subset of "
            "color,shape,direction,change); the others are fixed (a circle moving right, no colour change). "
            "Default: the start colour and the colour change, the video attributes the demo's reward model "
            "learns to judge."
        },
    )
    t2v_size: int = field(default=16, metadata={"help": "Video loop: frame side in pixels (multiple of 4)."})
    t2v_frames: int = field(default=4, metadata={"help": "Video loop: frames per clip."})
    t2v_pretrain_clips: int = field(
        default=2000, metadata={"help": "Video loop: rendered clips the text-to-video model is pre-trained on."}
    )
    t2v_pretrain_batch: int = field(default=8, metadata={"help": "Video loop: clips per pre-training step."})
    t2v_vae_steps: int | None = field(
        default=None, metadata={"help": "Video loop: autoencoder pre-training steps, all the frames of a pre-training batch (default 800)."}
    )
    t2v_unet_steps: int | None = field(
        default=None, metadata={"help": "Video loop: motion UNet + text encoder pre-training steps (default 1000)."}
    )
    t2v_num_prompts: int | None = field(
        default=None, metadata={"help": "Video loop: captions generated for and sifted (default 256)."}
    )
    t2v_num_videos: int = field(default=4, metadata={"help": "Video loop: clips per caption (K)."})
    t2v_steps: int = field(default=10, metadata={"help": "Video loop: DDIM sampling steps."})
    t2v_strategy: str = field(
        default="pointwise",
        metadata={
            "help": "Video loop: the sifting strategy of VideoDPO/sift_dpo_data.py (docs/preference.md). Default "
            "pointwise: one checklist score per clip, K judge calls per caption instead of a tournament's "
            "K (K - 1), with pairs as often right on the loop's generated clips (docs/demo.md).",
            "choices": ["upstream", "tournament", "pointwise"],
        },
    )
    t2v_pairs: str = field(
        default="all",
        metadata={
            "help": "Video loop: pairs per sifted caption (VideoDPO/sift_dpo_data.py --pairs): all (every pair of "
            "clips whose pointwise scores differ; the ground-truth arm then takes every pair that differs in "
            "attributes right, the random arm the reward-model pairs in random order) or best_worst.",
            "choices": ["all", "best_worst"],
        },
    )
    t2v_min_margin: float = field(
        default=0.0,
        metadata={
            "help": "Video loop, pointwise sifting: keep a caption's pair when (best - worst score) / score range is "
            "above this (0: any strict improvement)."
        },
    )
    t2v_beta: float = field(default=500.0, metadata={"help": "Video loop: Diffusion-DPO beta (per-element MSE)."})
    t2v_dpo_lr: float = field(default=3e-5, metadata={"help": "Video loop: Diffusion-DPO learning rate (constant)."})
    t2v_ema_decay: float = field(
        default=0.99,
        metadata={
            "help": "Video loop: evaluate an EMA of the DPO weights with this decay (VideoDPO/train.py --use_ema; 0: "
            "the last weights). It removes most of one DPO run's step-to-step noise (docs/demo.md)."
        },
    )
    t2v_dpo_batch: int = field(default=8, metadata={"help": "Video loop: pairs per Diffusion-DPO step."})
    t2v_dpo_epochs: float = field(
        default=3.0,
        metadata={"help": "Video loop: Diffusion-DPO epochs over each arm's pairs (steps = epochs x pairs / batch)."},
    )
    t2v_eval_prompts: int | None = field(
        default=None, metadata={"help": "Video loop: held-out captions of the ground-truth rate (default 96)."}
    )
    t2v_eval_samples: int = field(
        default=3, metadata={"help": "Video loop: clips per held-out caption (same seeds for every model)."}
    )
    loop_eval_samples: int = field(
        default=4,
        metadata={
            "help": "Closed loop: answers sampled per held-out question at temperature 1 (seeded, the same seeds "
            "before and after DPO); the loop's accuracy is the fraction of them that are correct, an estimate of "
            "the probability that the policy answers right. 0: greedy answers. The greedy accuracy is always "
            "reported beside it."
        },
    )


#: The full run's sizes and schedule (chosen from the measurements in docs/demo.md, "Experiments").
DEFAULTS: dict[str, int] = {"num_train": 1500, "num_eval": 160, "num_eval_point": 80, "num_captions": 750,
                            "captioning_steps": 2600, "judging_steps": 9300, "restart_steps": 2000, "batch_size": 8, "loop_num_policy": 600,
                            "loop_num_sift": 300, "loop_num_heldout": 300, "loop_policy_steps": 300, "t2i_vae_steps": 300,
                            "t2i_unet_steps": 200, "t2i_num_prompts": 384, "t2i_eval_prompts": 96, "t2v_vae_steps": 800,
                            "t2v_unet_steps": 1000, "t2v_num_prompts": 256, "t2v_eval_prompts": 96}  # fmt: skip
#: ``--quick``: a tiny world and a few steps per stage.
QUICK: dict[str, int] = {"num_train": 8, "num_eval": 8, "num_eval_point": 4, "num_captions": 4,
                         "captioning_steps": 4, "judging_steps": 4, "restart_steps": 0, "batch_size": 4, "loop_num_policy": 8,
                         "loop_num_sift": 6, "loop_num_heldout": 6, "loop_policy_steps": 2, "t2i_vae_steps": 2,
                         "t2i_unet_steps": 2, "t2i_num_prompts": 6, "t2i_eval_prompts": 4, "t2v_vae_steps": 2,
                         "t2v_unet_steps": 2, "t2v_num_prompts": 6, "t2v_eval_prompts": 4}  # fmt: skip


def resolve(args: DemoArguments) -> DemoArguments:
    """Fill the size and schedule defaults (full or ``--quick``) and apply ``--scale`` to the data sizes.

    Raises:
        ValueError: a negative step count, no judging steps, a time cap that is not positive, or every-pair
            video sifting with a strategy other than pointwise.
    """
    base = QUICK if args.quick else DEFAULTS
    values: dict[str, Any] = {name: getattr(args, name) if getattr(args, name) is not None else base[name]
                              for name in base}  # fmt: skip
    for name in (
        "num_train",
        "num_eval",
        "num_eval_point",
        "num_captions",
        "loop_num_policy",
        "loop_num_sift",
        "loop_num_heldout",
    ):
        values[name] = max(1 if name != "num_captions" or values[name] else 0, round(values[name] * args.scale))
    if values["captioning_steps"] < 0 or values["judging_steps"] < 1 or values["restart_steps"] < 0:
        raise ValueError("--captioning_steps and --restart_steps must be >= 0 and --judging_steps >= 1")
    if args.train_minutes is not None and args.train_minutes <= 0:
        raise ValueError("--train_minutes must be positive (leave it unset for no time cap)")
    if not 0.0 <= args.t2v_ema_decay < 1.0:
        raise ValueError("--t2v_ema_decay must be in [0, 1) (0: no EMA)")
    if args.t2v_pairs == "all" and args.t2v_strategy != "pointwise":
        raise ValueError("--t2v_pairs all needs --t2v_strategy pointwise (or pass --t2v_pairs best_worst)")
    return DemoArguments(**{**asdict(args), **values})


def model_size(args: DemoArguments) -> Any:
    """The :class:`~unifiedreward.tiny.TinySize` of the demo's model: text ``num_layers`` x ``hidden_size`` (4
    heads, 2 key-value heads, MLP 2x), vision ``vision_depth`` x ``vision_size`` (one head per 32 channels; Qwen2.5-VL:
    window 112 px, full attention in every block), weights drawn with std 0.02 as for training from scratch."""
    from unifiedreward.tiny import TinySize

    return TinySize(hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=4, num_kv_heads=2,
                    vision_depth=args.vision_depth, vision_size=args.vision_size,
                    vision_heads=max(1, args.vision_size // 32), window_size=112,
                    full_attention_blocks=tuple(range(args.vision_depth)), initializer_range=0.02)  # fmt: skip
