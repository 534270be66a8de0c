"""Tasks and data sets for the chapters, one module each, all importable from here.

Every task is generated from a seed, so the same call gives the same data on every machine, and
its test split never shares an item with its training split (a date, a pair of numbers, a
sequence), so that test accuracy measures generalisation, not memory.

Modules:

- :mod:`attnlab.data.tokenizer` -- :class:`CharTokenizer`, characters to ids and back;
- :mod:`attnlab.data.tasks` -- the containers :class:`TextPairs`, :class:`Seq2SeqTask`,
  :class:`LanguageTask`;
- :mod:`attnlab.data.dates` -- :func:`dates_task`: dates in many human formats -> ISO
  ``2026-11-24``;
- :mod:`attnlab.data.symbols` -- :func:`reversal_task`, :func:`sorting_task`: reverse or sort a
  string of symbols;
- :mod:`attnlab.data.addition` -- :func:`addition_task`: ``"123+45=168"``, a language for a
  decoder-only model;
- :mod:`attnlab.data.shift` -- :func:`shift_task`: output the token two places back, with
  its loss and accuracy;
- :mod:`attnlab.data.batching` -- :func:`batches` of shuffled indices, :func:`random_rows`;
- the application chapters' data: :mod:`attnlab.data.digits`, :mod:`attnlab.data.reviews`,
  :mod:`attnlab.data.sessions`, :mod:`attnlab.data.keypad`, :mod:`attnlab.data.series`,
  :mod:`attnlab.data.dna`, :mod:`attnlab.data.vqa`, :mod:`attnlab.data.vqa_scenes`;
- real data that ships offline: :mod:`attnlab.data.movielens` -- :func:`movielens_sequences`,
  MovieLens users' ratings in time order, split leave-last-out;
  :mod:`attnlab.data.electricity` -- :func:`electricity_task`, Victoria's half-hourly
  electricity demand with temperature and work days, split by time;
  :mod:`attnlab.data.motifs` -- :func:`~attnlab.data.motifs.jaspar_matrix`, four JASPAR
  2024 matrices that ship in the package, and :func:`~attnlab.data.motifs.planted_task`,
  sites sampled from them planted on either strand;
  :mod:`attnlab.data.speech` -- :func:`~attnlab.data.speech.spoken_digits_task`, digit
  strings spoken by eSpeak NG (from the ``espeakng-loader`` wheel) in many voices, rooms and
  noise levels, split by speaker, with :mod:`attnlab.data.speech_features` for log-mel
  spectrograms. The matrices ship inside ``attnlab``; the MovieLens, electricity and speech
  loaders need the optional packages of ``attnlab[data]`` and import them only when called.
"""

from attnlab.data.addition import addition_task
from attnlab.data.batching import batches, random_rows
from attnlab.data.dates import DATE_FORMATS, dates_task, format_date
from attnlab.data.digits import (
    Digits,
    DigitsSplit,
    digits_task,
    load_digit_images,
    patchify,
    stratified_split,
    stratified_subset,
    unpatchify,
)
from attnlab.data.dna import (
    CONSENSUS,
    DECOY_KINDS,
    PARTNER,
    DNASplit,
    DNATask,
    GrammarSplit,
    GrammarTask,
    dna_task,
    grammar_task,
    motif_pwm,
    site_mask,
    window_distances,
)
from attnlab.data.electricity import (
    STEPS_PER_DAY,
    ElecDemand,
    ElectricitySplit,
    ElectricityTask,
    electricity_task,
    load_elecdemand,
)
from attnlab.data.keypad import (
    KeypadConfig,
    KeypadTask,
    Recordings,
    key_frequencies,
    keypad_task,
    log_spectrogram,
    peak_decode,
    span_mask,
    synthesize,
)
from attnlab.data.movielens import (
    MovieLensSequences,
    load_movielens_ratings,
    movielens_sequences,
)
from attnlab.data.reviews import (
    Reviews,
    ReviewsTask,
    WordVocab,
    make_review,
    positions_after,
    review_kind,
    review_label,
    reviews_task,
    swap_clauses,
    word_polarity,
)
from attnlab.data.series import (
    ForecastTask,
    SeriesConfig,
    Standardizer,
    Windows,
    forecasting_task,
    generate_series,
    make_windows,
    time_splits,
)
from attnlab.data.sessions import (
    Catalogue,
    SessionConfig,
    Sessions,
    SessionsTask,
    generate_sessions,
    leave_last_out,
    make_catalogue,
    next_item_batch,
    next_item_probs,
    sessions_task,
)
from attnlab.data.shift import SHIFT, SHIFT_VOCAB, shift_accuracy, shift_loss, shift_task
from attnlab.data.symbols import reversal_task, sorting_task
from attnlab.data.tasks import LanguageTask, Seq2SeqTask, TextPairs
from attnlab.data.tokenizer import CharTokenizer
from attnlab.data.vqa import (
    QUESTION_KINDS,
    Question,
    VQASplit,
    VQATask,
    all_questions,
    question_prior_accuracy,
    question_vocab,
    vqa_task,
)

__all__ = [
    "CharTokenizer", "TextPairs", "Seq2SeqTask", "LanguageTask", "DATE_FORMATS", "format_date",
    "dates_task", "reversal_task", "sorting_task", "addition_task", "batches", "random_rows",
    "Digits",
    "DigitsSplit", "digits_task", "load_digit_images", "stratified_split", "stratified_subset",
    "patchify", "unpatchify", "SessionConfig", "Catalogue", "Sessions", "SessionsTask",
    "make_catalogue", "generate_sessions", "sessions_task", "next_item_probs",
    "leave_last_out", "next_item_batch", "WordVocab", "Reviews", "ReviewsTask", "reviews_task",
    "review_label", "review_kind", "make_review", "swap_clauses", "positions_after",
    "word_polarity", "KeypadConfig", "KeypadTask", "Recordings", "keypad_task", "synthesize",
    "log_spectrogram", "span_mask", "key_frequencies", "peak_decode", "SeriesConfig",
    "generate_series", "time_splits", "Windows", "make_windows", "Standardizer",
    "ForecastTask", "forecasting_task", "DNASplit", "DNATask", "dna_task", "GrammarSplit",
    "GrammarTask", "grammar_task", "motif_pwm", "window_distances", "site_mask", "CONSENSUS",
    "PARTNER", "DECOY_KINDS", "QUESTION_KINDS", "Question", "all_questions", "question_vocab",
    "VQASplit", "VQATask", "vqa_task", "question_prior_accuracy", "SHIFT", "SHIFT_VOCAB",
    "shift_task", "shift_loss", "shift_accuracy", "MovieLensSequences", "movielens_sequences",
    "load_movielens_ratings", "STEPS_PER_DAY", "ElecDemand", "load_elecdemand",
    "ElectricitySplit", "ElectricityTask", "electricity_task",
]
