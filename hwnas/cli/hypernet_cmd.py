"""``hwnas hypernet train``: a SMASH hypernetwork for ``--accuracy hypernet:RUN_DIR``."""

from __future__ import annotations

import argparse

from hwnas.cli.common import answers_json, emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hypernet", help="a SMASH hypernetwork that generates candidates' weights (nb201)")
    hsub = p.add_subparsers(dest="hypernet", required=True, metavar="ACTION")
    t = hsub.add_parser("train", help="train one on randomly sampled architectures (one per batch)")
    t.add_argument("--space", default="nb201", help="the space it generates (nb201)")
    t.add_argument("--preset", help="the space's preset (default cifar)")
    t.add_argument("--resolution", type=int, help="input resolution (default: the preset's)")
    t.add_argument("--num-classes", type=int, help="classes (default: the preset's)")
    t.add_argument("--data", default="digits", help="dataset: digits (default), clutter, cifar10, imagefolder")
    t.add_argument("--data-dir", help="folder of cifar10 / imagefolder data")
    t.add_argument("--epochs", type=int, default=10, help="epochs over the train split (default 10)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--hidden", type=int, default=64, help="width of the hypernetwork's MLP (default 64)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-o", "--output", required=True, help="run directory for hypernet.safetensors and hypernet.json")
    t.add_argument("--quiet", action="store_true")
    answers_json(t, cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from hwnas.data.datasets import load
    from hwnas.evaluators.hypernet import save_hypernet, train_hypernet
    from hwnas.spaces import get_space

    overrides = {k: v for k, v in (("resolution", args.resolution), ("num_classes", args.num_classes)) if v}
    space = get_space(args.space, args.preset, **overrides)
    data = load(args.data, args.data_dir, resolution=space.input_shape()[1], seed=args.seed)
    net, info = train_hypernet(space, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               seed=args.seed, hidden=args.hidden, progress=not args.quiet)
    save_hypernet(args.output, net, space, {**info, "data": args.data})
    out = {"output": args.output, "space": space.recipe(), **info}
    if args.json:
        emit_json(out)
    else:
        print(f"hypernetwork for {space.name}/{space.preset}: {info['epochs']} epochs, {info['steps']} steps in "
              f"{info['seconds']:.1f} s -> {args.output}/hypernet.safetensors; score with --accuracy "
              f"hypernet:{args.output}")
    return 0
