"""Every named choice of the project, declared once, importable without torch.

The CLI builds its ``choices=`` lists from here; the library's registries (architectures in ``model``, dataset
formats in ``data.formats``, learning-rate schedules in ``schedules``, inits in ``init``, named weights in
``weights``) check at import time that what they register is exactly what is named here, and
``tests/test_choices.py`` checks every CLI choice list against these tuples. To add an entry: name it here, register
it where it lives, add its test.
"""
from __future__ import annotations

# Networks (model.py): the paper's two-tower ILSVRC net, its one-tower comparison, torchvision's "one weird trick"
# variant, and Krizhevsky's four-layer CIFAR-10 net of Figure 1.
ARCHS = ("paper", "paper-1tower", "owt", "cifar")
ACTIVATIONS = ("relu", "tanh")                       # section 3.1
TOWERS = (1, 2)                                      # section 3.2
# LRN (section 3.3), three conventions (alexnet.layers.LRN_CONVENTION_TABLE): "paper" = the text, k=2 + alpha * sum,
# per tower; "cuda-convnet" = Krizhevsky's own code, k=2 + alpha/n * sum, per tower; "caffe" = bvlc_alexnet,
# k=1 + alpha/n * sum across both towers.
LRN_CONVENTIONS = ("paper", "cuda-convnet", "caffe")
LRN_BACKENDS = ("auto", "eager", "compiled")
INITS = ("paper", "caffe", "kaiming", "default")     # section 5; default = PyTorch's own

# Data (data/): dataset formats "auto" detects among the others.
DATASET_KINDS = ("auto", "imagefolder", "ilsvrc", "cifar10", "mnist", "fashion-mnist", "packed")
SPLITS = ("train", "val")
NORMALIZATIONS = ("auto", "paper", "standard")       # paper: subtract the mean (0-255); standard: also / std
# What is subtracted (section 2): "channel" one mean per channel (a common simplification); "image" the paper's mean
# image at S x S, cropped (and flipped) with each input crop, as Caffe's mean_file.
MEANS = ("channel", "image")

# Training (optim.py, schedules.py).
OPTIMIZERS = ("paper", "sgd", "adamw")               # paper: section 5's update (lr inside the velocity)
SCHEDULES = ("plateau", "step", "cosine", "constant")
EVAL_CROPS = (1, 10)                                 # centre crop | the paper's 10 patches (section 4.1)
# Recipes (recipes.py): named sets of training settings.  paper: section 5 as written (ImageNet scale); small: from
# scratch on small datasets; finetune: pretrained layers at a tenth of the new head's lr.  "auto" picks paper or
# small from the number of training images.
RECIPES = ("paper", "small", "finetune")
RECIPE_CHOICES = ("auto",) + RECIPES
# --freeze LAYER: the layers up to LAYER keep their weights (the head, fc8, always trains).
FREEZE_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")

# Runtime (runtime.py).
DEVICES_HELP = "auto, cpu, cuda, cuda:N, mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# Everything around the model.
EXPORT_FORMATS = ("onnx", "torchscript", "safetensors")
# Named pretrained weights (weights.py): torchvision's IMAGENET1K_V1 (arch owt), BVLC's bvlc_alexnet (arch paper).
WEIGHTS = ("torchvision", "bvlc")
BENCH_MODES = ("train", "infer")
FEATURE_POOLS = ("none", "avg")
