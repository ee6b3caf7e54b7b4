"""Writes tests/data/v1/: checkpoints made by alexnet at commit 1405436 (checkpoint format version 1)."""
import shutil
import sys
from pathlib import Path

import alexnet.train as T
from alexnet.data import synthetic
from alexnet.interop import export_model

out = Path(sys.argv[1])
work = Path(sys.argv[2])
data = synthetic.generate(work / "d", classes=3, train_per_class=8, val_per_class=3, size=64, seed=1, progress=False)
real_save = T.save_checkpoint
saved = []
def spy(path, payload):
    p = real_save(path, payload)
    if payload["batch_in_epoch"] > 0 and not saved:
        shutil.copy(p, out / "mid_epoch.pt")
        saved.append(p)
    return p
T.save_checkpoint = spy
out.mkdir(parents=True, exist_ok=True)
cfg = T.TrainConfig(data=str(data), out=str(work / "run"), arch="paper",
                    model={"fc_size": 16, "channels": [8, 16, 16, 16, 16], "init": "kaiming"},
                    epochs=1, batch_size=8, resize=72, crop=64, seed=3, deterministic=True, workers=0,
                    progress=False, steps_per_epoch=2, save_every=1, val_batches=1)
T.train(cfg, printer=lambda s: None)
shutil.copy(work / "run" / "last.pt", out / "last.pt")
export_model(out / "last.pt", "safetensors", out / "weights.safetensors")
for p in sorted(out.iterdir()):
    print(p.name, p.stat().st_size)
