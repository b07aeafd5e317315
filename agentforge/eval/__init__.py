"""Evaluation: datasets, deterministic metrics, LLM judges whose verdicts always parse, pairwise
judging with the order swapped, and a concurrent runner with bootstrap confidence intervals."""

from .dataset import DatasetError, Example, load_dataset
from .judge import LLMJudge, PairwiseResult, pairwise
from .langsmith import load_langsmith_dataset, upload_experiment
from .metrics import (
    bleu,
    chrf,
    edit_distance,
    embedding_similarity,
    exact_match,
    fuzzy_match,
    normalized_exact_match,
    token_f1,
    tool_calls_match,
)
from .rag_metrics import Faithfulness, answer_relevance, context_precision, context_recall, rag_metrics
from .runner import METRICS, EvalRun, Output, aevaluate, evaluate

__all__ = ["METRICS", "DatasetError", "EvalRun", "Example", "Faithfulness", "LLMJudge", "Output", "PairwiseResult",
           "aevaluate", "answer_relevance", "bleu", "chrf", "context_precision", "context_recall", "edit_distance",
           "embedding_similarity", "evaluate", "exact_match", "fuzzy_match", "load_dataset", "load_langsmith_dataset",
           "normalized_exact_match", "pairwise", "rag_metrics", "token_f1", "tool_calls_match", "upload_experiment"]
