"""Models of the book, one module per family, all importable from here.

Each model is configured by a typed dataclass whose defaults are a small
preset that trains in well under a minute on a laptop CPU.

- :mod:`attnlab.models.seq2seq` -- :class:`Seq2Seq`, a GRU encoder-decoder whose decoder
  sees one fixed summary of the source (the model before attention), and
  :class:`AttentionSeq2Seq`, the same with additive attention over every encoder state;
- :mod:`attnlab.models.transformer` -- :class:`Transformer`, the encoder-decoder Transformer;
- :mod:`attnlab.models.gpt` -- :class:`GPT`, a decoder-only Transformer with a key/value cache;
- the application chapters' models: :mod:`attnlab.models.vit`, :mod:`attnlab.models.sasrec`,
  :mod:`attnlab.models.pooling_classifier`, :mod:`attnlab.models.listener`,
  :mod:`attnlab.models.forecaster`, :mod:`attnlab.models.motif`, :mod:`attnlab.models.vqa`;
- :mod:`attnlab.models.shift` -- :class:`ShiftModel`, one Transformer block with a choice of
  positions, for the shift task (:mod:`attnlab.data.shift`).

:func:`count_parameters` lives in :mod:`attnlab.utils` and is re-exported here.
"""

from attnlab.models.forecaster import (
    Forecaster,
    ForecasterConfig,
    LinearForecaster,
    naive_forecast,
    seasonal_naive_forecast,
)
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.listener import Listener, ListenerConfig
from attnlab.models.motif import (
    MotifAttention,
    MotifAttentionConfig,
    MotifCNN,
    MotifCNNConfig,
    peak_in_mask,
)
from attnlab.models.pooling_classifier import (
    AttentionPooling,
    AttentionPoolingClassifier,
    BagOfWordsClassifier,
    PoolingClassifierConfig,
    attention_mass,
    bag_of_words,
    subset_accuracy,
)
from attnlab.models.sasrec import (
    GRU4Rec,
    HistoryRecConfig,
    MarkovRecommender,
    MeanPoolRec,
    PopularityRecommender,
    SASRec,
    SASRecConfig,
    next_item_loss,
)
from attnlab.models.seq2seq import AttentionSeq2Seq, Seq2Seq, Seq2SeqConfig
from attnlab.models.shift import ShiftModel
from attnlab.models.transformer import Transformer, TransformerConfig
from attnlab.models.vit import CNNConfig, SmallCNN, ViT, ViTConfig
from attnlab.models.vqa import (
    CrossAttentionBlock,
    CrossAttentionVQA,
    FusionVQA,
    QuestionOnlyVQA,
    VQAConfig,
)
from attnlab.utils import count_parameters

__all__ = [
    "Seq2SeqConfig", "Seq2Seq", "AttentionSeq2Seq", "TransformerConfig", "Transformer",
    "GPTConfig", "GPT", "count_parameters", "ViT", "ViTConfig", "SmallCNN", "CNNConfig",
    "SASRec", "SASRecConfig", "next_item_loss", "PopularityRecommender", "MarkovRecommender",
    "GRU4Rec", "MeanPoolRec", "HistoryRecConfig",
    "AttentionPooling", "PoolingClassifierConfig", "AttentionPoolingClassifier",
    "bag_of_words", "BagOfWordsClassifier", "attention_mass", "subset_accuracy", "Listener",
    "ListenerConfig", "Forecaster", "ForecasterConfig", "LinearForecaster", "naive_forecast",
    "seasonal_naive_forecast", "MotifAttentionConfig", "MotifAttention", "MotifCNNConfig",
    "MotifCNN", "peak_in_mask", "VQAConfig", "CrossAttentionBlock", "CrossAttentionVQA",
    "FusionVQA", "QuestionOnlyVQA", "ShiftModel",
]
