"""Special tokens shared by the WordPiece vocabulary, the packer, the kernels and the text models.

Every vocabulary keras_pt learns starts with these five tokens, in this
order, so their ids are fixed whatever the corpus.
"""

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"

SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)

PAD_ID = 0
UNK_ID = 1
CLS_ID = 2
SEP_ID = 3
MASK_ID = 4
NUM_SPECIAL_TOKENS = len(SPECIAL_TOKENS)
