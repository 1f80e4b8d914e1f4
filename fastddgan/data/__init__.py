"""Data sets for fastddgan, all scaled for diffusion (images to [-1, 1]; 2-D mixtures in their native units).

``load_dataset(name, data_dir, image_size, train, download, channels, cache)`` returns an ``ImageData`` (uint8
images, ``to_model_range`` maps them to [-1, 1]) or, for the 2-D names, a ``Toy2DData``; see ``images`` and
``folder`` for the files each data set needs.
"""

from .folder import ImageFolderData
from .images import (DATASETS, DataNotFoundError, ImageData, Toy2DData, describe, load_dataset, to_model_range,
                     to_uint8)
from .toy2d import TOY2D, Mixture2D, toy2d

__all__ = ["TOY2D", "Mixture2D", "toy2d", "DATASETS", "DataNotFoundError", "ImageData", "ImageFolderData",
           "Toy2DData", "describe", "load_dataset", "to_model_range", "to_uint8"]
