"""Data: TFDS-first input pipelines and the embedded offline data sets."""

from keras_pt.data.digits import Digits
from keras_pt.data.epochs import epoch_batches, epoch_seed
from keras_pt.data.images import (
    EMBEDDED_IMAGE_DATASETS,
    ImageData,
    batch,
    check_labels,
    labeled_subset,
    load_image_dataset,
    unlabeled,
)
