"""Latency predictors: ``flops``, ``lutsum``, ``learned``, and for a new device from a few
shots ``bayes`` (a per-operation model with a prior from other devices) and ``transfer``."""

from hwnas.predictors.base import PREDICTORS, NotFittedError, Predictor, fittable_kinds, load_predictor
from hwnas.predictors.learned import LearnedPredictor
from hwnas.predictors.simple import FlopsPredictor, LutSumPredictor
from hwnas.predictors.prior import BayesTransferPredictor, DevicePrior, prior_for
from hwnas.predictors.transfer import TransferPredictor, fit_sources

__all__ = ["PREDICTORS", "fittable_kinds", "Predictor", "NotFittedError", "load_predictor", "FlopsPredictor",
           "LutSumPredictor", "LearnedPredictor", "TransferPredictor", "fit_sources", "BayesTransferPredictor",
           "DevicePrior", "prior_for"]
