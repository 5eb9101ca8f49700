"""Lexical baselines for the text tables: TF-IDF with a linear SVM, TF-IDF cosine retrieval.

What a practitioner tries first on a text task, run beside the neural
models on the same labels and splits (scikit-learn, on the host):

- classification: TF-IDF vectors of word unigrams and bigrams (sublinear
  term frequency) and a linear SVM (`LinearSVC`); sentence pairs are
  represented by both texts' vectors and their element-wise product (the
  words they share);
- retrieval: TF-IDF cosine similarity between queries and candidates.

Example:

>>> texts = ["open a file", "close the file", "start a thread", "join the thread"]
>>> tfidf_svm_accuracy(texts, [0, 0, 1, 1], ["read the file"], [0])
1.0
"""

import numpy as np
import scipy.sparse
import tensorflow as tf

from keras_pt.evaluation.retrieval import retrieval_accuracy


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def texts_and_labels(dataset):
    """The texts and labels of a labelled `tf.data` data set, as Python values.

    Args:
        dataset: unbatched `tf.data.Dataset` of `(text, label)` or
            `((text_a, text_b), label)` (as `keras_pt.data.load_text_dataset`
            gives).

    Returns:
        `(texts, labels)`: a list of str (or of `(str, str)` pairs) and an
        int64 NumPy array.
    """
    texts, labels = [], []
    for x, y in dataset.as_numpy_iterator():
        if isinstance(x, tuple):
            texts.append(tuple(_decode(t) for t in x))
        else:
            texts.append(_decode(x))
        labels.append(int(y))
    return texts, np.asarray(labels, np.int64)


class TfidfFeatures:
    """TF-IDF vectors of texts or of sentence pairs (scikit-learn's `TfidfVectorizer`).

    For pairs `(a, b)` the vocabulary and document frequencies are fitted on
    both texts, and a pair is `[v(a), v(b), v(a) * v(b)]`: each text's
    vector and their element-wise product, which is non-zero on the terms
    the two share.

    Args:
        ngram_range: tuple. Word n-gram sizes. Defaults to `(1, 2)`.
        sublinear_tf: bool. `1 + log(tf)` term frequencies. Defaults to True.
        **kwargs: other `TfidfVectorizer` arguments.
    """

    def __init__(self, ngram_range=(1, 2), sublinear_tf=True, **kwargs):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=sublinear_tf, **kwargs)
        self.pairs = None

    def fit(self, texts):
        texts = list(texts)
        if not texts:
            raise ValueError("no texts to fit TF-IDF on.")
        self.pairs = isinstance(texts[0], tuple)
        self.vectorizer.fit([t for pair in texts for t in pair] if self.pairs else texts)
        return self

    def transform(self, texts):
        texts = list(texts)
        if not self.pairs:
            return self.vectorizer.transform(texts)
        a = self.vectorizer.transform([pair[0] for pair in texts])
        b = self.vectorizer.transform([pair[1] for pair in texts])
        return scipy.sparse.hstack([a, b, a.multiply(b)]).tocsr()

    def fit_transform(self, texts):
        return self.fit(texts).transform(texts)


class TfidfSVM:
    """TF-IDF features (`TfidfFeatures`) and a linear SVM (`sklearn.svm.LinearSVC`).

    Args:
        C: float. The SVM's inverse regularisation strength. Defaults to 1.0.
        ngram_range, sublinear_tf: as in `TfidfFeatures`.
        seed: int. `LinearSVC`'s `random_state`. Defaults to 0.
    """

    def __init__(self, C=1.0, ngram_range=(1, 2), sublinear_tf=True, seed=0):
        from sklearn.svm import LinearSVC

        self.features = TfidfFeatures(ngram_range=ngram_range, sublinear_tf=sublinear_tf)
        self.svm = LinearSVC(C=C, random_state=seed)

    def fit(self, texts, labels):
        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise ValueError("a linear SVM needs labels of at least two classes.")
        self.svm.fit(self.features.fit_transform(texts), labels)
        return self

    def predict(self, texts):
        return self.svm.predict(self.features.transform(texts))

    def accuracy(self, texts, labels):
        """The share of `texts` whose predicted class is the label."""
        return float(np.mean(self.predict(texts) == np.asarray(labels)))


def tfidf_svm_accuracy(train_texts, train_labels, test_texts, test_labels, **kwargs):
    """Test accuracy of TF-IDF + a linear SVM trained on `train_texts`.

    Args:
        train_texts, test_texts: lists of str or of `(str, str)` pairs, or
            labelled `tf.data` data sets (then the labels arguments are
            ignored and may be None).
        train_labels, test_labels: int arrays.
        **kwargs: `TfidfSVM` arguments.

    Returns:
        float.
    """
    if isinstance(train_texts, tf.data.Dataset):
        train_texts, train_labels = texts_and_labels(train_texts)
    if isinstance(test_texts, tf.data.Dataset):
        test_texts, test_labels = texts_and_labels(test_texts)
    return TfidfSVM(**kwargs).fit(train_texts, train_labels).accuracy(test_texts, test_labels)


def mean_and_sd(values):
    """`(mean, sample standard deviation)` of a list (sd 0 for one value)."""
    values = np.asarray(values, np.float64)
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), sd


def tfidf_retrieval_accuracy(queries, candidates, num_candidates, seed=0):
    """Pair retrieval accuracy of TF-IDF cosine similarity (the lexical baseline).

    TF-IDF (word unigrams, scikit-learn's defaults) is fitted on the
    queries and candidates together; `keras_pt.evaluation.retrieval_accuracy`
    then scores the vectors, grouped by `seed`.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer().fit(list(queries) + list(candidates))
    q = vectorizer.transform(queries).toarray()
    c = vectorizer.transform(candidates).toarray()
    return retrieval_accuracy(q, c, num_candidates, seed=seed)
