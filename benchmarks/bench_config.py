"""What the benchmark compares: the recipes, the frameworks with how each is set up, and the targets it checks.

bench.py and its modules import these from here, so a framework's description or a target changes in one place.
"""

from npnet.recipes import CNN, MLP  # the recipes: sizes, lr, L2, batch size, epochs, seed

TARGET_DEV = 0.975
FRAMEWORKS = {  # name -> (the module it needs, how it is set up)
    "npnet": ("numpy", "npnet.fit: Adam, L2 on weights, cosine lr decay"),
    "pytorch": ("torch", "torch.optim.Adam (default), same init, L2, cosine decay"),
    "pytorch-fused": ("torch", "torch.optim.Adam(fused=True), otherwise the same"),
    "sklearn": ("sklearn", 'MLPClassifier((256, 128), solver="adam", batch_size=128), partial_fit per epoch'),
}
CNN_FRAMEWORKS = {  # the CNN section: scikit-learn has no convolutions
    "npnet": ("numpy", "npnet.fit: the recipe's network (channels last), Adam, cosine lr decay, no augmentation"),
    "npnet-parallel": ("numpy", "the same, fit(data_parallel=True): each batch's two halves at once, one per core "
                                "(npnet/parallel.py)"),
    "pytorch": ("torch", "the same network in PyTorch's default NCHW layout, He init, torch.optim.Adam (default)"),
    "pytorch-fused": ("torch", "the same, torch.optim.Adam(fused=True)"),
    "pytorch-fused-cl": ("torch", "the same as pytorch-fused, with the weights and batches in torch.channels_last"),
}
RECIPES = {"mlp": MLP, "cnn": CNN}
CNN_TARGET = 1.0  # npnet's CNN step <= 1.0x PyTorch fused Adam's (NCHW): the median of the per-epoch ratios
CNN_STRETCH = 0.8  # and the stretch goal
