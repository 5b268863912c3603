"""The names the library's string options accept, in a module free of torch.

The toolkit's settings and command line offer the same choices as the ops; keeping the names here lets ``cutmix
--help`` and a mistyped flag answer before torch is imported (seconds on a CPU machine). The ops' modules re-export
them under the names they have always had (``boxes.KINDS``, ``functional.LABEL_MODES``...).
"""

BOX_KINDS = ("uniform", "gaussian", "fixed")  # cutmix.boxes.KINDS
PLACEMENTS = ("clip", "inside")
ROUNDINGS = ("exact", "reference")
LABEL_MODES = ("area", "onehot", "complete")
PADDING_MODES = ("zeros", "reflect")
CIFAR_NAMES = ("cifar10", "cifar100")
