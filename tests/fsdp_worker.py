"""Run by tests/test_training.py under ``torchrun --nproc_per_node 2``: checks that FSDP
shards the model, then trains with the config given as JSON in argv[1]."""

import json
import sys

from torch.distributed.tensor import DTensor, Shard

from chatsr.training import distributed
from chatsr.training.loop import TrainingConfig, _Run, train


def check_sharding(config: TrainingConfig) -> dict:
    context = distributed.setup()
    run = _Run(config, context)
    params = list(run.model.parameters())
    assert all(isinstance(p, DTensor) and p.placements == (Shard(0),) for p in params)
    local = sum(p.to_local().numel() for p in params)
    total = sum(p.numel() for p in params)
    return {"rank": context.rank, "local": local, "total": total}


if __name__ == "__main__":
    config = TrainingConfig(**json.loads(sys.argv[1]))
    report = check_sharding(config)
    train(config)
    with open(f"{config.output_dir}/shards-{report['rank']}.json", "w") as f:
        json.dump(report, f)
