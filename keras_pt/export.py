"""SavedModel export of text classifiers that take raw strings."""

import tensorflow as tf


class _Serving(tf.Module):
    """The exported object: the endpoint and the variables it reads.

    Only the variables are tracked, not the Keras model: saving a tracked
    subclassed Keras model also traces its default signature, with float
    inputs (`Layer._default_save_signature`), which a model of token ids
    rejects.
    """

    def __init__(self, fn, input_signature, weights):
        super().__init__()
        self.model_variables = [getattr(w, "value", w) for w in weights]
        self.serve = tf.function(fn, input_signature=input_signature)


def export_text_classifier(classifier, path, preprocessor=None, sentence_pairs=False):
    """Exports a text classifier as a SavedModel that takes raw strings.

    The `serving_default` signature (also the object's `serve` function)
    takes `text`, a `tf.string` tensor of shape `(None,)` — or `text_a` and
    `text_b` for sentence pairs — and returns `{"probabilities": float32
    (batch, num_classes)}`. Tokenization and packing run inside the graph,
    so serving needs TensorFlow and tensorflow-text only:

        import tensorflow_text  # registers the tokenizer ops
        served = tf.saved_model.load(path)
        served.serve(tf.constant(["Return the logger."]))["probabilities"]

    Args:
        classifier: a `MiniBERTClassifier` (or any Keras model mapping the
            packed dict to logits).
        path: str. The SavedModel directory.
        preprocessor: the `MiniBERTPreprocessor`. Defaults to
            `classifier.preprocessor`, else its backbone's.
        sentence_pairs: bool. Take two strings per example.

    Returns:
        `path`.

    Raises:
        ValueError: if no preprocessor is given or found.
    """
    if preprocessor is None:
        preprocessor = getattr(classifier, "preprocessor", None)
    if preprocessor is None:  # a MiniBERTClassifier's backbone holds it
        preprocessor = getattr(getattr(classifier, "backbone", None), "preprocessor", None)
    if preprocessor is None:
        raise ValueError("the classifier has no preprocessor; pass preprocessor=MiniBERTPreprocessor(...).")

    def probabilities(texts):
        packed = preprocessor(texts)  # (batch, sequence_length) int32 each
        logits = classifier(packed, training=False)  # (batch, num_classes)
        return {"probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)}

    # Build every weight eagerly, outside the traced endpoint.
    example = tf.constant(["."])
    probabilities((example, example) if sentence_pairs else example)
    if sentence_pairs:
        signature = [
            tf.TensorSpec([None], tf.string, name="text_a"),
            tf.TensorSpec([None], tf.string, name="text_b"),
        ]

        def serve(text_a, text_b):
            return probabilities((text_a, text_b))

    else:
        signature = [tf.TensorSpec([None], tf.string, name="text")]
        serve = probabilities
    module = _Serving(serve, signature, classifier.weights)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path
