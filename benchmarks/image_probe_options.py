"""Linear probes on the features of image pre-training options vs raw pixels.

Pre-trains one model on the unlabelled training images of an image data
set, then, for several draws of `--labels_per_class` labelled examples per
class, fits the linear SVM probe (squared hinge, one-vs-rest, C=1, on
standardised features, solved by `keras_pt.utils.linear_svm`) on the
features of each encoder layer, before and after pre-training, beside
scikit-learn's `LinearSVC` on the raw pixels. Prints mean ± sd per row.

    python benchmarks/image_probe_options.py --model=denoising_autoencoder --epochs=40
    python benchmarks/image_probe_options.py --model=simclr --epochs=40
    python benchmarks/image_probe_options.py --model=simclr --resize=28 --epochs=8
    python benchmarks/image_probe_options.py --model=simclr --epochs=40 --layers=features
"""

import time

from absl import app, flags

import keras
import numpy as np
import tensorflow as tf

import keras_pt
from keras_pt.evaluation import baselines
from keras_pt.utils.linear_svm import solve_linear_svm

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "digits", "Image data set.")
flags.DEFINE_enum("model", "simclr", ["simclr", "denoising_autoencoder"], "Pre-training model.")
flags.DEFINE_string("architecture", "auto", "conv, dense or auto (conv for simclr, dense otherwise).")
flags.DEFINE_integer("epochs", 40, "Pre-training epochs.")
flags.DEFINE_integer("batch_size", 128, "Pre-training batch size.")
flags.DEFINE_integer("resize", 0, "Resize the images to this side first (0: keep).")
flags.DEFINE_integer("labels_per_class", 10, "Labelled examples per class.")
flags.DEFINE_integer("draws", 3, "Label draws.")
flags.DEFINE_integer("report_every", 10, "Epochs between probe reports.")
flags.DEFINE_list(
    "layers",
    [],
    "Encoder layers to probe, by name (e.g. features). Default: every layer, then all of them together.",
)


def arrays(dataset):
    pairs = list(dataset.as_numpy_iterator())
    x = np.stack([p[0] for p in pairs])
    if FLAGS.resize:
        x = tf.image.resize(x, (FLAGS.resize, FLAGS.resize)).numpy().clip(0, 1)
    return x, np.asarray([p[1] for p in pairs])


def probe(train, test, train_y, test_y, draws):
    accuracies = []
    for idx in draws:
        a = train[idx]
        mean, var = a.mean(0), a.var(0)
        scale = 1.0 / np.sqrt(var + 0.01 * var.mean())
        w, b = solve_linear_svm((a - mean) * scale, train_y[idx], int(train_y.max()) + 1)
        accuracies.append(np.mean(np.argmax(((test - mean) * scale) @ w + b, 1) == test_y))
    return baselines.Spread(accuracies)


def main(argv):
    del argv
    start = time.time()
    data = keras_pt.data.load_image_dataset(FLAGS.dataset)
    train_x, train_y = arrays(data.train)
    test_x, test_y = arrays(data.test)
    num_classes = int(train_y.max()) + 1
    draws = []
    for draw in range(FLAGS.draws):
        rng = np.random.default_rng(draw)
        draws.append(
            np.concatenate(
                [
                    rng.choice(np.flatnonzero(train_y == c), FLAGS.labels_per_class, replace=False)
                    for c in range(num_classes)
                ]
            )
        )
    raw = baselines.Spread([baselines.linear_svm_accuracy(train_x[i], train_y[i], test_x, test_y) for i in draws])
    print(f"{'raw pixels, LinearSVC':<44}{raw}")
    keras.utils.set_random_seed(0)
    shape = train_x.shape[1:]
    if FLAGS.model == "simclr":
        architecture = "conv" if FLAGS.architecture == "auto" else FLAGS.architecture
        model = keras_pt.SimCLR(image_shape=shape, architecture=architecture, seed=0)
    else:
        architecture = "dense" if FLAGS.architecture == "auto" else FLAGS.architecture
        model = keras_pt.DenoisingAutoencoder(image_shape=shape, architecture=architecture, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model(train_x[:2])
    layers = [l.name for l in model.encoder.layers[1:] if not isinstance(l, keras.layers.Flatten)]
    unknown = sorted(set(FLAGS.layers) - set(layers))
    if unknown:
        raise app.UsageError(f"--layers: no encoder layer {', '.join(unknown)}; the layers are {', '.join(layers)}.")
    if FLAGS.layers:
        layers = [n for n in layers if n in FLAGS.layers]
    extractor = keras.Model(model.encoder.inputs, [model.encoder.get_layer(n).output for n in layers])

    def report(tag):
        outs_train, outs_test = (
            keras.tree.flatten(extractor.predict(x, batch_size=512, verbose=0)) for x in (train_x, test_x)
        )
        flat = [(a.reshape(len(a), -1), b.reshape(len(b), -1)) for a, b in zip(outs_train, outs_test)]
        for name, (a, b) in zip(layers, flat):
            print(f"{tag + ' ' + name + ' (' + str(a.shape[1]) + ')':<44}{probe(a, b, train_y, test_y, draws)}")
        if not FLAGS.layers:
            a = np.concatenate([f[0] for f in flat], 1)
            b = np.concatenate([f[1] for f in flat], 1)
            print(f"{tag + ' all layers':<44}{probe(a, b, train_y, test_y, draws)}")
        print(f"({time.time() - start:.0f} s)")

    report("untrained")
    batches = tf.data.Dataset.from_tensor_slices(train_x).shuffle(len(train_x), seed=0)
    batches = batches.batch(FLAGS.batch_size, drop_remainder=True)
    for done in range(FLAGS.report_every, FLAGS.epochs + 1, FLAGS.report_every):
        model.fit(batches, epochs=FLAGS.report_every, verbose=0)
        report(f"epoch {done}")


if __name__ == "__main__":
    app.run(main)
