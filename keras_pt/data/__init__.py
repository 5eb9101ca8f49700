"""Data: TFDS-first input pipelines and the embedded offline data sets."""

from keras_pt.data.digits import Digits
from keras_pt.data.epochs import count_examples, epoch_batches, epoch_seed
from keras_pt.data.images import (
    EMBEDDED_IMAGE_DATASETS,
    ImageData,
    batch,
    check_labels,
    labeled_subset,
    load_image_dataset,
    unlabeled,
)
from keras_pt.data.image_sources import (
    image_data_from_arrays,
    load_idx_images,
    load_image_folder,
    load_images,
    load_numpy_images,
    read_idx,
)
from keras_pt.data.debian_packages import DebianPackages
from keras_pt.data.stdlib_docs import StdlibDocs
from keras_pt.data.text import (
    TEXT_DATASETS,
    TextDatasetSpec,
    epoch_text_batches,
    labeled_text_subset,
    load_feature_pairs,
    load_pretraining_texts,
    load_text_dataset,
    preprocess_text_dataset,
    text_dataset_spec,
)
from keras_pt.data.text_sources import TextData, load_texts, text_data_from_lists, text_source
from keras_pt.data.vocabulary import learn_vocabulary, texts_only, token_counts
from keras_pt.data.sentence_pairs import (
    distinct_pairs,
    load_sentence_pairs,
    pair_names,
    preprocess_sentence_pairs,
    sentence_pairs,
)
