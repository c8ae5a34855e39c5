"""Dataset loading: one string names a dataset, and every dataset becomes the same binary task.

``data.load.load_splits`` reads the embedded ``insults`` or ``toxic-comments`` data, a hub dataset or a
local file; ``data.labels`` maps its labels to toxic (1) / not toxic (0); ``data.splits`` holds the result
and carves the missing validation and test splits out of the training data.
"""


class DataError(ValueError):
    """A dataset could not be found, read or turned into binary toxic / not-toxic labels."""
