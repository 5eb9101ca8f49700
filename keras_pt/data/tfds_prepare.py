"""`download_and_prepare`: a TFDS data set prepared once, also when two
processes prepare it at the same moment."""

import tensorflow_datasets as tfds


def download_and_prepare(builder, name, data_dir):
    """Downloads and prepares `builder` (`tfds.builder(name, data_dir=data_dir)`).

    TFDS writes a data set into an `incomplete.*` folder and renames it into
    place. When two processes prepare the same data set at once (two jobs
    started together on a fresh machine), the second rename fails with
    `FileExistsError` although the first has just put a complete copy
    there; that copy is then used.

    Returns:
        A builder of the prepared data set: `builder`, or a fresh one over the
        copy the other process wrote.

    Raises:
        FileExistsError: when the data set is still not prepared after it.
    """
    try:
        builder.download_and_prepare()
        return builder
    except FileExistsError:
        prepared = tfds.builder(name, data_dir=data_dir)
        if not prepared.is_prepared():
            raise
        return prepared
